package eligibility_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/testdb"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newRules(t *testing.T) (*eligibility.Service, *clock.Stub, func(sql string, args ...any)) {
	t.Helper()
	pool := testdb.New(t)
	stub := clock.NewStub(t0)
	rules := eligibility.New(eligibility.Deps{
		Pool: pool, Clock: stub, Config: config.Default().Eligibility, JWTSecret: "secret-secret-secret-secret-secret", Logger: slog.New(slog.DiscardHandler),
	})
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	return rules, stub, exec
}

// The tombstones are forgotten eligibility.history_retention after their
// purge, and not before; live trials' rows stay.
func TestPruneForgetsOldTombstones(t *testing.T) {
	t.Parallel()
	rules, stub, exec := newRules(t)
	retention := config.Default().Eligibility.HistoryRetention
	exec(`INSERT INTO eligibility_history (trial_id, address_hash, domain, started_at, purged_at, outcome) VALUES
		(1, 'a', 'old.example', $1, $1, 'deleted'), (2, 'b', 'recent.example', $1, $2, 'deleted'), (3, 'c', 'live.example', $1, NULL, NULL)`,
		t0.Add(-retention-time.Hour), t0.Add(-retention+time.Hour))
	n, err := rules.Prune(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 (the tombstone purged longer ago than the retention)", n, err)
	}
	stub.Advance(2 * time.Hour)
	if n, err := rules.Prune(context.Background()); err != nil || n != 1 {
		t.Fatalf("Prune two hours on = %d, %v; want 1", n, err)
	}
	r, err := rules.Show(context.Background(), eligibility.Subject{Domain: "live.example"})
	if err != nil || len(r.History) != 1 {
		t.Fatalf("the live trial's history: %v, %v", r.History, err)
	}
}

// The trials from before the history are added to it by the backfill,
// hashed as a start would, once.
func TestBackfillAddsTheTrialsFromBefore(t *testing.T) {
	t.Parallel()
	rules, _, exec := newRules(t)
	exec(`INSERT INTO users (id, username, email, name, created_at, updated_at) OVERRIDING SYSTEM VALUE VALUES
		(1, 'fred', 'Fred+x@Quarry.example', 'Fred', $1, $1), (2, 'wilma', 'wilma@quarry.example', 'Wilma', $1, $1)`, t0)
	exec(`INSERT INTO organizations (id, name, is_trial, enterprise_features, created_at) OVERRIDING SYSTEM VALUE VALUES
		(1, 'Fred', true, true, $1), (2, 'Wilma', true, true, $1)`, t0)
	exec(`INSERT INTO trials (id, user_id, organization_id, self_service, created_at, expiration_date) OVERRIDING SYSTEM VALUE VALUES
		(1, 1, 1, true, $1, $2), (2, 2, 2, true, $1, $2)`, t0, t0.Add(14*24*time.Hour))
	exec(`INSERT INTO eligibility_backfill (up_to) VALUES (1)`) // wilma's trial came after the migration
	n, err := rules.Backfill(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Backfill = %d, %v; want fred's trial", n, err)
	}
	r, err := rules.Check(context.Background(), eligibility.Subject{Email: "fred@quarry.example"}, true)
	if err != nil || r.Reason != "address_used" || r.Counts.DomainActive != 1 {
		t.Fatalf("fred after the backfill: %+v, %v; want address_used and one active trial", r, err)
	}
	if n, err := rules.Backfill(context.Background()); err != nil || n != 0 {
		t.Fatalf("a second Backfill = %d, %v; want nothing", n, err)
	}
}
