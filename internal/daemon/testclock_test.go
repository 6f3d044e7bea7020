package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/wire"
)

// hookLog collects the webhook deliveries a receiver got.
type hookLog struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var p map[string]any
	if json.Unmarshal(raw, &p) == nil {
		h.mu.Lock()
		h.bodies = append(h.bodies, p)
		h.mu.Unlock()
	}
}

// ofType returns the deliveries of events of kind.
func (h *hookLog) ofType(kind string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, p := range h.bodies {
		if p["type"] == kind {
			out = append(out, p)
		}
	}
	return out
}

// eventually polls cond until it holds; the deadline only bounds a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func withTestClocks(c *config.Config) { c.TestClocks.Enabled = true }

// withoutNotices switches every trial e-mail off.
func withoutNotices(c *config.Config) { c.Email.Notices = config.Notices{} }

// setupClocks is setup with test clocks on, its stub moved to the real
// time: River's rescuer measures a running job's age against the wall
// clock while the stub stamps it, and these tests run jobs however late in
// the package's run they start.
func setupClocks(t *testing.T, configure ...func(*config.Config)) *testBundle {
	t.Helper()
	b := setup(t, append([]func(*config.Config){withTestClocks}, configure...)...)
	if now := time.Now().UTC().Truncate(time.Second); now.After(b.clock.Now()) {
		b.clock.Set(now)
	}
	return b
}

// advance moves a clock and waits until it is ready at to.
func (b *testBundle) advance(t *testing.T, clock int64, to string) {
	t.Helper()
	path := "/v1/api/admin/test-clocks/" + jsonInt(clock)
	status, body := b.do(t, "POST", path+"/advance", b.admin, `{"frozenTime":"`+to+`"}`)
	if status != http.StatusOK || body["testClock"].(map[string]any)["status"] != "advancing" {
		t.Fatalf("advance to %s: %d %v", to, status, body)
	}
	eventually(t, "clock ready at "+to, func() bool {
		_, body := b.do(t, "GET", path, b.admin, "")
		c := body["testClock"].(map[string]any)
		return c["status"] == "ready" && c["frozenTime"] == to
	})
}

// eventsAt returns a trial's history as kind → the times it happened.
func (b *testBundle) eventsAt(t *testing.T, trial int64) map[string][]string {
	t.Helper()
	status, body := b.do(t, "GET", "/v1/api/admin/trials/"+jsonInt(trial)+"/events", b.admin, "")
	if status != http.StatusOK {
		t.Fatalf("events: %d %v", status, body)
	}
	out := map[string][]string{}
	for _, e := range body["events"].([]any) {
		e := e.(map[string]any)
		out[e["kind"].(string)] = append(out[e["kind"].(string)], e["at"].(string))
	}
	return out
}

