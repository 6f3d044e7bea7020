package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// The look-ahead gauges count active trials by expiration date (overdue
// ones included) and expired ones by the end of their grace period, at the
// instants the caller names: the clock's, never the database's now().
func TestCountTrialsEndingAndDeletionsDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := store.New(pool)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	u, err := q.InsertUser(ctx, store.InsertUserParams{Username: "fred", Email: "fred@acme.example", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for _, exp := range []time.Duration{-day, 12 * time.Hour, 3 * day, 20 * day, 40 * day, 2 * day} {
		org, err := q.InsertOrganization(ctx, store.NewOrganization{Name: "o", Trial: true, EnterpriseFeatures: true, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.InsertTrial(ctx, store.InsertTrialParams{UserID: u.ID, OrganizationID: org.ID, ExpirationDate: now.Add(exp), Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	// The last trial (2 days) expired early, its grace period ending in 5 days.
	if _, err := pool.Exec(ctx, `UPDATE trials SET expired_date = $1, grace_ends_at = $2 WHERE id = 6`, now, now.Add(5*day)); err != nil {
		t.Fatal(err)
	}
	got, err := q.CountTrialsEndingBy(ctx, []time.Time{now.Add(day), now.Add(7 * day), now.Add(30 * day)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("ending within 24h/7d/30d = %v, want %v", got, want)
	}
	for by, want := range map[time.Duration]int64{4 * day: 0, 7 * day: 1} {
		if n, err := q.CountDeletionsDueBy(ctx, now.Add(by)); err != nil || n != want {
			t.Errorf("deletions due within %v = %d, %v; want %d", by, n, err, want)
		}
	}
}
