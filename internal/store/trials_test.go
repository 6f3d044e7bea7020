package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// The counters kept by the trials trigger agree with a count of the table
// after inserts, state changes from several connections at once, and a
// purge's cascade delete.
func TestCountTrialsByStateFollowsTheTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := store.New(pool)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u, err := q.InsertUser(ctx, store.InsertUserParams{Username: "fred", Email: "fred@acme.example", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range 40 {
		org, err := q.InsertOrganization(ctx, store.NewOrganization{Name: "o", Trial: true, EnterpriseFeatures: true, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := q.InsertTrial(ctx, store.InsertTrialParams{UserID: u.ID, OrganizationID: org.ID, ExpirationDate: now, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tr.ID)
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch i % 4 {
			case 1:
				_, err = pool.Exec(ctx, `UPDATE trials SET expired_date = $2 WHERE id = $1`, id, now)
			case 2:
				_, err = pool.Exec(ctx, `UPDATE trials SET expired_date = $2, deleted_date = $2 WHERE id = $1`, id, now)
			case 3:
				_, err = pool.Exec(ctx, `UPDATE trials SET upgraded_date = $2 WHERE id = $1`, id, now)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// A change that keeps the state does not count twice; a purge removes.
	if _, err := pool.Exec(ctx, `UPDATE trials SET notes = 'x'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM organizations WHERE id IN (SELECT organization_id FROM trials WHERE state = 'deleted' LIMIT 3)`); err != nil {
		t.Fatal(err)
	}

	got, err := q.CountTrialsByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT state, count(*) FROM trials GROUP BY state`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[domain.State]int64{domain.StateActive: 0, domain.StateExpired: 0, domain.StateDeleted: 0, domain.StateUpgraded: 0}
	for rows.Next() {
		var s domain.State
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		want[s] = n
	}
	for state, n := range want {
		if got[state] != n {
			t.Errorf("%s: counters say %d, table has %d", state, got[state], n)
		}
	}
	if want[domain.StateDeleted] != 7 || want[domain.StateActive] != 10 {
		t.Fatalf("test setup: %v", want)
	}
	// The purged trials are gone from the table, not from the count.
	if got[domain.StatePurged] != 3 {
		t.Errorf("purged: counters say %d, 3 trials were purged", got[domain.StatePurged])
	}
}

// Statements that change many trials at once (a batch of expiries, a
// sweep, an import, a cascade) keep the counters right, in one transaction
// or several.
func TestCountTrialsByStateAfterMultiRowStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	q := store.New(pool)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u, err := q.InsertUser(ctx, store.InsertUserParams{Username: "wilma", Email: "wilma@acme.example", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	// The first three statements share a transaction; the rest run alone.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	steps := []struct {
		db interface {
			Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
		}
		sql  string
		args []any
	}{
		{tx, `INSERT INTO organizations (name, is_trial, enterprise_features, created_at)
			SELECT 'o', true, true, $1 FROM generate_series(1, 30)`, []any{now}},
		{tx, `INSERT INTO trials (user_id, organization_id, self_service, expiration_date, created_at)
			SELECT $1, id, false, $2, $2 FROM organizations`, []any{u.ID, now}},
		{tx, `UPDATE trials SET expired_date = $1 WHERE id IN (SELECT id FROM trials ORDER BY id LIMIT 20)`, []any{now}},
		{pool, `UPDATE trials SET notes = 'kept state'`, nil},
		{pool, `UPDATE trials SET upgraded_date = $1 WHERE id IN (SELECT id FROM trials WHERE state = 'active' LIMIT 5)`, []any{now}},
		{pool, `UPDATE trials SET deleted_date = $1 WHERE id IN (SELECT id FROM trials WHERE state = 'expired' ORDER BY id LIMIT 8)`, []any{now}},
		{pool, `DELETE FROM organizations WHERE id IN (SELECT organization_id FROM trials WHERE state = 'deleted' LIMIT 3)`, nil},
	}
	for i, st := range steps {
		if i == 3 {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.db.Exec(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got, err := q.CountTrialsByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[domain.State]int64{domain.StateActive: 5, domain.StateExpired: 12, domain.StateDeleted: 5, domain.StateUpgraded: 5}
	for state, n := range want {
		if got[state] != n {
			t.Errorf("%s: counters say %d, want %d", state, got[state], n)
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM trial_state_counts`).Scan(&rows); err != nil || rows > 4*32 {
		t.Fatalf("%d counter rows (%v)", rows, err)
	}
}

// Two transactions that change trials' states never wait on each other's
// counter rows, whatever their backends' process ids: each backend counts
// in a shard of its own. Then a fold moves the shards of gone backends into
// one and the counts stay what they were.
func TestTrialStateCountersNeverWaitAndFold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, url := testdb.NewWithURL(t)
	q := store.New(pool)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u, err := q.InsertUser(ctx, store.InsertUserParams{Username: "barney", Email: "barney@acme.example", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		WITH o AS (INSERT INTO organizations (name, is_trial, created_at) SELECT 'o', true, $2 FROM generate_series(1, 40) RETURNING id)
		INSERT INTO trials (user_id, organization_id, self_service, expiration_date, created_at) SELECT $1, id, false, $2, $2 FROM o`, u.ID, now); err != nil {
		t.Fatal(err)
	}
	// 40 backends at once, each expiring its own trial in an open
	// transaction: with shared shards some pair would collide and wait.
	pids := writeOnOpenBackends(t, url, 40, func(ctx context.Context, c *pgx.Conn, i int) error {
		_, err := c.Exec(ctx, `UPDATE trials SET expired_date = $1 WHERE id = (SELECT id FROM trials ORDER BY id OFFSET $2 LIMIT 1)`, now, i)
		return err
	})
	before, err := q.CountTrialsByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before[domain.StateExpired] != 40 || before[domain.StateActive] != 0 {
		t.Fatalf("counts %v, want 40 expired", before)
	}
	// The closed backends' rows are folded once Postgres has let them go.
	left := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM trial_state_counts WHERE shard = ANY($1)`, pids).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := left(); n != 2*len(pids) {
		t.Fatalf("%d counter rows of the 40 backends, want 2 each (active and expired)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for left() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d counter rows of the closed backends still unfolded", left())
		}
		if _, err := q.FoldTrialStateCounts(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // a poll: Postgres lets closed backends go in its own time
	}
	after, err := q.CountTrialsByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for state, n := range before {
		if after[state] != n {
			t.Errorf("%s: %d before the fold, %d after", state, n, after[state])
		}
	}
}

// writeOnOpenBackends opens n backends, has each run write(i) in a
// transaction while the earlier ones keep theirs open, fails the test if
// one waited (on another's row), then commits and closes them all, and
// returns their process ids.
func writeOnOpenBackends(t *testing.T, url string, n int, write func(ctx context.Context, c *pgx.Conn, i int) error) []int32 {
	t.Helper()
	ctx := context.Background()
	conns := make([]*pgx.Conn, n)
	pids := make([]int32, n)
	for i := range conns {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		defer c.Close(ctx)
		pids[i] = int32(c.PgConn().PID())
		if _, err := c.Exec(ctx, `BEGIN`); err != nil {
			t.Fatal(err)
		}
		wait, cancel := context.WithTimeout(ctx, 5*time.Second) // bounds a hang, not a speed
		err = write(wait, c, i)
		cancel()
		if err != nil {
			t.Fatalf("backend %d waited on another's counter: %v", i, err)
		}
	}
	for i, c := range conns {
		if _, err := c.Exec(ctx, `COMMIT`); err != nil {
			t.Fatalf("backend %d: %v", i, err)
		}
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return pids
}
