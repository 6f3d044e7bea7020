package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/daemon"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/testdb"
	"github.com/trialsd/trialsd/internal/wire"
)

// t0 starts each test's stubbed clock at the real time, to the second, and
// tests only move it forward: River's job rescuer measures "stuck" against
// the wall clock while its fetch stamps jobs with the stub, so a stub in the
// past would make every running job look stuck.
var t0 = time.Now().UTC().Truncate(time.Second)

type testBundle struct {
	daemon *daemon.Daemon
	pool   *pgxpool.Pool
	clock  *clock.Stub
	server *httptest.Server
	admin  string // API key
	user   string // API key of a non-admin
}

func setup(t *testing.T, configure ...func(*config.Config)) *testBundle {
	t.Helper()
	return setupLogged(t, io.Discard, configure...)
}

// setupLogged is setup with the daemon's log written to w, as JSON.
func setupLogged(t *testing.T, w io.Writer, configure ...func(*config.Config)) *testBundle {
	t.Helper()
	stub := clock.NewStub(t0)
	b := setupClocked(t, w, stub, configure...)
	b.clock = stub
	return b
}

// setupClocked is setupLogged on clk: a test of real time's latencies runs
// on clock.Real, and has no stub to move.
func setupClocked(t *testing.T, w io.Writer, clk clock.Clock, configure ...func(*config.Config)) *testBundle {
	t.Helper()
	pool := testdb.New(t)
	cfg := config.Default()
	cfg.Auth.JWTSecret = strings.Repeat("s", 32)
	cfg.River.FetchPollInterval = 50 * time.Millisecond
	// The tests watch expiries through the trials' jobs, in River's events;
	// TestSweepExpiresWithoutTheJob turns the sweeps back on.
	cfg.Lifecycle.ExpirePoll = 0
	// The tests give fred and the admin several trials each;
	// withEligibilityRules turns the rules back on.
	e := &cfg.Eligibility
	e.OnePerAddress, e.ActivePerDomain, e.TrialsPerDomain = false, 0, 0
	for _, c := range configure {
		c(cfg)
	}
	logger := slog.New(slog.NewJSONHandler(w, nil))
	d, err := daemon.New(cfg, logger, pool, clk, daemon.Options{API: true, Workers: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, adminKey, err := d.Services().Accounts.CreateAdmin(ctx, "admin", "admin@acme.example", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO users (username, email, name, created_at, updated_at) VALUES ('fred', 'fred@acme.example', 'Fred', $1, $1)`, t0); err != nil {
		t.Fatal(err)
	}
	userKey, err := d.Services().Accounts.CreateAPIKey(ctx, "fred", "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return &testBundle{daemon: d, pool: pool, server: srv, admin: adminKey, user: userKey}
}

// withEligibilityRules sets the eligibility rules to the daemon's defaults.
func withEligibilityRules(cfg *config.Config) { cfg.Eligibility = config.Default().Eligibility }

// request is a JSON request to the daemon, with the API key when one is
// given.
func (b *testBundle) request(method, path, key, body string) (*http.Request, error) {
	req, err := http.NewRequest(method, b.server.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	return req, nil
}

func (b *testBundle) do(t *testing.T, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := b.request(method, path, key, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
	}
	return resp.StatusCode, out
}

// start starts the workers and stops them at the end of the test, returning
// a channel of completed jobs so the test waits on River, not on the clock.
func (b *testBundle) start(t *testing.T) <-chan *river.Event {
	t.Helper()
	events, cancel := b.daemon.River().Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobSnoozed)
	if err := b.daemon.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := b.daemon.Stop(context.Background()); err != nil {
			t.Errorf("stopping daemon: %v", err)
		}
	})
	return events
}

func waitForJob(t *testing.T, events <-chan *river.Event, kind string) *river.Event {
	t.Helper()
	timeout := time.After(15 * time.Second) // a failure guard, not a wait for time to pass
	for {
		select {
		case ev := <-events:
			if ev.Job.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s job finished", kind)
			return nil
		}
	}
}

// As shipped, the daemon's sweep expires a due trial without its job: the
// job is deleted unworked, the event names the sweep, and the expiry is
// counted as applied with its lag. Stopping the daemon stops the sweeps.
func TestSweepExpiresWithoutTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Config) { c.Lifecycle.ExpirePoll = config.Default().Lifecycle.ExpirePoll })
	expires := t0.Add(2 * time.Second)
	status, body := b.do(t, "POST", "/v1/api/user/trial", b.admin, `{"expirationDate":"`+expires.Format(time.RFC3339Nano)+`"}`)
	if status != http.StatusOK {
		t.Fatalf("create: %d %v", status, body)
	}
	id := int64(body["id"].(float64))
	b.clock.Set(expires.Add(time.Second))
	b.start(t)

	ctx := context.Background()
	var cause string
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	for {
		err := b.pool.QueryRow(ctx, `SELECT cause FROM trial_events WHERE trial_id = $1 AND kind = 'trial.expired'`, id).Scan(&cause)
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the due trial was not swept")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cause != domain.SweepCause {
		t.Errorf("expired event's cause = %q, want %q", cause, domain.SweepCause)
	}
	var expiryJobs int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'trial.expire'`).Scan(&expiryJobs); err != nil || expiryJobs != 0 {
		t.Errorf("%d trial.expire jobs left (%v), want the swept trial's deleted", expiryJobs, err)
	}
	m := b.scrape(t)
	for _, line := range []string{
		`trialsd_transitions_total{kind="expire",outcome="applied"} 1`,
		`trialsd_transition_lag_seconds_sum{kind="expire"} 1`,
		`trialsd_jobs_worked_total{kind="trial.expire",outcome="completed"} 0`,
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// The foundation slice: an admin creates a trial over HTTP, the expiry job is
// enqueued with it, time reaches the expiration date, the worker expires the
// trial once, and the result is visible over HTTP and in the metrics.
func TestTrialExpiresEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expires := t0.Add(2 * time.Second)

	status, body := b.do(t, "POST", "/v1/api/user/trial", b.admin,
		`{"expirationDate":"`+expires.Format(time.RFC3339Nano)+`","notes":"big prospect","organizationName":"ACME"}`)
	if status != http.StatusOK || body["success"] != true {
		t.Fatalf("create: %d %v", status, body)
	}
	id := int64(body["id"].(float64))
	if body["redirectUrl"] != "https://studio.edgeimpulse.com/organization/1" {
		t.Errorf("redirectUrl = %v", body["redirectUrl"])
	}

	path := "/v1/api/admin/trials/" + jsonInt(id)
	_, body = b.do(t, "GET", path, b.admin, "")
	trial := body["trial"].(map[string]any)
	if trial["expiredDate"] != nil || trial["expirationDate"] != wire.Format(expires) || trial["notes"] != "big prospect" {
		t.Fatalf("trial before expiry = %v", trial)
	}

	b.clock.Set(expires)
	events := b.start(t)
	ev := waitForJob(t, events, "trial.expire")
	if ev.Kind != river.EventKindJobCompleted {
		t.Fatalf("expire job ended %s: %+v", ev.Kind, ev.Job.Errors)
	}

	status, body = b.do(t, "GET", path, b.admin, "")
	if status != http.StatusOK {
		t.Fatalf("get: %d %v", status, body)
	}
	want := map[string]any{
		"id": float64(id), "userId": float64(1), "organizationId": float64(1),
		"created": wire.Format(t0), "expirationDate": wire.Format(expires),
		"notes": "big prospect", "expiredDate": wire.Format(expires), "deletedDate": nil, "upgradedDate": nil,
		"testClockId": nil,
	}
	trial = body["trial"].(map[string]any)
	for k, v := range want {
		if trial[k] != v {
			t.Errorf("trial[%s] = %v, want %v", k, trial[k], v)
		}
	}
	if len(trial) != len(want) {
		t.Errorf("trial has fields %v, want exactly %v", trial, want)
	}

	evs, err := b.daemon.Services().Lifecycle.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var expired int
	for _, e := range evs {
		if e.Kind == "trial.expired" {
			expired++
			if e.Cause != "job:"+jsonInt(ev.Job.ID) {
				t.Errorf("expired event cause = %s, want the job", e.Cause)
			}
		}
	}
	if expired != 1 {
		t.Fatalf("%d trial.expired events, want 1", expired)
	}

	metrics := b.scrape(t)
	for _, line := range []string{
		`trialsd_trials{state="expired"} 1`,
		`trialsd_trials{state="active"} 0`,
		`trialsd_transitions_total{kind="expire",outcome="applied"} 1`,
		`trialsd_transition_lag_seconds_count{kind="expire"} 1`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// A job that fires before its date (clock skew, a hand-edited row) is
// snoozed, not dropped: the trial still expires once the date comes.
func TestEarlyJobIsSnoozedNotLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, body := b.do(t, "POST", "/v1/api/user/trial", b.admin,
		`{"expirationDate":"`+t0.Add(time.Hour).Format(time.RFC3339)+`"}`)
	if status != http.StatusOK {
		t.Fatalf("create: %d %v", status, body)
	}
	// Make River run the job now, as a skewed replica would.
	if _, err := b.daemon.River().JobRetry(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	events := b.start(t)
	ev := waitForJob(t, events, "trial.expire")
	if ev.Kind != river.EventKindJobSnoozed {
		t.Fatalf("early job ended %s, want snoozed: %+v", ev.Kind, ev.Job.Errors)
	}
	_, body = b.do(t, "GET", "/v1/api/admin/trials/1", b.admin, "")
	if body["trial"].(map[string]any)["expiredDate"] != nil {
		t.Fatal("trial expired before its date")
	}
}

func TestAccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name, method, path, key string
		want                    int
	}{
		{"no key", "POST", "/v1/api/user/trial", "", http.StatusUnauthorized},
		{"malformed key", "POST", "/v1/api/user/trial", "nope", http.StatusUnauthorized},
		{"unknown key", "POST", "/v1/api/user/trial", "ei_" + strings.Repeat("0", 64), http.StatusUnauthorized},
		{"user starts a trial", "POST", "/v1/api/user/trial", b.user, http.StatusOK},
		{"second self-service trial", "POST", "/v1/api/user/trial", b.user, http.StatusConflict},
		{"user reads a trial", "GET", "/v1/api/admin/trials/1", b.user, http.StatusForbidden},
		{"admin reads a trial", "GET", "/v1/api/admin/trials/1", b.admin, http.StatusOK},
		{"admin reads a missing trial", "GET", "/v1/api/admin/trials/999", b.admin, http.StatusNotFound},
		{"bad trial id", "GET", "/v1/api/admin/trials/abc", b.admin, http.StatusBadRequest},
		{"unknown route", "GET", "/v1/api/nothing", b.admin, http.StatusNotFound},
	}
	for _, tt := range tests { // in order: the conflict needs the first trial
		status, body := b.do(t, tt.method, tt.path, tt.key, "{}")
		if status != tt.want {
			t.Errorf("%s: status %d (%v), want %d", tt.name, status, body, tt.want)
		}
		if (status == http.StatusOK) != (body["success"] == true) {
			t.Errorf("%s: success = %v with status %d", tt.name, body["success"], status)
		}
		if status != http.StatusOK && body["error"] == "" {
			t.Errorf("%s: no error message", tt.name)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := b.do(t, "GET", path, "", ""); status != http.StatusOK {
			t.Errorf("%s: %d %v", path, status, body)
		}
	}
}

func (b *testBundle) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(b.server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return buf.String()
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Run serves on its listener until its context ends, then shuts down
// cleanly: HTTP stops, River stops, Run returns nil.
func TestRunServesAndShutsDownGracefully(t *testing.T) {
	t.Parallel()
	addr, stop := runDaemon(t, daemon.Options{API: true, Workers: true})
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz = %d", resp.StatusCode)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

// With an endpoint configured, the running daemon delivers each lifecycle
// event without anyone asking, signed so the Standard Webhooks library
// verifies it.
func TestWebhookDeliveredByRunningDaemon(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		bodies <- body
		got <- r
	}))
	t.Cleanup(receiver.Close)
	secret, err := outbox.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *config.Config) {
		c.Webhooks.Endpoints = []string{receiver.URL + "/hooks"}
		c.Webhooks.Secret = secret
		c.Webhooks.AllowPrivateNetworks = true
	})
	events := b.start(t)
	if status, body := b.do(t, "POST", "/v1/api/user/trial", b.user, `{}`); status != http.StatusOK {
		t.Fatalf("create: %d %v", status, body)
	}
	ev := waitForJob(t, events, "outbox.deliver")
	if ev.Kind != river.EventKindJobCompleted {
		t.Fatalf("delivery ended %s: %v", ev.Kind, ev.Job.Errors)
	}
	r, body := <-got, <-bodies
	// The daemon's clock starts at the real time: the library checks the
	// timestamp's age too.
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, r.Header); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil || p["type"] != "trial.created" || r.URL.Path != "/hooks" {
		t.Fatalf("delivery %s %v (%v)", r.URL.Path, p, err)
	}
}

