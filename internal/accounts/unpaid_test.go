package accounts_test

import (
	"context"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

func TestRemoveUnpaidSignups(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	const ttl = 168 * time.Hour

	users := []struct {
		name      string
		age       time.Duration
		planState string
		wantGone  bool
	}{
		{"old-unpaid", ttl + time.Minute, "pending_payment", true},
		{"exactly-ttl", ttl, "pending_payment", true},
		{"young-unpaid", ttl - time.Minute, "pending_payment", false},
		{"old-paid", 30 * ttl, "active", false},
	}
	q := store.New(pool)
	for _, u := range users {
		row, err := q.InsertUser(ctx, store.InsertUserParams{Username: u.name, Email: u.name + "@acme.example", Now: now.Add(-u.age)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE users SET plan = 'professional', plan_state = $2 WHERE id = $1`, row.ID, u.planState); err != nil {
			t.Fatal(err)
		}
		if _, err := q.InsertProject(ctx, 0, row.ID, u.name+"-project", now); err != nil {
			t.Fatal(err)
		}
	}

	svc := accounts.New(pool, clock.NewStub(now))
	n, err := svc.RemoveUnpaidSignups(ctx, ttl)
	if err != nil || n != 2 {
		t.Fatalf("RemoveUnpaidSignups = %d, %v; want 2", n, err)
	}
	for _, u := range users {
		_, err := q.UserByUsername(ctx, u.name)
		if gone := err != nil; gone != u.wantGone {
			t.Errorf("%s gone = %v, want %v (%v)", u.name, gone, u.wantGone, err)
		}
	}
	var projects int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM projects").Scan(&projects); err != nil || projects != 2 {
		t.Fatalf("%d projects left (%v), want the 2 of the kept users", projects, err)
	}
	if n, err := svc.RemoveUnpaidSignups(ctx, ttl); err != nil || n != 0 {
		t.Fatalf("second sweep removed %d, %v; want 0", n, err)
	}
}
