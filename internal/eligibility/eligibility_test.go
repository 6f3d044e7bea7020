package eligibility_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/testdb"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newRules(t *testing.T) (*eligibility.Service, *clock.Stub, func(sql string, args ...any)) {
	t.Helper()
	rules, stub, exec, _ := newRulesOf(t, eligibility.Deps{Config: config.Default().Eligibility})
	return rules, stub, exec
}

// newRulesOf is newRules with d's configuration and free-mail domains, and
// the pool.
func newRulesOf(t *testing.T, d eligibility.Deps) (*eligibility.Service, *clock.Stub, func(sql string, args ...any), *pgxpool.Pool) {
	t.Helper()
	pool := testdb.New(t)
	stub := clock.NewStub(t0)
	d.Pool, d.Clock, d.JWTSecret, d.Logger = pool, stub, "secret-secret-secret-secret-secret", slog.New(slog.DiscardHandler)
	rules := eligibility.New(d)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	return rules, stub, exec, pool
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
	// Grants used as long ago, by each of the three trials: only the one
	// whose tombstone goes goes with it.
	exec(`INSERT INTO eligibility_grants (id, domain, subject, note, granted_by, granted_at, trial_id, used_at) OVERRIDING SYSTEM VALUE VALUES
		(11, 'old.example', 'old.example', 'n', 'admin', $1, 1, $1), (12, 'recent.example', 'recent.example', 'n', 'admin', $1, 2, $1),
		(13, 'live.example', 'live.example', 'n', 'admin', $1, 3, $1)`, t0.Add(-retention-time.Hour))
	exec(`UPDATE eligibility_history SET grant_id = trial_id + 10`)
	n, err := rules.Prune(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 (the tombstone purged longer ago than the retention)", n, err)
	}
	for dom, want := range map[string]int{"old.example": 0, "recent.example": 1, "live.example": 1} {
		if r, err := rules.Show(context.Background(), eligibility.Subject{Domain: dom}); err != nil || len(r.Grants) != want {
			t.Errorf("grants of %s after the prune: %v, %v; want %d", dom, r.Grants, err, want)
		}
	}
	stub.Advance(2 * time.Hour)
	if n, err := rules.Prune(context.Background()); err != nil || n != 1 {
		t.Fatalf("Prune two hours on = %d, %v; want 1", n, err)
	}
	r, err := rules.Show(context.Background(), eligibility.Subject{Domain: "live.example"})
	if err != nil || len(r.History) != 1 || len(r.Grants) != 1 {
		t.Fatalf("the live trial's history and grant: %v, %v, %v", r.History, r.Grants, err)
	}
	if r, err := rules.Show(context.Background(), eligibility.Subject{Domain: "recent.example"}); err != nil || len(r.Grants) != 0 {
		t.Fatalf("the grant of a pruned tombstone: %v, %v; want it gone", r.Grants, err)
	}
}

// The trials from before the history are added to it by the backfill,
// hashed as a start would, once.
func TestBackfillAddsTheTrialsFromBefore(t *testing.T) {
	t.Parallel()
	rules, _, exec := newRules(t)
	exec(`INSERT INTO users (id, username, email, name, created_at, updated_at) OVERRIDING SYSTEM VALUE VALUES
		(1, 'fred', 'Fred+x@Quarry.example', 'Fred', $1, $1), (2, 'wilma', 'wilma@quarry.example', 'Wilma', $1, $1),
		(3, 'barney', 'barney@rubble.example', 'Barney', $1, $1)`, t0)
	exec(`INSERT INTO organizations (id, name, is_trial, enterprise_features, created_at) OVERRIDING SYSTEM VALUE VALUES
		(1, 'Fred', true, true, $1), (2, 'Wilma', true, true, $1), (3, 'Barney', true, true, $1)`, t0)
	exec(`INSERT INTO test_clocks (id, name, frozen_time, created_at, deletes_after) OVERRIDING SYSTEM VALUE VALUES (1, 'rehearsal', $1, $1, $2)`, t0, t0.Add(30*24*time.Hour))
	exec(`INSERT INTO trials (id, user_id, organization_id, self_service, created_at, expiration_date, test_clock_id) OVERRIDING SYSTEM VALUE VALUES
		(1, 1, 1, true, $1, $2, NULL), (2, 3, 3, true, $1, $2, 1), (3, 2, 2, true, $1, $2, NULL)`, t0, t0.Add(14*24*time.Hour))
	exec(`INSERT INTO eligibility_backfill (up_to) VALUES (2)`) // wilma's trial came after the migration
	n, err := rules.Backfill(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Backfill = %d, %v; want fred's and barney's trials", n, err)
	}
	r, err := rules.Check(context.Background(), eligibility.Subject{Email: "fred@quarry.example"}, true)
	if err != nil || r.Reason != "address_used" || r.Counts.DomainActive != 1 {
		t.Fatalf("fred after the backfill: %+v, %v; want address_used and one active trial", r, err)
	}
	// Barney's trial was a rehearsal on a test clock: it counts against
	// the clock only, as it did when it started.
	r, err = rules.Check(context.Background(), eligibility.Subject{Email: "barney@rubble.example"}, true)
	if err != nil || !r.Eligible || r.Counts.AddressTrials != 0 || r.Counts.DomainActive != 0 {
		t.Fatalf("barney after the backfill: %+v, %v; want eligible, his test-clock trial not counted", r, err)
	}
	if n, err := rules.Backfill(context.Background()); err != nil || n != 0 {
		t.Fatalf("a second Backfill = %d, %v; want nothing", n, err)
	}
}