func (b *testBundle) fredID(t *testing.T) int64 {
	t.Helper()
	var id int64
	if err := b.pool.QueryRow(context.Background(), `SELECT id FROM users WHERE username = 'fred'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// A trial on a test clock lives its whole life in seconds, by the real jobs:
// each transition lands at its exact simulated due date, its webhook carries
// simulated times and the clock, and a real-time trial beside it is not
// touched.
func TestTestClockRehearsesATrialsLife(t *testing.T) {
	t.Parallel()
	hooks := &hookLog{}
	receiver := httptest.NewServer(hooks)
	t.Cleanup(receiver.Close)
	secret, err := outbox.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b := setupClocks(t, func(c *config.Config) {
		c.Webhooks.Endpoints = []string{receiver.URL}
		c.Webhooks.Secret = secret
		c.Webhooks.AllowPrivateNetworks = true
	})
	b.start(t)

	status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"rehearsal","frozenTime":"2031-01-01T00:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("create clock: %d %v", status, body)
	}
	clock := int64(body["testClock"].(map[string]any)["id"].(float64))
	status, body = b.do(t, "POST", "/v1/api/admin/trials", b.admin,
		`{"userId":`+jsonInt(b.fredID(t))+`,"testClockId":`+jsonInt(clock)+`}`)
	if status != http.StatusOK {
		t.Fatalf("create trial on the clock: %d %v", status, body)
	}
	onClock := int64(body["id"].(float64))
	status, body = b.do(t, "POST", "/v1/api/user/trial", b.user, `{}`)
	if status != http.StatusOK {
		t.Fatalf("create a real-time trial: %d %v", status, body)
	}
	realTime := int64(body["id"].(float64))

	_, body = b.do(t, "GET", "/v1/api/admin/trials/"+jsonInt(onClock), b.admin, "")
	trial := body["trial"].(map[string]any)
	if trial["created"] != "2031-01-01T00:00:00.000Z" || trial["expirationDate"] != "2031-01-15T00:00:00.000Z" || trial["testClockId"] != float64(clock) {
		t.Fatalf("trial on the clock = %v", trial)
	}

	b.advance(t, clock, "2031-01-16T00:00:00.000Z")
	_, body = b.do(t, "GET", "/v1/api/admin/trials/"+jsonInt(onClock), b.admin, "")
	if got := body["trial"].(map[string]any)["expiredDate"]; got != "2031-01-15T00:00:00.000Z" {
		t.Fatalf("expiredDate = %v, want the expiration date exactly", got)
	}
	evs := b.eventsAt(t, onClock)
	if len(evs["trial.will_end"]) != 1 || evs["trial.will_end"][0] != "2031-01-12T00:00:00.000Z" {
		t.Errorf("trial.will_end at %v, want once, 72 h before expiry", evs["trial.will_end"])
	}
	if len(evs["trial.expired"]) != 1 || evs["trial.expired"][0] != "2031-01-15T00:00:00.000Z" {
		t.Errorf("trial.expired at %v, want once, at expiry", evs["trial.expired"])
	}
	eventually(t, "the trial.expired webhook", func() bool { return len(hooks.ofType("trial.expired")) == 1 })
	hook := hooks.ofType("trial.expired")[0]
	data := hook["data"].(map[string]any)
	if hook["timestamp"] != "2031-01-15T00:00:00.000Z" || data["event"].(map[string]any)["at"] != "2031-01-15T00:00:00.000Z" ||
		data["trial"].(map[string]any)["testClockId"] != float64(clock) {
		t.Errorf("trial.expired webhook = %v, want simulated time and the clock", hook)
	}

	eventually(t, "the clock's ready webhook", func() bool { return len(hooks.ofType("test_clock.ready")) == 1 })
	ready := hooks.ofType("test_clock.ready")[0]["data"].(map[string]any)["testClock"].(map[string]any)
	if ready["frozenTime"] != "2031-01-16T00:00:00.000Z" || ready["status"] != "ready" || len(hooks.ofType("test_clock.advancing")) != 1 {
		t.Errorf("test_clock.ready carries %v, and %d advancing events were sent; want the clock at its target, after one",
			ready, len(hooks.ofType("test_clock.advancing")))
	}

	b.advance(t, clock, "2031-03-22T00:00:00.000Z") // day 80
	evs = b.eventsAt(t, onClock)
	if len(evs["trial.deleted"]) != 1 || evs["trial.deleted"][0] != "2031-02-14T00:00:00.000Z" {
		t.Errorf("trial.deleted at %v, want once, grace_period after expiry", evs["trial.deleted"])
	}
	if len(evs["trial.purged"]) != 1 || evs["trial.purged"][0] != "2031-03-16T00:00:00.000Z" {
		t.Errorf("trial.purged at %v, want once, purge_after after deletion", evs["trial.purged"])
	}
	if status, _ := b.do(t, "GET", "/v1/api/admin/trials/"+jsonInt(onClock), b.admin, ""); status != http.StatusNotFound {
		t.Errorf("the purged trial answers %d, want 404", status)
	}

	_, body = b.do(t, "GET", "/v1/api/admin/trials/"+jsonInt(realTime), b.admin, "")
	real := body["trial"].(map[string]any)
	if real["expiredDate"] != nil || real["testClockId"] != nil || real["created"] == "2031-01-01T00:00:00.000Z" {
		t.Errorf("the real-time trial moved with the clock: %v", real)
	}
	if evs := b.eventsAt(t, realTime); len(evs) != 1 || len(evs["trial.created"]) != 1 {
		t.Errorf("the real-time trial's history = %v, want its creation only", evs)
	}
	// The rehearsal is left out of the business metrics: only the
	// real-time self-service start counts.
	metrics := b.scrape(t)
	for _, line := range []string{
		`trialsd_trials_started_total{source="admin"} 0`,
		`trialsd_trials_started_total{source="self_service"} 1`,
		`trialsd_trial_changes_total{kind="expired"} 0`,
		`trialsd_trial_changes_total{kind="purged"} 0`,
		`trialsd_trials{state="active"} 1`,
		`trialsd_trials{state="purged"} 0`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// An advance that cannot start says why; a daemon without test clocks does
// not know them.
func TestTestClockRefusals(t *testing.T) {
	t.Parallel()
	b := setupClocks(t)
	status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"c","frozenTime":"2031-01-01T00:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("create clock: %d %v", status, body)
	}
	path := "/v1/api/admin/test-clocks/" + jsonInt(int64(body["testClock"].(map[string]any)["id"].(float64)))
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"frozenTime":"2031-01-01T00:00:00Z"}`, http.StatusBadRequest}, // not after its time
		{`{"frozenTime":"2034-01-01T00:00:00Z"}`, http.StatusBadRequest}, // beyond max_advance
		{`{}`, http.StatusBadRequest},                                    // no time
		{`{"frozenTime":"2031-02-01T00:00:00Z"}`, http.StatusOK},         // starts: no worker runs it here
		{`{"frozenTime":"2031-03-01T00:00:00Z"}`, http.StatusConflict},   // already advancing
	} {
		if status, body := b.do(t, "POST", path+"/advance", b.admin, tc.body); status != tc.want {
			t.Errorf("advance %s: %d %v, want %d", tc.body, status, body, tc.want)
		}
	}
	if status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin,
		`{"userId":`+jsonInt(b.fredID(t))+`,"testClockId":`+path[len("/v1/api/admin/test-clocks/"):]+`}`); status != http.StatusConflict {
		t.Errorf("a trial on an advancing clock: %d %v, want 409", status, body)
	}
	if status, _ := b.do(t, "GET", path, b.user, ""); status != http.StatusForbidden {
		t.Errorf("a user reads a clock: %d, want 403", status)
	}

	off := setup(t)
	if status, _ := off.do(t, "GET", "/v1/api/admin/test-clocks", off.admin, ""); status != http.StatusNotFound {
		t.Errorf("test clocks off: %d, want 404", status)
	}
	if status, body := off.do(t, "POST", "/v1/api/admin/trials", off.admin, `{"userId":1,"testClockId":1}`); status != http.StatusNotFound {
		t.Errorf("testClockId with test clocks off: %d %v, want 404", status, body)
	}
}