// After trials move through transitions on the running daemon, /metrics
// shows them: state gauges, transitions and their lag, jobs worked, HTTP
// requests by route pattern, queue gauges and the River leader.
func TestMetricsAfterTransitions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, body := range []string{
		`{"expirationDate":"` + t0.Add(time.Second).Format(time.RFC3339Nano) + `"}`,
		`{"expirationDate":"` + t0.Add(48*time.Hour).Format(time.RFC3339Nano) + `"}`,
	} {
		if status, resp := b.do(t, "POST", "/v1/api/user/trial", b.admin, body); status != http.StatusOK {
			t.Fatalf("create: %d %v", status, resp)
		}
	}
	b.clock.Advance(time.Second)
	events := b.start(t)
	if ev := waitForJob(t, events, "trial.expire"); ev.Kind != river.EventKindJobCompleted {
		t.Fatalf("expire: %s", ev.Kind)
	}
	// The leader is elected by now: it promoted the job that just ran.
	b.daemon.Metrics().Refresh(context.Background(), b.daemon.MetricSources(), slog.New(slog.DiscardHandler))

	m := b.scrape(t)
	for _, line := range []string{
		`trialsd_trials{state="active"} 1`,
		`trialsd_trials{state="expired"} 1`,
		`trialsd_transitions_total{kind="expire",outcome="applied"} 1`,
		`trialsd_transition_lag_seconds_count{kind="expire"} 1`,
		`trialsd_jobs_worked_total{kind="trial.expire",outcome="completed"} 1`,
		`trialsd_http_requests_total{method="POST",route="POST /v1/api/user/trial",status="200"} 2`,
		`trialsd_jobs{queue="lifecycle",state="scheduled"} 1`, // the expired trial's Delete
		`trialsd_jobs{queue="expiry",state="scheduled"} 1`,    // the other's expiry (48h: no 72h reminder)
		`trialsd_river_leader_elected 1`,
		`trialsd_ready 1`,
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("/metrics lacks %q in:\n%s", line, grepLines(m, "trialsd_jobs{"))
		}
	}
	if strings.Contains(m, `route="/v1/api/admin/trials/1"`) {
		t.Error("a raw path became a label: one series per trial")
	}
}

