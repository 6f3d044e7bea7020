package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP endpoint on loopback that records each delivery
// and answers with the statuses it is told to, in turn (the last one
// repeating).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	header   http.Header
	got      []delivery
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses, header: http.Header{}}
	if len(statuses) == 0 {
		r.statuses = []int{http.StatusOK}
	}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, delivery{header: req.Header.Clone(), body: body})
		status := r.statuses[min(len(r.got), len(r.statuses))-1]
		for k, v := range r.header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// verify checks d with the Standard Webhooks library, as a receiver
// holding secret would, the timestamp tolerance included.
func verify(t *testing.T, secret string, d delivery) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(d.body, d.header)
}

type testBundle struct {
	pool      *pgxpool.Pool
	clock     *clock.Stub
	cfg       config.Webhooks
	outbox    *outbox.Writer
	deliverer *outbox.Deliverer
	endpoints *outbox.Endpoints
	client    *river.Client[pgx.Tx]
	trial     domain.Trial
}

// testConfig is webhooks.* with short retries, for tests on loopback.
func testConfig() config.Webhooks {
	return config.Webhooks{
		RetrySchedule: []time.Duration{time.Second, time.Minute}, RetryAfterMax: time.Hour,
		DisableAfter: 24 * time.Hour, RotationOverlap: time.Hour, AllowPrivateNetworks: true, Timeout: 2 * time.Second,
		EndpointConcurrency: 4,
	}
}