// A clock holding test_clocks.max_trials trials goes through their whole
// life in one advance, every transition exactly once. The time it takes is
// logged (docs/performance.md has the figure); the test asserts only what
// happened.
func TestTestClockAdvancesAFullClock(t *testing.T) {
	t.Parallel()
	b := setupClocks(t, withoutNotices) // the notices' own test is TestTestClockSendsTheTrialsEmails
	b.start(t)
	status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"full","frozenTime":"2031-01-01T00:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("create clock: %d %v", status, body)
	}
	clock := int64(body["testClock"].(map[string]any)["id"].(float64))
	n := config.Default().TestClocks.MaxTrials
	fred := jsonInt(b.fredID(t))
	for range n {
		if status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+fred+`,"testClockId":`+jsonInt(clock)+`}`); status != http.StatusOK {
			t.Fatalf("create trial: %d %v", status, body)
		}
	}
	if status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+fred+`,"testClockId":`+jsonInt(clock)+`}`); status != http.StatusConflict {
		t.Fatalf("trial %d on a full clock: %d %v, want 409", n+1, status, body)
	}
	start := time.Now()
	b.advance(t, clock, "2031-03-22T00:00:00.000Z")
	t.Logf("%d trials through an 80-day advance in %s", n, time.Since(start).Round(time.Millisecond))

	rows, err := b.pool.Query(context.Background(), `SELECT kind, count(*), count(DISTINCT trial_id), min(at), max(at) FROM trial_events GROUP BY kind`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"trial.created": "2031-01-01", "trial.will_end": "2031-01-12", "trial.expired": "2031-01-15",
		"trial.deleted": "2031-02-14", "trial.purged": "2031-03-16",
	}
	for rows.Next() {
		var kind string
		var events, trials int
		var first, last time.Time
		if err := rows.Scan(&kind, &events, &trials, &first, &last); err != nil {
			t.Fatal(err)
		}
		day := first.UTC().Format("2006-01-02")
		if events != n || trials != n || !first.Equal(last) || day != want[kind] {
			t.Errorf("%s: %d events of %d trials between %v and %v; want one per trial, all on %s", kind, events, trials, first, last, want[kind])
		}
		delete(want, kind)
	}
	if len(want) > 0 {
		t.Errorf("no events of %v", want)
	}
}