// grepLines returns the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	return keepLines(text, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// keepLines returns the lines of text that keep accepts.
func keepLines(text string, keep func(string) bool) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if keep(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// River's UI is served to admins only, and only when enabled.
func TestRiverUI(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, b *testBundle, path, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", b.server.URL+path, nil)
		if key != "" {
			req.Header.Set("x-api-key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	b := setup(t, func(c *config.Config) { c.HTTP.RiverUI = true })
	b.start(t)
	if status, _ := get(t, b, "/riverui/", ""); status != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", status)
	}
	if status, _ := get(t, b, "/riverui/", b.user); status != http.StatusForbidden {
		t.Errorf("non-admin: %d", status)
	}
	if status, body := get(t, b, "/riverui/", b.admin); status != http.StatusOK || !strings.Contains(strings.ToLower(body), "<html") {
		t.Errorf("admin: %d %.200s", status, body)
	}
	if status, body := get(t, b, "/riverui/api/jobs?state=scheduled", b.admin); status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(body), "{") {
		t.Errorf("admin API: %d %.200s", status, body)
	}

	off := setup(t)
	if status, _ := get(t, off, "/riverui/", off.admin); status != http.StatusNotFound {
		t.Errorf("UI off: %d, want 404", status)
	}

	// With the console, a browser is sent to its login page; an API client
	// keeps its 401.
	console := setup(t, func(c *config.Config) { c.Console.Enabled, c.HTTP.RiverUI = true, true })
	if status, body := get(t, console, "/riverui/api/jobs", ""); status != http.StatusUnauthorized || !strings.HasPrefix(body, "{") {
		t.Errorf("API client with the console: %d %.100s", status, body)
	}
	req, _ := http.NewRequest("GET", console.server.URL+"/riverui/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login?next=%2Friverui%2F" {
		t.Errorf("browser with the console: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// A client that never finishes its headers is cut off after
// http.read_header_timeout instead of holding a connection forever.
func TestSlowClientIsCutOff(t *testing.T) {
	t.Parallel()
	addr, _ := runDaemon(t, daemon.Options{API: true}, func(c *config.Config) {
		c.HTTP.ReadHeaderTimeout = 200 * time.Millisecond
	})

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/api-login HTTP/1.1\r\nHost: trialsd\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a failure guard
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a half-sent request open")
	}
	if err == nil && !strings.Contains(string(buf[:n]), "408") {
		t.Fatalf("answered %q, want the connection closed or 408", buf[:n])
	}
}

// runDaemon runs a daemon's Run on a free loopback port until stop (or the
// end of the test), and returns its address once it accepts requests; stop
// returns what Run returned.
func runDaemon(t *testing.T, opts daemon.Options, configure ...func(*config.Config)) (addr string, stop func() error) {
	t.Helper()
	pool := testdb.New(t)
	cfg := config.Default()
	cfg.Auth.JWTSecret = strings.Repeat("s", 32)
	cfg.HTTP.Addr = "127.0.0.1:0"
	for _, c := range configure {
		c(cfg)
	}
	d, err := daemon.New(cfg, slog.New(slog.DiscardHandler), pool, clock.NewStub(t0), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case addr = <-d.Listening():
	case err := <-done:
		once.Do(func() { cancel(); runErr = err }) // stop must not wait on done again
		t.Fatalf("Run returned before listening: %v", err)
	}
	return addr, stop
}

// The profiler listens only where http.pprof_addr says, never on the API.
func TestPprofOnItsOwnListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pprofAddr := ln.Addr().String()
	ln.Close()
	addr, _ := runDaemon(t, daemon.Options{API: true}, func(c *config.Config) { c.HTTP.PprofAddr = pprofAddr })

	tests := []struct {
		url  string
		want int
	}{
		{"http://" + pprofAddr + "/debug/pprof/cmdline", http.StatusOK},
		{"http://" + pprofAddr + "/debug/pprof/goroutine?debug=1", http.StatusOK},
		{"http://" + addr + "/debug/pprof/cmdline", http.StatusNotFound},
	}
	for _, tt := range tests {
		resp, err := http.Get(tt.url)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s = %d, want %d", tt.url, resp.StatusCode, tt.want)
		}
	}
}
