package signup_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/signup"
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

	svc := signup.New(signup.Deps{Pool: pool, Clock: clock.NewStub(now)})
	sweep, err := svc.RemoveUnpaid(ctx, ttl)
	if err != nil || sweep.Removed != 2 {
		t.Fatalf("RemoveUnpaid = %+v, %v; want 2 removed", sweep, err)
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
	if sweep, err := svc.RemoveUnpaid(ctx, ttl); err != nil || sweep.Removed != 0 {
		t.Fatalf("second sweep removed %d, %v; want 0", sweep.Removed, err)
	}
}

// The sweep removes only sign-ups that have nothing else. A pending user
// who also owns a trial, belongs to an organization or holds an enterprise
// is kept, with all of it (a trial leaves only through the purge, with its
// event); the database itself refuses to delete them; and a user whose
// delete is refused for a reason the sweep did not foresee stops none of
// the others, in this sweep or the next.
func TestUnpaidSweepKeepsWhatUsersOwn(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	const ttl = 168 * time.Hour
	q := store.New(pool)
	ids := map[string]int64{}
	for _, name := range []string{"plain-1", "with-trial", "member", "enterprise-user", "held-elsewhere", "plain-2"} {
		row, err := q.InsertUser(ctx, store.InsertUserParams{Username: name, Email: name + "@acme.example", Plan: domain.PlanProfessional, PlanState: domain.PlanPendingPayment, Now: now.Add(-2 * ttl)})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = row.ID
	}
	var orgID int64
	if err := pool.QueryRow(ctx, `INSERT INTO organizations (name, is_trial, enterprise_features, created_at) VALUES ('o', true, true, $1) RETURNING id`, now).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`INSERT INTO trials (user_id, organization_id, self_service, expiration_date, created_at) VALUES (` + itoa(ids["with-trial"]) + `, $1, true, $2, $2)`,
		`INSERT INTO organization_members (organization_id, user_id, role, created_at) VALUES ($1, ` + itoa(ids["member"]) + `, 'member', $2)`,
		`INSERT INTO enterprises (organization_id, user_id, created_at) SELECT $1, ` + itoa(ids["enterprise-user"]) + `, $2`,
		// A reference the sweep knows nothing of: the delete is refused.
		`CREATE TABLE elsewhere (user_id bigint REFERENCES users (id), at timestamptz, org bigint)`,
		`INSERT INTO elsewhere VALUES (` + itoa(ids["held-elsewhere"]) + `, $2, $1)`,
	} {
		args := []any{orgID, now}
		if strings.HasPrefix(sql, "CREATE") {
			args = nil
		}
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, ids["with-trial"]); store.ForeignKeyViolation(err) == "" {
		t.Fatalf("deleting a user who owns a trial: %v, want a foreign key violation", err)
	}

	svc := signup.New(signup.Deps{Pool: pool, Clock: clock.NewStub(now)})
	for run := range 2 {
		sweep, err := svc.RemoveUnpaid(ctx, ttl)
		if err != nil {
			t.Fatalf("sweep %d: %v", run, err)
		}
		wantRemoved := 2
		if run == 1 {
			wantRemoved = 0
		}
		if sweep.Removed != wantRemoved || len(sweep.Kept) != 4 {
			t.Fatalf("sweep %d: %d removed, kept %v; want %d removed and the 4 who own something", run, sweep.Removed, sweep.Kept, wantRemoved)
		}
	}
	for name, id := range ids {
		_, err := q.UserByID(ctx, id)
		if gone, want := err != nil, strings.HasPrefix(name, "plain"); gone != want {
			t.Errorf("%s: gone %t, want %t (%v)", name, gone, want, err)
		}
	}
	var trials int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM trials`).Scan(&trials); err != nil || trials != 1 {
		t.Errorf("%d trials left (%v), want the kept user's one", trials, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