// A clock in the past holds trials long "due" by real time: a real-time
// expiry's batch claims none of them, and the trial stays active until its
// clock is advanced.
func TestRealTimeExpiryLeavesClockTrials(t *testing.T) {
	t.Parallel()
	b := setupClocks(t)
	status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"past","frozenTime":"2020-01-01T00:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("create clock: %d %v", status, body)
	}
	clock := jsonInt(int64(body["testClock"].(map[string]any)["id"].(float64)))
	fred := jsonInt(b.fredID(t))
	status, body = b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+fred+`,"testClockId":`+clock+`}`)
	if status != http.StatusOK {
		t.Fatalf("create trial on the clock: %d %v", status, body)
	}
	onClock := "/v1/api/admin/trials/" + jsonInt(int64(body["id"].(float64)))
	expires := b.clock.Now().Add(time.Second)
	status, body = b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+fred+`,"expirationDate":"`+wire.Format(expires)+`"}`)
	if status != http.StatusOK {
		t.Fatalf("create a real-time trial: %d %v", status, body)
	}
	b.clock.Set(expires)
	if ev := waitForJob(t, b.start(t), "trial.expire"); ev.Kind != river.EventKindJobCompleted {
		t.Fatalf("the real-time expiry ended %s", ev.Kind)
	}
	_, body = b.do(t, "GET", onClock, b.admin, "")
	if got := body["trial"].(map[string]any)["expiredDate"]; got != nil {
		t.Fatalf("the clock's trial expired by real time: expiredDate %v", got)
	}
}

