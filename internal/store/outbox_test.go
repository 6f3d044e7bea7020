package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// The lists of deliveries (a trial's, in the console; the failed ones, in
// the CLI) never read a payload, which they do not show: they run as a role
// that may read every column of outbox but payload.
func TestDeliveryListsNeverReadPayloads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := store.New(pool)
	now := time.Now().UTC().Truncate(time.Millisecond)
	secret := "whsec_x"
	ep, err := q.InsertWebhookEndpoint(ctx, store.WebhookEndpoint{URL: "https://hooks.example.com/x", Source: store.EndpointFromAPI, Secret: &secret, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := q.InsertOutbox(ctx, store.OutboxMessage{
		Delivery: domain.Delivery{EventID: "evt_1", Channel: store.ChannelWebhook, Destination: ep.URL, EndpointID: &ep.ID, CreatedAt: now},
		Payload:  json.RawMessage(`{"big":"payload"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.MarkOutboxAttemptFailed(ctx, id, "answered 500", &now); err != nil {
		t.Fatal(err)
	}
	role := make([]byte, 6)
	_, _ = rand.Read(role)
	name := "no_payload_" + hex.EncodeToString(role)
	// Rolled back at the end: the role, cluster-wide, never outlives the test.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, sql := range []string{
		`CREATE ROLE ` + name,
		`GRANT SELECT (id, event_id, channel, destination, trial_id, endpoint_id, created_at, attempts, last_error, delivered_at, failed_at) ON outbox TO ` + name,
		`SET LOCAL ROLE ` + name,
	} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	checkList(t, tx, "OutboxOfEvents", func(q *store.Queries) ([]domain.Delivery, error) {
		return q.OutboxOfEvents(ctx, []string{"evt_1"})
	})
	checkList(t, tx, "FailedOutbox", func(q *store.Queries) ([]domain.Delivery, error) {
		return q.FailedOutbox(ctx, store.ChannelWebhook, 10)
	})
}

// checkList runs list in a savepoint of tx, so one failure leaves the next
// list its transaction, and wants the one message back.
func checkList(t *testing.T, tx pgx.Tx, name string, list func(*store.Queries) ([]domain.Delivery, error)) {
	t.Helper()
	ctx := context.Background()
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Rollback(ctx)
	got, err := list(store.New(sp))
	if err != nil || len(got) != 1 || got[0].EventID != "evt_1" || got[0].FailedAt == nil {
		t.Errorf("%s as a role that may not read payloads: %+v, %v", name, got, err)
	}
}

// A trial's deliveries are found through the outbox's event id index, not
// by scanning the outbox (00011).
func TestDeliveriesOfEventsUseTheEventIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	if _, err := pool.Exec(ctx, `
		INSERT INTO outbox (event_id, channel, destination, payload, created_at)
		SELECT 'evt_' || i, 'webhook', 'https://hooks.example.com/x', '{}', now() FROM generate_series(1, 2000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE outbox`); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var plan strings.Builder
	if _, err := store.New(explainer{tx: tx, out: &plan}).OutboxOfEvents(ctx, []string{"evt_7", "evt_1500"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "outbox_webhook_event_id_idx") || strings.Contains(plan.String(), "Seq Scan") {
		t.Errorf("the deliveries of two events are not read through outbox_webhook_event_id_idx:\n%s", plan.String())
	}
}

// Two failed attempts at one endpoint, recorded at once: each transaction
// logs its attempt (the foreign key takes a key-share lock on the
// endpoint), then locks the endpoint to update its failing streak. The
// lock must not conflict with the other's key share, or each waits for the
// other and Postgres aborts one as a deadlock; the second waits for the
// first instead.
func TestEndpointLockWaitsOutAnotherAttemptWithoutDeadlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	secret := "whsec_x"
	ep, err := store.New(pool).InsertWebhookEndpoint(ctx, store.WebhookEndpoint{URL: "https://hooks.example.com/x", Source: store.EndpointFromAPI, Secret: &secret, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	begin := func(event string) (pgx.Tx, *store.Queries) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		q := store.New(tx)
		id, _, err := store.New(pool).InsertOutbox(ctx, store.OutboxMessage{Delivery: domain.Delivery{EventID: event,
			Channel: store.ChannelWebhook, Destination: ep.URL, EndpointID: &ep.ID, CreatedAt: now}, Payload: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.InsertWebhookAttempt(ctx, store.WebhookAttempt{OutboxID: id, EndpointID: ep.ID, EventID: event, Attempt: 1, At: now}); err != nil {
			t.Fatal(err)
		}
		return tx, q
	}
	first, q1 := begin("evt_1")
	second, q2 := begin("evt_2")
	// Each locks the endpoint and commits; both hold their key share when
	// either asks for the lock.
	done := make(chan error, 2)
	for _, a := range []struct {
		tx pgx.Tx
		q  *store.Queries
	}{{first, q1}, {second, q2}} {
		go func() {
			if _, err := a.q.WebhookEndpointByIDForUpdate(ctx, ep.ID); err != nil {
				done <- err
				return
			}
			done <- a.tx.Commit(ctx)
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("recording an attempt: %v", err)
		}
	}
}
