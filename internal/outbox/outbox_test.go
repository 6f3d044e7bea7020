package outbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/signature"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
	"github.com/trialsd/trialsd/jobs/jobargs"
)

var t0 = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)

const secret = "whsec_0123456789"

// receiver is a real HTTP endpoint on loopback that checks each delivery's
// signature and answers with the status it is told to.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	status   int
	received []outbox.Payload
	sigErrs  []error
	eventIDs []string
}

func newReceiver(t *testing.T, clk clock.Clock) *receiver {
	r := &receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.sigErrs = append(r.sigErrs, signature.Verify([]byte(secret), req.Header.Get(signature.Header), body, clk.Now(), 5*time.Minute))
		r.eventIDs = append(r.eventIDs, req.Header.Get("X-Trialsd-Event-Id"))
		var p outbox.Payload
		_ = json.Unmarshal(body, &p)
		r.received = append(r.received, p)
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) answer(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

type testBundle struct {
	pool      *pgxpool.Pool
	clock     *clock.Stub
	outbox    *outbox.Writer
	deliverer *outbox.Deliverer
	client    *river.Client[pgx.Tx]
	trial     domain.Trial
}

func setup(t *testing.T, endpoints ...string) *testBundle {
	t.Helper()
	pool := testdb.New(t)
	stub := clock.NewStub(t0)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Test: river.TestConfig{Time: stub}})
	if err != nil {
		t.Fatal(err)
	}
	writer := outbox.NewWriter(endpoints, client, 3)
	b := &testBundle{
		pool: pool, clock: stub, outbox: writer, client: client,
		deliverer: outbox.NewDeliverer(pool, &http.Client{Timeout: 2 * time.Second}, secret, stub, writer, nil),
	}
	ctx := context.Background()
	q := store.New(pool)
	u, err := q.InsertUser(ctx, store.InsertUserParams{Username: "fred", Email: "fred@acme.example", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	org, err := q.InsertOrganization(ctx, store.NewOrganization{Name: "ACME", Trial: true, EnterpriseFeatures: true, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	b.trial, err = q.InsertTrial(ctx, store.InsertTrialParams{UserID: u.ID, OrganizationID: org.ID, ExpirationDate: t0.Add(time.Hour), Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *testBundle) enqueue(t *testing.T, eventID int64) {
	t.Helper()
	err := store.InTx(context.Background(), b.pool, func(tx pgx.Tx) error {
		return b.outbox.Enqueue(context.Background(), tx, domain.Event{
			ID: eventID, Kind: "trial.expired", At: t0, Actor: "system", Cause: "job:9", Data: json.RawMessage(`{"a":1}`),
		}, b.trial)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (b *testBundle) deliveryJobs(t *testing.T) []int64 {
	t.Helper()
	res, err := b.client.JobList(context.Background(), river.NewJobListParams().Kinds(jobargs.KindDeliverOutbox).
		States(rivertype.JobStateAvailable).First(100))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, j := range res.Jobs {
		var args jobargs.DeliverOutbox
		_ = json.Unmarshal(j.EncodedArgs, &args)
		ids = append(ids, args.OutboxID)
	}
	return ids
}

func TestEnqueueWritesOneMessagePerEndpointOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, "http://127.0.0.1:1/a", "http://127.0.0.1:1/b")
	b.enqueue(t, 7)
	b.enqueue(t, 7) // the same event again: nothing new
	if jobs := b.deliveryJobs(t); len(jobs) != 2 {
		t.Fatalf("delivery jobs for outbox ids %v, want 2", jobs)
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox WHERE event_id = 'evt_7'").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d outbox rows (%v), want one per endpoint", n, err)
	}

	none := setup(t)
	none.enqueue(t, 7)
	if jobs := none.deliveryJobs(t); len(jobs) != 0 {
		t.Fatalf("no endpoints configured but %d deliveries enqueued", len(jobs))
	}
}

func TestDeliverSignsAndRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t, b.clock)
	b = setupWith(t, b, rcv.URL)
	b.enqueue(t, 11)
	id := b.deliveryJobs(t)[0]

	_, outcome, err := b.deliverer.Deliver(context.Background(), id, false)
	if err != nil || outcome != outbox.Delivered {
		t.Fatalf("Deliver = %s, %v", outcome, err)
	}
	if len(rcv.received) != 1 || rcv.sigErrs[0] != nil {
		t.Fatalf("receiver got %d deliveries, signature check %v", len(rcv.received), rcv.sigErrs)
	}
	p := rcv.received[0]
	if p.ID != "evt_11" || rcv.eventIDs[0] != "evt_11" || p.Type != "trial.expired" || p.Trial.ID != b.trial.ID ||
		p.Trial.ExpirationDate != "2026-09-01T11:00:00.000Z" || p.CreatedAt != "2026-09-01T10:00:00.000Z" || p.Cause != "job:9" {
		t.Fatalf("payload %+v", p)
	}
	// A replayed job does not deliver twice.
	if _, outcome, err := b.deliverer.Deliver(context.Background(), id, false); err != nil || outcome != outbox.Skipped {
		t.Fatalf("second Deliver = %s, %v; want skipped", outcome, err)
	}
	if len(rcv.received) != 1 {
		t.Fatalf("delivered %d times", len(rcv.received))
	}
}

// setupWith re-creates the outbox of b for the given endpoints.
func setupWith(t *testing.T, b *testBundle, endpoints ...string) *testBundle {
	b.outbox = outbox.NewWriter(endpoints, b.client, 3)
	b.deliverer = outbox.NewDeliverer(b.pool, &http.Client{Timeout: 2 * time.Second}, secret, b.clock, b.outbox, nil)
	return b
}

func TestFailedDeliveryIsVisibleAndReplayable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t, b.clock)
	b = setupWith(t, b, rcv.URL)
	rcv.answer(http.StatusInternalServerError)
	b.enqueue(t, 12)
	id := b.deliveryJobs(t)[0]
	ctx := context.Background()

	_, outcome, err := b.deliverer.Deliver(ctx, id, false)
	if err == nil || outcome != outbox.Retrying {
		t.Fatalf("Deliver to a failing endpoint = %s, %v; want retrying with an error", outcome, err)
	}
	if failed, _ := b.deliverer.Failed(ctx, 10); len(failed) != 0 {
		t.Fatalf("listed as failed with attempts left: %v", failed)
	}
	_, outcome, err = b.deliverer.Deliver(ctx, id, true)
	if err == nil || outcome != outbox.Failed {
		t.Fatalf("last attempt = %s, %v; want failed", outcome, err)
	}
	failed, err := b.deliverer.Failed(ctx, 10)
	if err != nil || len(failed) != 1 || failed[0].Attempts != 2 || failed[0].LastError == nil {
		t.Fatalf("failed deliveries %+v, %v", failed, err)
	}

	// Replay: a fresh job, and this time the receiver is back.
	if _, err := b.pool.Exec(ctx, "DELETE FROM river_job"); err != nil {
		t.Fatal(err)
	}
	n, err := b.deliverer.Retry(ctx, []int64{id, id, 999})
	if err != nil || n != 1 {
		t.Fatalf("Retry = %d, %v; want 1 requeued", n, err)
	}
	if jobs := b.deliveryJobs(t); len(jobs) != 1 || jobs[0] != id {
		t.Fatalf("jobs after retry %v", jobs)
	}
	rcv.answer(http.StatusNoContent)
	if _, outcome, err := b.deliverer.Deliver(ctx, id, false); err != nil || outcome != outbox.Delivered {
		t.Fatalf("replayed Deliver = %s, %v", outcome, err)
	}
	if failed, _ := b.deliverer.Failed(ctx, 10); len(failed) != 0 {
		t.Fatalf("still failed after delivery: %v", failed)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, "http://127.0.0.1:1/hook")
	b.enqueue(t, 13)
	_, outcome, err := b.deliverer.Deliver(context.Background(), b.deliveryJobs(t)[0], false)
	if err == nil || outcome != outbox.Retrying {
		t.Fatalf("Deliver = %s, %v; want a retryable error", outcome, err)
	}
}
