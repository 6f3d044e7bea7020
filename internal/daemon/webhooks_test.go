package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/outbox"
)

// trickler is a webhook receiver that answers a byte a second, before its
// status line is even complete, so each attempt to it waits for
// webhooks.timeout; it lets go of its connections when done closes.
func trickler(t *testing.T, done <-chan struct{}, attempts *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		tick := time.NewTicker(time.Second) // the receiver's pace, not a wait of the test's
		defer tick.Stop()
		for _, c := range []byte("HTTP/1.1 200 OK\r\n\r\n") {
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Slow receivers hold up neither a healthy endpoint's deliveries nor the
// e-mails: with ten endpoints that trickle their answer a byte a second
// (every attempt to them waits for the 15 s timeout), a healthy endpoint
// gets each of ten events, and an activation e-mail is sent, within a
// second, on the daemon's own queues and workers, in real time.
func TestSlowEndpointsHoldUpNeitherHealthyOnesNorEmails(t *testing.T) {
	t.Parallel()
	b := setupClocked(t, io.Discard, clock.Real{}, func(c *config.Config) { c.Webhooks.AllowPrivateNetworks = true })
	ctx := context.Background()
	done := make(chan struct{})
	var slowAttempts atomic.Int64
	for range 10 {
		url := trickler(t, done, &slowAttempts).URL
		if _, _, err := b.daemon.Services().Endpoints.Create(ctx, outbox.EndpointSpec{URL: &url}); err != nil {
			t.Fatal(err)
		}
	}
	type arrival struct {
		trial int64
		at    time.Time
	}
	arrivals := make(chan arrival, 100)
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Data struct {
				Trial struct {
					ID int64 `json:"id"`
				} `json:"trial"`
			} `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		arrivals <- arrival{p.Data.Trial.ID, time.Now()}
	}))
	t.Cleanup(healthy.Close)
	if _, _, err := b.daemon.Services().Endpoints.Create(ctx, outbox.EndpointSpec{URL: &healthy.URL}); err != nil {
		t.Fatal(err)
	}
	completed, cancel := b.daemon.River().Subscribe(river.EventKindJobCompleted)
	t.Cleanup(cancel)
	b.start(t)
	t.Cleanup(func() { close(done) }) // before the daemon stops: its attempts end at once

	created := map[int64]time.Time{}
	for range 10 {
		status, body := b.do(t, "POST", "/v1/api/user/trial", b.admin, `{}`)
		if status != http.StatusOK {
			t.Fatalf("create: %d %v", status, body)
		}
		created[int64(body["id"].(float64))] = time.Now()
	}
	var fred int64
	if err := b.pool.QueryRow(ctx, `SELECT id FROM users WHERE username = 'fred'`).Scan(&fred); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	if err := b.daemon.Services().Signup.RequestActivation(ctx, fred); err != nil {
		t.Fatal(err)
	}

	var mailed time.Time
	arrived := map[int64]time.Time{} // trial id -> when its trial.created reached the healthy endpoint
	var slowest time.Duration
	deadline := time.After(120 * time.Second) // bounds a hang; before the fix the last one took 75 s
	for len(arrived) < len(created) || mailed.IsZero() {
		select {
		case ev := <-completed:
			var args jobargs.DeliverOutbox
			if ev.Job.Kind == jobargs.KindDeliverOutbox && json.Unmarshal(ev.Job.EncodedArgs, &args) == nil && args.Attempt == 0 {
				mailed = time.Now() // an e-mail's job: webhooks' count their attempts
			}
		case a := <-arrivals:
			arrived[a.trial] = a.at
			slowest = max(slowest, a.at.Sub(created[a.trial]))
		case <-deadline:
			t.Fatalf("after 120 s: %d of %d deliveries to the healthy endpoint, e-mail sent: %v", len(arrived), len(created), !mailed.IsZero())
		}
	}
	t.Logf("slowest delivery to the healthy endpoint %s, activation e-mail %s; %d attempts reached the slow ones",
		slowest.Round(time.Millisecond), mailed.Sub(asked).Round(time.Millisecond), slowAttempts.Load())
	if slowest > time.Second || mailed.Sub(asked) > time.Second {
		t.Errorf("the healthy endpoint waited up to %s, the e-mail %s; want both within 1 s", slowest, mailed.Sub(asked))
	}
	if slowAttempts.Load() < 10 {
		t.Errorf("%d attempts reached the slow endpoints, want at least one each", slowAttempts.Load())
	}
}