// Deleting a clock takes its trials with their organizations and pending
// jobs, at once and without events; the reconcile sweep does the same for a
// clock past its retention. A real-time trial stays.
func TestTestClockDeletion(t *testing.T) {
	t.Parallel()
	b := setupClocks(t)
	ctx := context.Background()
	fred := jsonInt(b.fredID(t))
	newClock := func() string {
		status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"c","frozenTime":"2031-01-01T00:00:00Z"}`)
		if status != http.StatusOK {
			t.Fatalf("create clock: %d %v", status, body)
		}
		id := jsonInt(int64(body["testClock"].(map[string]any)["id"].(float64)))
		for range 2 {
			if status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+fred+`,"testClockId":`+id+`}`); status != http.StatusOK {
				t.Fatalf("create trial: %d %v", status, body)
			}
		}
		return id
	}
	if status, body := b.do(t, "POST", "/v1/api/user/trial", b.user, `{}`); status != http.StatusOK {
		t.Fatalf("create a real-time trial: %d %v", status, body)
	}
	left := func() (trials, orgs, pending int) {
		q := `SELECT (SELECT count(*) FROM trials WHERE test_clock_id IS NOT NULL),
			(SELECT count(*) FROM organizations), (SELECT count(*) FROM river_job WHERE state = 'pending')`
		if err := b.pool.QueryRow(ctx, q).Scan(&trials, &orgs, &pending); err != nil {
			t.Fatal(err)
		}
		return trials, orgs, pending
	}

	deleted := newClock()
	if status, body := b.do(t, "DELETE", "/v1/api/admin/test-clocks/"+deleted, b.admin, ""); status != http.StatusOK {
		t.Fatalf("delete clock: %d %v", status, body)
	}
	if status, _ := b.do(t, "GET", "/v1/api/admin/test-clocks/"+deleted, b.admin, ""); status != http.StatusNotFound {
		t.Errorf("a deleted clock answers %d, want 404", status)
	}
	if trials, orgs, pending := left(); trials != 0 || orgs != 1 || pending != 0 {
		t.Errorf("after the delete: %d clock trials, %d organizations, %d pending jobs; want 0, the real-time trial's 1, 0", trials, orgs, pending)
	}

	expired := newClock()
	if _, err := b.pool.Exec(ctx, `UPDATE test_clocks SET deletes_after = $1 WHERE id = `+expired, b.clock.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	report, err := b.daemon.Services().Lifecycle.Reconcile(ctx)
	if err != nil || report.DeletedTestClocks != 1 {
		t.Fatalf("reconcile = %+v, %v; want one clock deleted", report, err)
	}
	if trials, orgs, pending := left(); trials != 0 || orgs != 1 || pending != 0 {
		t.Errorf("after the sweep: %d clock trials, %d organizations, %d pending jobs; want 0, 1, 0", trials, orgs, pending)
	}
	var events int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM trial_events WHERE kind <> 'trial.created' OR trial_id > 1`).Scan(&events); err != nil || events != 0 {
		t.Errorf("%d events left of the clocks' trials (%v), want none", events, err)
	}
}

// An admin's change to a clock's trial happens at the clock's now: a date
// in the clock's past expires the trial at the clock's time, an upgrade is
// dated by the clock.
func TestAdminChangesOnAClockUseItsTime(t *testing.T) {
	t.Parallel()
	b := setupClocks(t)
	status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"c","frozenTime":"2031-01-01T00:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("create clock: %d %v", status, body)
	}
	clock := jsonInt(int64(body["testClock"].(map[string]any)["id"].(float64)))
	fred := jsonInt(b.fredID(t))
	trial := func() string {
		status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+fred+`,"testClockId":`+clock+`}`)
		if status != http.StatusOK {
			t.Fatalf("create trial: %d %v", status, body)
		}
		return "/v1/api/admin/trials/" + jsonInt(int64(body["id"].(float64)))
	}
	get := func(path string) map[string]any {
		_, body := b.do(t, "GET", path, b.admin, "")
		return body["trial"].(map[string]any)
	}

	shortened := trial()
	if status, body := b.do(t, "PUT", shortened, b.admin, `{"expirationDate":"2030-12-31T00:00:00Z"}`); status != http.StatusOK {
		t.Fatalf("shorten: %d %v", status, body)
	}
	if got := get(shortened)["expiredDate"]; got != "2031-01-01T00:00:00.000Z" {
		t.Errorf("a date in the clock's past expired the trial at %v, want the clock's now", got)
	}
	upgraded := trial()
	if status, body := b.do(t, "POST", upgraded+"/upgrade", b.admin, ""); status != http.StatusOK {
		t.Fatalf("upgrade: %d %v", status, body)
	}
	if got := get(upgraded)["upgradedDate"]; got != "2031-01-01T00:00:00.000Z" {
		t.Errorf("upgradedDate = %v, want the clock's now", got)
	}
}

// loadClocks is how many clocks advance at once beside a real-time trial.
const loadClocks = 250