// setup builds the outbox on a fresh database with one trial. The clock
// starts at the real time, whole seconds, so the library's timestamp
// tolerance applies as it would for a receiver.
func setup(t *testing.T, edit ...func(*config.Webhooks)) *testBundle {
	t.Helper()
	pool := testdb.New(t)
	stub := clock.NewStub(time.Now().UTC().Truncate(time.Second))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Test: river.TestConfig{Time: stub}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	for _, e := range edit {
		e(&cfg)
	}
	writer := outbox.NewWriter(client, 3)
	b := &testBundle{
		pool: pool, clock: stub, cfg: cfg, outbox: writer, client: client,
		deliverer: outbox.NewDeliverer(outbox.DelivererDeps{
			Pool: pool, Clock: stub, Writer: writer, Config: cfg, Logger: slog.New(slog.DiscardHandler),
		}),
		endpoints: outbox.NewEndpoints(pool, stub, cfg, writer),
	}
	ctx := context.Background()
	q := store.New(pool)
	now := stub.Now()
	u, err := q.InsertUser(ctx, store.InsertUserParams{Username: "fred", Email: "fred@acme.example", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	org, err := q.InsertOrganization(ctx, store.NewOrganization{Name: "ACME", Trial: true, EnterpriseFeatures: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	b.trial, err = q.InsertTrial(ctx, store.InsertTrialParams{UserID: u.ID, OrganizationID: org.ID, ExpirationDate: now.Add(time.Hour), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addEndpoint creates an endpoint through the service and returns it with
// its secret.
func (b *testBundle) addEndpoint(t *testing.T, url string, eventTypes ...string) (store.WebhookEndpoint, string) {
	t.Helper()
	spec := outbox.EndpointSpec{URL: &url}
	if len(eventTypes) > 0 {
		spec.EventTypes = &eventTypes
	}
	ep, secret, err := b.endpoints.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return ep, secret
}

// record writes an event of kind to the trial's history and hands it to the
// outbox, as the lifecycle does, and returns it.
func (b *testBundle) record(t *testing.T, kind string) domain.Event {
	t.Helper()
	ev := domain.Event{TrialID: b.trial.ID, Kind: kind, At: b.clock.Now(), Actor: "system", Cause: "job:9", Data: json.RawMessage(`{"a":1}`)}
	err := store.InTx(context.Background(), b.pool, func(tx pgx.Tx) error {
		var err error
		if ev.ID, err = store.New(tx).InsertTrialEvent(context.Background(), ev); err != nil {
			return err
		}
		return b.outbox.Enqueue(context.Background(), tx, ev, b.trial)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// job is a delivery job waiting in River.
type job struct {
	args        jobargs.DeliverOutbox
	scheduledAt time.Time
}

// jobs lists the delivery jobs waiting, oldest first, and deletes them, so
// the next call sees only the jobs enqueued since.
func (b *testBundle) jobs(t *testing.T) []job {
	t.Helper()
	ctx := context.Background()
	res, err := b.client.JobList(ctx, river.NewJobListParams().Kinds(jobargs.KindDeliverOutbox).
		States(rivertype.JobStateAvailable, rivertype.JobStateScheduled).First(100))
	if err != nil {
		t.Fatal(err)
	}
	var out []job
	for _, j := range res.Jobs {
		var args jobargs.DeliverOutbox
		_ = json.Unmarshal(j.EncodedArgs, &args)
		out = append(out, job{args: args, scheduledAt: j.ScheduledAt})
		if _, err := b.client.JobDelete(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// deliver runs the delivery of j, as its worker does.
func (b *testBundle) deliver(t *testing.T, j job) string {
	t.Helper()
	_, outcome, err := b.deliverer.Deliver(context.Background(), outbox.Delivery{OutboxID: j.args.OutboxID, Attempt: j.args.Attempt})
	if err != nil {
		t.Fatalf("Deliver(%+v): %v", j.args, err)
	}
	return outcome
}

func TestEnqueueWritesOneMessagePerSubscribedEndpointOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.record(t, domain.EventExpired) // no endpoint yet: nothing to deliver
	if jobs := b.jobs(t); len(jobs) != 0 {
		t.Fatalf("no endpoints but %d deliveries enqueued", len(jobs))
	}
	b.addEndpoint(t, "http://127.0.0.1:1/a")
	b.addEndpoint(t, "http://127.0.0.1:1/a") // the same URL twice: two endpoints
	b.addEndpoint(t, "http://127.0.0.1:1/c", domain.EventCreated, domain.EventExtended)
	ev := b.record(t, domain.EventExpired)
	if err := store.InTx(context.Background(), b.pool, func(tx pgx.Tx) error {
		return b.outbox.Enqueue(context.Background(), tx, ev, b.trial) // the same event again: nothing new
	}); err != nil {
		t.Fatal(err)
	}
	if jobs := b.jobs(t); len(jobs) != 2 {
		t.Fatalf("delivery jobs %v, want one for each endpoint that takes trial.expired", jobs)
	}
	b.record(t, domain.EventExtended)
	if jobs := b.jobs(t); len(jobs) != 3 {
		t.Fatalf("delivery jobs %v, want 3: the filtered endpoint takes trial.extended", jobs)
	}
}

func TestDeliveryVerifiesWithTheStandardWebhooksLibrary(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	_, secret := b.addEndpoint(t, rcv.URL)
	if !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+44 {
		t.Fatalf("secret %q is not whsec_ + base64 of 32 bytes", secret)
	}
	first := b.record(t, domain.EventCreated)
	b.clock.Advance(time.Second)
	second := b.record(t, domain.EventExpired)
	for _, j := range b.jobs(t) {
		if outcome := b.deliver(t, j); outcome != outbox.Delivered {
			t.Fatalf("outcome %s", outcome)
		}
	}
	got := rcv.deliveries()
	if len(got) != 2 {
		t.Fatalf("%d deliveries", len(got))
	}
	for _, d := range got {
		if err := verify(t, secret, d); err != nil {
			t.Errorf("the library refuses a delivery: %v", err)
		}
	}
	d := got[1]
	if id := d.header.Get("webhook-id"); id != outbox.EventID(second.ID) {
		t.Errorf("webhook-id %q, want %q", id, outbox.EventID(second.ID))
	}
	var p struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      struct {
			Trial    outbox.TrialPayload `json:"trial"`
			Event    outbox.EventPayload `json:"event"`
			Sequence int64               `json:"sequence"`
		} `json:"data"`
	}
	if err := json.Unmarshal(d.body, &p); err != nil {
		t.Fatal(err)
	}
	at := b.clock.Now().Format("2006-01-02T15:04:05.000Z")
	if p.Type != "trial.expired" || p.Timestamp != at || p.Data.Event.ID != second.ID || p.Data.Event.At != at ||
		p.Data.Event.Cause != "job:9" || p.Data.Event.Actor != "system" || string(p.Data.Event.Data) != `{"a":1}` ||
		p.Data.Trial.ID != b.trial.ID || p.Data.Trial.State != domain.StateActive || p.Data.Sequence != 2 {
		t.Errorf("payload %s", d.body)
	}
	if !strings.Contains(string(got[0].body), `"sequence":1`) || got[0].header.Get("webhook-id") != outbox.EventID(first.ID) {
		t.Errorf("first delivery %s %v", got[0].body, got[0].header)
	}

	// The same library refuses a tampered body and a wrong secret.
	tampered := delivery{header: d.header, body: []byte(strings.Replace(string(d.body), "trial.expired", "trial.extended", 1))}
	if err := verify(t, secret, tampered); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("tampered body: %v", err)
	}
	other, _ := outbox.NewSecret()
	if err := verify(t, other, d); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestRotationSignsWithBothSecretsDuringTheOverlap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	ep, old := b.addEndpoint(t, rcv.URL)
	ctx := context.Background()
	fresh, err := b.endpoints.RotateSecret(ctx, ep.ID)
	if err != nil || fresh == old {
		t.Fatalf("RotateSecret = %q, %v", fresh, err)
	}
	b.record(t, domain.EventCreated)
	b.deliver(t, b.jobs(t)[0])
	b.clock.Advance(b.cfg.RotationOverlap) // the overlap is over
	b.record(t, domain.EventExpired)
	b.deliver(t, b.jobs(t)[0])

	got := rcv.deliveries()
	during, after := got[0], got[1]
	if n := len(strings.Fields(during.header.Get("webhook-signature"))); n != 2 {
		t.Errorf("during the overlap %d signatures, want 2", n)
	}
	if verify(t, old, during) != nil || verify(t, fresh, during) != nil {
		t.Errorf("during the overlap: old %v, new %v; want both to verify", verify(t, old, during), verify(t, fresh, during))
	}
	// The stub clock moved an hour: check the signatures, not the age.
	for secret, want := range map[string]bool{old: false, fresh: true} {
		wh, _ := standardwebhooks.NewWebhook(secret)
		if err := wh.VerifyIgnoringTimestamp(after.body, after.header); (err == nil) != want {
			t.Errorf("after the overlap, secret verifies: %v, want %v", err == nil, want)
		}
	}
}

func TestFailedAttemptsFollowTheScheduleThenRecover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t, http.StatusInternalServerError, http.StatusFound, http.StatusInternalServerError, http.StatusNoContent)
	ep, _ := b.addEndpoint(t, rcv.URL)
	ev := b.record(t, domain.EventCreated)
	first := b.jobs(t)
	if len(first) != 1 || first[0].args.Attempt != 1 || first[0].scheduledAt.After(b.clock.Now()) {
		t.Fatalf("first attempt %+v, want attempt 1 due now", first)
	}
	now := b.clock.Now()
	if outcome := b.deliver(t, first[0]); outcome != outbox.Retrying {
		t.Fatalf("500: %s", outcome)
	}
	if outcome := b.deliver(t, first[0]); outcome != outbox.Skipped {
		t.Fatalf("the same job again: %s, want skipped", outcome)
	}
	second := b.jobs(t)
	if len(second) != 1 || second[0].args.Attempt != 2 || !second[0].scheduledAt.Equal(now.Add(time.Second)) {
		t.Fatalf("after attempt 1: %+v, want attempt 2 at +1s", second)
	}
	if outcome := b.deliver(t, second[0]); outcome != outbox.Retrying { // a 302 is a failure
		t.Fatalf("302: %s", outcome)
	}
	third := b.jobs(t)
	if len(third) != 1 || !third[0].scheduledAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("after attempt 2: %+v, want attempt 3 at +1m", third)
	}
	if outcome := b.deliver(t, third[0]); outcome != outbox.Failed {
		t.Fatalf("last attempt: %s, want failed", outcome)
	}
	if jobs := b.jobs(t); len(jobs) != 0 {
		t.Fatalf("jobs after the last attempt: %v", jobs)
	}
	ctx := context.Background()
	attempts, err := b.endpoints.Attempts(ctx, ep.ID, 10)
	if err != nil || len(attempts) != 3 {
		t.Fatalf("attempt log %+v, %v", attempts, err)
	}
	for i, want := range []int{500, 302, 500} {
		a := attempts[2-i] // newest first
		if a.Attempt != i+1 || a.StatusCode == nil || *a.StatusCode != want || a.Error == nil || a.EventID != outbox.EventID(ev.ID) {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	if failed, _ := b.deliverer.Failed(ctx, 10); len(failed) != 1 {
		t.Fatalf("failed deliveries %v", failed)
	}

	// Recover replays what failed since then, with a fresh round.
	if n, err := b.endpoints.Recover(ctx, ep.ID, now.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("Recover since after the failure = %d, %v", n, err)
	}
	n, err := b.endpoints.Recover(ctx, ep.ID, now)
	if err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	replay := b.jobs(t)
	if len(replay) != 1 || replay[0].args.Attempt != 1 {
		t.Fatalf("replay %+v", replay)
	}
	if outcome := b.deliver(t, replay[0]); outcome != outbox.Delivered {
		t.Fatalf("replayed: %s", outcome)
	}
	got := rcv.deliveries()
	if len(got) != 4 || got[3].header.Get("webhook-id") != got[0].header.Get("webhook-id") {
		t.Fatalf("%d deliveries; the id must stay the same on every attempt", len(got))
	}
	if failed, _ := b.deliverer.Failed(ctx, 10); len(failed) != 0 {
		t.Fatalf("still failed after delivery: %v", failed)
	}
}

func TestGoneDisablesTheEndpointAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	gone := newReceiver(t, http.StatusGone)
	watcher := newReceiver(t)
	ep, _ := b.addEndpoint(t, gone.URL)
	_, watcherSecret := b.addEndpoint(t, watcher.URL, outbox.EventEndpointDisabled)
	b.record(t, domain.EventCreated)
	jobs := b.jobs(t)
	if len(jobs) != 1 {
		t.Fatalf("jobs %v", jobs)
	}
	if outcome := b.deliver(t, jobs[0]); outcome != outbox.Disabled {
		t.Fatalf("410: %s, want disabled", outcome)
	}
	ctx := context.Background()
	got, err := b.endpoints.Get(ctx, ep.ID)
	if err != nil || got.DisabledAt == nil || !strings.Contains(*got.DisabledReason, "410") {
		t.Fatalf("endpoint after 410: %+v, %v", got, err)
	}
	// No retry; the other endpoint hears of it.
	notice := b.jobs(t)
	if len(notice) != 1 {
		t.Fatalf("jobs after 410: %+v, want only the notice", notice)
	}
	b.deliver(t, notice[0])
	d := watcher.deliveries()
	if len(d) != 1 || verify(t, watcherSecret, d[0]) != nil || !strings.Contains(string(d[0].body), `"type":"webhook.endpoint_disabled"`) {
		t.Fatalf("notice %+v", d)
	}
	// A disabled endpoint gets nothing new; enabled again, it does.
	b.record(t, domain.EventExpired)
	if jobs := b.jobs(t); len(jobs) != 0 {
		t.Fatalf("jobs for a disabled endpoint: %v", jobs)
	}
	enable := false
	if _, err := b.endpoints.Update(ctx, ep.ID, outbox.EndpointSpec{Disabled: &enable}); err != nil {
		t.Fatal(err)
	}
	b.record(t, domain.EventExtended)
	if jobs := b.jobs(t); len(jobs) != 1 {
		t.Fatalf("jobs once enabled: %v", jobs)
	}
}

func TestRetryAfterIsWaitedFor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t, http.StatusServiceUnavailable)
	rcv.header.Set("Retry-After", "2")
	b.addEndpoint(t, rcv.URL)
	b.record(t, domain.EventCreated)
	now := b.clock.Now()
	b.deliver(t, b.jobs(t)[0])
	next := b.jobs(t)
	if len(next) != 1 || next[0].scheduledAt.Before(now.Add(2*time.Second)) {
		t.Fatalf("after 503 with Retry-After: 2: %+v, want the next attempt no sooner than %s", next, now.Add(2*time.Second))
	}
}

func TestEndpointFailingForDisableAfterIsDisabled(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Webhooks) { c.DisableAfter = time.Hour })
	rcv := newReceiver(t, http.StatusInternalServerError)
	ep, _ := b.addEndpoint(t, rcv.URL)
	b.record(t, domain.EventCreated)
	if outcome := b.deliver(t, b.jobs(t)[0]); outcome != outbox.Retrying {
		t.Fatalf("first failure: %s", outcome)
	}
	b.clock.Advance(time.Hour)
	if outcome := b.deliver(t, b.jobs(t)[0]); outcome != outbox.Disabled {
		t.Fatalf("failing for an hour: %s, want disabled", outcome)
	}
	got, _ := b.endpoints.Get(context.Background(), ep.ID)
	if got.DisabledAt == nil || !strings.Contains(*got.DisabledReason, "disable_after") {
		t.Fatalf("endpoint %+v", got)
	}
}

func TestSuccessEndsTheFailingStreak(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Webhooks) { c.DisableAfter = time.Hour })
	rcv := newReceiver(t, http.StatusInternalServerError, http.StatusOK, http.StatusInternalServerError)
	b.addEndpoint(t, rcv.URL)
	b.record(t, domain.EventCreated)
	b.deliver(t, b.jobs(t)[0])
	b.deliver(t, b.jobs(t)[0]) // delivered: the streak ends
	b.clock.Advance(time.Hour)
	b.record(t, domain.EventExpired)
	if outcome := b.deliver(t, b.jobs(t)[0]); outcome != outbox.Retrying {
		t.Fatalf("first failure of a new streak: %s, want retrying", outcome)
	}
}

func TestPrivateAddressesAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Webhooks) { c.AllowPrivateNetworks = false })
	ctx := context.Background()
	for _, url := range []string{
		"http://hooks.example.com/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://169.254.169.254/latest",
		"https://[::1]/x", "https://[fd00:ec2::254]/x", "https://localhost/x", "ftp://hooks.example.com/", "hooks.example.com",
	} {
		_, _, err := b.endpoints.Create(ctx, outbox.EndpointSpec{URL: &url})
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("Create %s: %v, want invalid", url, err)
		}
		// The message names the setting that allows a local receiver, so
		// an operator trying one in development knows where to look.
		if strings.HasPrefix(url, "http") && (err == nil || !strings.Contains(err.Error(), "webhooks.allow_private_networks")) {
			t.Errorf("Create %s: %v, want the message to name webhooks.allow_private_networks", url, err)
		}
	}
	// A name that resolved to a public address when stored and to a private
	// one when delivered to (rebinding) is refused at the connection.
	rcv := newReceiver(t)
	url := strings.Replace(rcv.URL, "http://127.0.0.1", "https://localhost", 1)
	secret, _ := outbox.NewSecret()
	ep, err := store.New(b.pool).InsertWebhookEndpoint(ctx, store.WebhookEndpoint{URL: url, Source: store.EndpointFromAPI, Secret: &secret, CreatedAt: b.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	b.record(t, domain.EventCreated)
	if outcome := b.deliver(t, b.jobs(t)[0]); outcome != outbox.Retrying {
		t.Fatalf("delivery to loopback: %s", outcome)
	}
	attempts, _ := b.endpoints.Attempts(ctx, ep.ID, 10)
	if len(attempts) != 1 || attempts[0].StatusCode != nil || !strings.Contains(*attempts[0].Error, "not a public address") {
		t.Fatalf("attempts %+v", attempts)
	}
	if len(rcv.deliveries()) != 0 {
		t.Fatal("the receiver on loopback was reached")
	}
}

func TestConfigEndpointsAreMirroredReadOnly(t *testing.T) {
	t.Parallel()
	secret, _ := outbox.NewSecret()
	rcv := newReceiver(t)
	b := setup(t, func(c *config.Webhooks) { c.Endpoints, c.Secret = []string{rcv.URL, "http://127.0.0.1:1/gone"}, secret })
	ctx := context.Background()
	for range 2 { // a restart mirrors the same list again
		if err := b.endpoints.SyncConfig(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list, err := b.endpoints.List(ctx)
	if err != nil || len(list) != 2 || list[0].Source != store.EndpointFromConfig {
		t.Fatalf("endpoints %+v, %v", list, err)
	}
	desc := "mine now"
	if _, err := b.endpoints.Update(ctx, list[0].ID, outbox.EndpointSpec{Description: &desc}); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("Update of a config endpoint: %v, want conflict", err)
	}
	if _, err := b.endpoints.RotateSecret(ctx, list[0].ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("rotation of a config endpoint: %v, want conflict", err)
	}
	if err := b.endpoints.Delete(ctx, list[0].ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("Delete of a config endpoint: %v, want conflict", err)
	}
	b.record(t, domain.EventCreated)
	for _, j := range b.jobs(t) {
		b.deliver(t, j)
	}
	if d := rcv.deliveries(); len(d) != 1 || verify(t, secret, d[0]) != nil {
		t.Fatalf("config endpoint deliveries %d, signed with webhooks.secret: %v", len(d), verify(t, secret, d[0]))
	}
	// Dropped from the config: gone at the next start.
	shorter := outbox.NewEndpoints(b.pool, b.clock, config.Webhooks{Endpoints: []string{rcv.URL}}, b.outbox)
	if err := shorter.SyncConfig(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := b.endpoints.List(ctx); len(list) != 1 || list[0].URL != rcv.URL {
		t.Fatalf("after the list shrank: %+v", list)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addEndpoint(t, "http://127.0.0.1:1/hook")
	b.record(t, domain.EventCreated)
	if outcome := b.deliver(t, b.jobs(t)[0]); outcome != outbox.Retrying {
		t.Fatalf("Deliver = %s; want retrying", outcome)
	}
}

func TestDeletedEndpointTakesItsDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	ep, _ := b.addEndpoint(t, rcv.URL)
	b.record(t, domain.EventCreated)
	jobs := b.jobs(t)
	if err := b.endpoints.Delete(context.Background(), ep.ID); err != nil {
		t.Fatal(err)
	}
	if outcome := b.deliver(t, jobs[0]); outcome != outbox.Skipped || len(rcv.deliveries()) != 0 {
		t.Fatalf("delivery to a deleted endpoint: %s, %d requests", outcome, len(rcv.deliveries()))
	}
	if _, err := b.endpoints.Get(context.Background(), ep.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("Get after Delete: %v", err)
	}
}

// A webhook URL's credentials, path and query are its receiver's secrets:
// when the endpoint fails or is disabled they reach neither the log, nor
// the other endpoints (webhook.endpoint_disabled), nor the attempt log, nor
// the lists of deliveries; only the admin asking for the endpoint sees
// them.
func TestWebhookURLSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Webhooks) { c.RetrySchedule = nil }) // one attempt, then failed
	var logs strings.Builder                                          // Deliver runs on this goroutine only
	deliverer := outbox.NewDeliverer(outbox.DelivererDeps{
		Pool: b.pool, Clock: b.clock, Writer: b.outbox, Config: b.cfg,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	const secrets = "user:S3CRET@"
	withSecrets := func(base string) string {
		return strings.Replace(base, "http://", "http://"+secrets, 1) + "/path/PTOKEN?token=QTOKEN"
	}
	gone := newReceiver(t, http.StatusGone)
	watcher := newReceiver(t)
	goneEP, _ := b.addEndpoint(t, withSecrets(gone.URL), domain.EventCreated)
	deadEP, _ := b.addEndpoint(t, withSecrets("http://127.0.0.1:1"), domain.EventCreated) // refused: net/http's error names the URL
	b.addEndpoint(t, watcher.URL, outbox.EventEndpointDisabled)
	ev := b.record(t, domain.EventCreated)
	ctx := context.Background()
	for range 2 { // the deliveries, then the notice
		for _, j := range b.jobs(t) {
			if _, _, err := deliverer.Deliver(ctx, outbox.Delivery{OutboxID: j.args.OutboxID, Attempt: j.args.Attempt}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(gone.deliveries()) != 1 || len(watcher.deliveries()) != 1 {
		t.Fatalf("gone got %d, watcher %d deliveries; want one each", len(gone.deliveries()), len(watcher.deliveries()))
	}

	shown := map[string]string{"log": logs.String(), "webhook.endpoint_disabled": string(watcher.deliveries()[0].body)}
	for _, ep := range []store.WebhookEndpoint{goneEP, deadEP} {
		attempts, err := b.endpoints.Attempts(ctx, ep.ID, 10)
		if err != nil || len(attempts) != 1 || attempts[0].Error == nil {
			t.Fatalf("attempts of %d: %+v, %v", ep.ID, attempts, err)
		}
		shown[fmt.Sprintf("attempt log of %d", ep.ID)] = *attempts[0].Error
	}
	deliveries, err := b.endpoints.DeliveriesOf(ctx, []domain.Event{ev})
	if err != nil || len(deliveries) != 2 {
		t.Fatalf("DeliveriesOf = %+v, %v", deliveries, err)
	}
	failed, err := b.deliverer.Failed(ctx, 10)
	if err != nil || len(failed) != 2 {
		t.Fatalf("Failed = %+v, %v", failed, err)
	}
	for i, m := range append(deliveries, failed...) {
		shown[fmt.Sprintf("list entry %d", i)] = m.Destination + " " + *m.LastError
	}
	for where, text := range shown {
		for _, secret := range []string{"S3CRET", "PTOKEN", "QTOKEN"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %s: %s", where, secret, text)
			}
		}
	}
	if want := "http://…@127.0.0.1:1/…?…"; !strings.Contains(shown[fmt.Sprintf("attempt log of %d", deadEP.ID)], want) {
		t.Errorf("attempt log %q, want the URL shown as %s", shown[fmt.Sprintf("attempt log of %d", deadEP.ID)], want)
	}
	if got, err := b.endpoints.Get(ctx, goneEP.ID); err != nil || got.URL != withSecrets(gone.URL) {
		t.Errorf("the admin's endpoint %q, %v; want its whole URL", got.URL, err)
	}
}

// An endpoint has at most webhooks.endpoint_concurrency attempts in flight
// (one while it fails): the next delivery makes no attempt and is told how
// long to wait, so its worker can snooze; once a slot frees it is made.
func TestEndpointAtItsCapIsBusyWithoutAnAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Webhooks) { c.EndpointConcurrency = 2 })
	// Each request waits for a token; stop lets every one go at the end.
	tokens, stop, in := make(chan struct{}, 10), make(chan struct{}), make(chan struct{}, 10)
	var status atomic.Int32
	status.Store(http.StatusOK)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		in <- struct{}{}
		select {
		case <-tokens:
		case <-stop:
		}
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(rcv.Close)
	t.Cleanup(func() { close(stop) }) // first: the receiver's handlers return
	b.addEndpoint(t, rcv.URL)
	ctx := context.Background()
	deliver := func(j job) (string, error) {
		_, outcome, err := b.deliverer.Deliver(ctx, outbox.Delivery{OutboxID: j.args.OutboxID, Attempt: j.args.Attempt})
		return outcome, err
	}
	// hold starts each job's attempt and returns once the receiver holds
	// it; held.Wait waits for them to end.
	var held sync.WaitGroup
	hold := func(jobs ...job) {
		for _, j := range jobs {
			held.Add(1)
			go func() { defer held.Done(); _, _ = deliver(j) }()
			<-in
		}
	}
	wantBusy := func(j job, inFlight int) {
		t.Helper()
		var busy *outbox.EndpointBusyError
		if _, err := deliver(j); !errors.As(err, &busy) || busy.Wait < 50*time.Millisecond || busy.Wait > 3*time.Second {
			t.Fatalf("with %d attempts in flight: %v, want busy for 50 ms to 1.5 × the timeout", inFlight, err)
		}
		if m, err := store.New(b.pool).OutboxByID(ctx, j.args.OutboxID); err != nil || m.Attempts != 0 {
			t.Fatalf("a busy delivery counted an attempt: %+v, %v", m, err)
		}
	}
	for range 3 {
		b.record(t, domain.EventCreated)
	}
	jobs := b.jobs(t)
	hold(jobs[0], jobs[1])
	wantBusy(jobs[2], 2)
	tokens <- struct{}{} // the two held attempts end
	tokens <- struct{}{}
	held.Wait()
	tokens <- struct{}{}
	if outcome, err := deliver(jobs[2]); err != nil || outcome != outbox.Delivered {
		t.Fatalf("once slots freed: %s, %v", outcome, err)
	}
	<-in

	// Failing, the endpoint takes one attempt at a time.
	status.Store(http.StatusInternalServerError)
	b.record(t, domain.EventExpired)
	b.record(t, domain.EventExtended)
	jobs = b.jobs(t)
	tokens <- struct{}{}
	if outcome, _ := deliver(jobs[0]); outcome != outbox.Retrying {
		t.Fatalf("500: %s", outcome)
	}
	<-in
	hold(b.jobs(t)[0]) // the retry
	wantBusy(jobs[1], 1)
	tokens <- struct{}{}
	held.Wait()
}

// The retention deletes the messages delivered before it, webhooks and
// e-mails, with their attempt logs; a message delivered since, failed or
// still waiting stays, however old.
func TestPruneDeletesOnlyOldDeliveredMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	q := store.New(b.pool)
	ep, _ := b.addEndpoint(t, "http://127.0.0.1:1/hook")
	now := b.clock.Now()
	old, recent := now.Add(-31*24*time.Hour), now.Add(-29*24*time.Hour)
	type row struct {
		name             string
		channel          string
		delivered, taken bool // delivered at created; taken: the retention deletes it
		created          time.Time
		failed           bool
	}
	rows := []row{
		{name: "old delivered webhook", channel: store.ChannelWebhook, delivered: true, taken: true, created: old},
		{name: "old delivered e-mail", channel: store.ChannelEmail, delivered: true, taken: true, created: old},
		{name: "recently delivered webhook", channel: store.ChannelWebhook, delivered: true, created: recent},
		{name: "old failed webhook", channel: store.ChannelWebhook, failed: true, created: old},
		{name: "old waiting webhook", channel: store.ChannelWebhook, created: old},
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		m := store.OutboxMessage{Delivery: domain.Delivery{EventID: fmt.Sprintf("evt_%d", i), Channel: r.channel, Destination: "fred@acme.example", CreatedAt: r.created}, Payload: json.RawMessage(`{}`)}
		if r.channel == store.ChannelWebhook {
			m.Destination, m.EndpointID = ep.URL, &ep.ID
		}
		id, _, err := q.InsertOutbox(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
		if r.channel == store.ChannelWebhook {
			if err := q.InsertWebhookAttempt(ctx, store.WebhookAttempt{OutboxID: id, EndpointID: ep.ID, EventID: m.EventID, Attempt: 1, At: r.created}); err != nil {
				t.Fatal(err)
			}
		}
		switch {
		case r.delivered:
			err = q.MarkOutboxDelivered(ctx, id, r.created)
		case r.failed:
			err = q.MarkOutboxAttemptFailed(ctx, id, "answered 500", &r.created)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.deliverer.PruneDelivered(ctx, 30*24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("PruneDelivered = %d, %v; want the 2 old delivered messages", n, err)
	}
	for i, r := range rows {
		_, err := q.OutboxByID(ctx, ids[i])
		if gone := errors.Is(err, store.ErrNotFound); gone != r.taken {
			t.Errorf("%s: deleted %v, want %v (%v)", r.name, gone, r.taken, err)
		}
	}
	attempts, err := b.endpoints.Attempts(ctx, ep.ID, 10)
	if err != nil || len(attempts) != 3 {
		t.Fatalf("attempt log after the prune: %+v, %v; want the 3 kept webhooks' attempts", attempts, err)
	}
	if n, err := b.deliverer.PruneDelivered(ctx, 0); err != nil || n != 0 {
		t.Fatalf("retention 0 = %d, %v; want nothing deleted", n, err)
	}
}

// A sweep hands the outbox hundreds of events in one transaction: the
// endpoints are read once per kind, not once per event (with none to
// deliver to, that is all it costs), and every event still reaches every
// endpoint that takes it.
func TestEnqueueAllReadsTheEndpointsOncePerKind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	kinds := []string{domain.EventExpired, domain.EventExpired, domain.EventExpired, domain.EventExtended}
	if scans := b.enqueueAll(t, kinds); scans != 2 {
		t.Errorf("webhook_endpoints scanned %d times for %d events of 2 kinds, want 2", scans, len(kinds))
	}
	b.addEndpoint(t, "http://127.0.0.1:1/a", domain.EventExpired)
	b.addEndpoint(t, "http://127.0.0.1:1/b")
	b.enqueueAll(t, kinds)
	if jobs := b.jobs(t); len(jobs) != 3*2+1 {
		t.Errorf("%d delivery jobs, want 7: each expiry to both endpoints, the extension to the second", len(jobs))
	}
}

// enqueueAll records an event of each kind and hands them to the outbox in
// one transaction, and returns how often that transaction scanned
// webhook_endpoints, as Postgres counts it (each delivery's foreign key
// check counts too).
func (b *testBundle) enqueueAll(t *testing.T, kinds []string) (scans int) {
	t.Helper()
	err := store.InTx(context.Background(), b.pool, func(tx pgx.Tx) error {
		ctx := context.Background()
		events := make([]domain.Event, len(kinds))
		trials := make([]domain.Trial, len(kinds))
		for i, kind := range kinds {
			events[i] = domain.Event{TrialID: b.trial.ID, Kind: kind, At: b.clock.Now(), Actor: "system", Cause: domain.SweepCause}
			var err error
			if events[i].ID, err = store.New(tx).InsertTrialEvent(ctx, events[i]); err != nil {
				return err
			}
			trials[i] = b.trial
		}
		if err := b.outbox.EnqueueAll(ctx, tx, events, trials); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables
			WHERE relname = 'webhook_endpoints'`).Scan(&scans)
	})
	if err != nil {
		t.Fatal(err)
	}
	return scans
}