// Rehearsals run on their own queue and hold no worker while they wait for
// a step's jobs: with loadClocks clocks advancing two years at once, a
// real-time reminder that falls due mid-advance fires within a second of
// its time, and every clock still arrives, each transition of its trial
// once at its simulated date. The advances are all waiting when the
// workers start, as after a restart or a burst of requests. Not parallel:
// it measures a lag, so it runs alone; the figures are logged
// (docs/reliability.md has them).
func TestRealTimeReminderWhileClocksAdvance(t *testing.T) {
	b := setupClocked(t, io.Discard, clock.Real{}, withTestClocks, withoutNotices) // the transitions alone, as docs/reliability.md measured them
	ctx := context.Background()
	lc := b.daemon.Services().Lifecycle
	fred := b.fredID(t)
	defaults := config.Default()
	start := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	target := start.Add(defaults.TestClocks.MaxAdvance)
	for i := range loadClocks {
		clk, err := lc.CreateTestClock(ctx, lifecycle.NewTestClock{Name: "load " + strconv.Itoa(i), FrozenTime: start})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lc.StartTrial(ctx, domain.Operator, lifecycle.StartTrialRequest{UserID: fred, TestClockID: &clk.ID}, "request:load"); err != nil {
			t.Fatal(err)
		}
		if _, err := lc.AdvanceTestClock(ctx, clk.ID, target); err != nil {
			t.Fatal(err)
		}
	}
	// The reminder falls due once the advances are under way, and more
	// than River's scheduling interval (5 s) after the workers start, so
	// an idle daemon fires it on time.
	due := time.Now().Add(8 * time.Second).UTC().Truncate(time.Millisecond)
	expires := due.Add(defaults.Lifecycle.ReminderBefore[0])
	realTime, err := lc.StartTrial(ctx, domain.Operator, lifecycle.StartTrialRequest{UserID: fred, ExpirationDate: &expires}, "request:load")
	if err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	b.start(t)

	fired, advancing := b.reminderFired(t, realTime.TrialID)
	lag := fired.Sub(due)
	t.Logf("the real-time reminder fired %s after its time, %d clocks advancing", lag.Round(time.Millisecond), advancing)
	if lag < 0 || lag > time.Second {
		t.Fatalf("the real-time reminder fired %s after its time, want within 1 s", lag.Round(time.Millisecond))
	}
	if advancing == 0 {
		t.Fatalf("the advances were over by the reminder's time (%s after the workers started): it measured nothing", due.Sub(begun).Round(time.Millisecond))
	}
	deadline := time.Now().Add(5 * time.Minute) // bounds a hang only
	for count(t, b.pool, `SELECT count(*) FROM test_clocks WHERE status = 'ready' AND frozen_time = $1`, target) < loadClocks {
		if time.Now().After(deadline) {
			t.Fatalf("the clocks are not all ready at %s after 5 minutes", target)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d clocks advanced two years in %s", loadClocks, time.Since(begun).Round(time.Millisecond))
	for kind, day := range map[string]string{
		"trial.will_end": "2031-01-12", "trial.expired": "2031-01-15", "trial.deleted": "2031-02-14", "trial.purged": "2031-03-16",
	} {
		at, _ := time.Parse(time.DateOnly, day)
		if n := count(t, b.pool, `SELECT count(DISTINCT trial_id) FROM trial_events WHERE kind = $1 AND at = $2`, kind, at); n != loadClocks {
			t.Errorf("%d clock trials have %s on %s, want %d", n, kind, day, loadClocks)
		}
		if n := count(t, b.pool, `SELECT count(*) FROM trial_events WHERE kind = $1 AND trial_id <> $2`, kind, realTime.TrialID); n != loadClocks {
			t.Errorf("%d %s events of the clock trials, want one each", n, kind)
		}
	}
}

// reminderFired waits for a trial's trial.will_end and returns when it
// happened, with how many clocks were advancing when it was seen.
func (b *testBundle) reminderFired(t *testing.T, trial int64) (time.Time, int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second) // bounds a hang only
	for {
		var at time.Time
		err := b.pool.QueryRow(context.Background(),
			`SELECT at FROM trial_events WHERE trial_id = $1 AND kind = 'trial.will_end'`, trial).Scan(&at)
		if err == nil {
			return at, count(t, b.pool, `SELECT count(*) FROM test_clocks WHERE status = 'advancing'`)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the real-time reminder did not fire within 90 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count runs a counting query.
func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
