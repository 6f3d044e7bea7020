package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// dueBase is midnight UTC, a day, hour and minute boundary at once.
var dueBase = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// dueFixture drives trials as the lifecycle writes them, for the look-ahead
// counters' tests: a user owns every trial, some live on a test clock.
type dueFixture struct {
	t     *testing.T
	pool  *pgxpool.Pool
	user  int64
	clock int64
}

func newDueFixture(t *testing.T, pool *pgxpool.Pool) *dueFixture {
	t.Helper()
	ctx := context.Background()
	q := store.New(pool)
	u, err := q.InsertUser(ctx, store.InsertUserParams{Username: "dino", Email: "dino@acme.example", Now: dueBase})
	if err != nil {
		t.Fatal(err)
	}
	clk, err := q.InsertTestClock(ctx, store.NewTestClock{Name: "rehearsal", FrozenTime: dueBase, CreatedAt: dueBase, DeletesAfter: dueBase.Add(30 * day)})
	if err != nil {
		t.Fatal(err)
	}
	return &dueFixture{t: t, pool: pool, user: u.ID, clock: clk.ID}
}

// pickDate is a date around dueBase, often exactly on a bucket boundary.
func pickDate(r *rand.Rand) time.Time {
	d := dueBase.Add(time.Duration(r.IntN(45)-5) * day)
	switch r.IntN(4) {
	case 0: // a day boundary
	case 1:
		d = d.Add(time.Duration(r.IntN(24)) * time.Hour)
	case 2:
		d = d.Add(time.Duration(r.IntN(24*60)) * time.Minute)
	default:
		d = d.Add(time.Duration(r.Int64N(int64(day)))).Truncate(time.Microsecond)
	}
	return d
}

// start starts a trial ending at exp (on the test clock if onClock) and
// returns its id.
func (f *dueFixture) start(ctx context.Context, db store.DBTX, exp time.Time, onClock bool) (int64, error) {
	q := store.New(db)
	org, err := q.InsertOrganization(ctx, store.NewOrganization{Name: "o", Trial: true, EnterpriseFeatures: true, Now: dueBase})
	if err != nil {
		return 0, err
	}
	p := store.InsertTrialParams{UserID: f.user, OrganizationID: org.ID, ExpirationDate: exp, Now: dueBase}
	if onClock {
		p.TestClockID = &f.clock
	}
	tr, err := q.InsertTrial(ctx, p)
	return tr.ID, err
}

// step changes trial id as one of the lifecycle's transitions valid in its
// state would: expire, extend (an expired trial back to active too),
// shorten, delete, restore, upgrade, purge, or a change of nothing counted.
// A trial purged already is left alone.
func (f *dueFixture) step(ctx context.Context, db store.DBTX, r *rand.Rand, id int64) error {
	q := store.New(db)
	tr, err := q.TrialByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	at, to := pickDate(r), pickDate(r)
	d := store.TrialDates{ExpirationDate: tr.ExpirationDate, ExpiredDate: tr.ExpiredDate, DeletedDate: tr.DeletedDate,
		UpgradedDate: tr.UpgradedDate, GraceEndsAt: tr.GraceEndsAt}
	switch op := r.IntN(8); {
	case op == 0:
		_, err = db.Exec(ctx, `DELETE FROM organizations WHERE id = $1`, tr.OrganizationID) // purge
		return err
	case op == 1:
		notes := "counted nowhere"
		return q.SetTrialNotes(ctx, id, &notes)
	case tr.State == domain.StateActive && op < 5:
		return q.ExpireTrials(ctx, store.ExpiredTrials{IDs: []int64{id}, JobIDs: []int64{0}, NoticeJobIDs: []int64{0}, At: at, GraceEndsAt: to})
	case tr.State == domain.StateActive && op == 5:
		d.UpgradedDate = &at
	case tr.State == domain.StateActive, tr.State == domain.StateExpired && op == 5: // extend, shorten
		d.ExpirationDate, d.ExpiredDate, d.GraceEndsAt = to, nil, nil
	case tr.State == domain.StateExpired:
		d.DeletedDate = &at
	case tr.State == domain.StateDeleted: // restore
		d.DeletedDate, d.GraceEndsAt = nil, &to
	default:
		return nil
	}
	_, err = q.SetTrialDates(ctx, id, d)
	return err
}

// mix fails the test unless the trials cover what the counts must get
// right: each state counted, on real time and on the test clock.
func (f *dueFixture) mix(ctx context.Context) {
	f.t.Helper()
	var kinds int
	if err := f.pool.QueryRow(ctx, `SELECT count(DISTINCT (state, test_clock_id IS NULL)) FROM trials
		WHERE state IN ('active', 'expired')`).Scan(&kinds); err != nil || kinds != 4 {
		f.t.Fatalf("test setup: %d of active and expired trials on and off the clock, want 4 (%v)", kinds, err)
	}
}

// check compares the kept counts at each instant with a count over the
// whole table, as the gauges counted before 00014.
func (f *dueFixture) check(ctx context.Context, db store.DBTX, instants []time.Time) {
	f.t.Helper()
	wrong := 0
	for len(instants) > 0 {
		chunk := instants[:min(len(instants), 60)]
		instants = instants[len(chunk):]
		ending, err := store.New(db).CountTrialsEndingBy(ctx, chunk)
		if err != nil {
			f.t.Fatal(err)
		}
		for i, by := range chunk {
			var wantEnding, wantDeletions int64
			if err := db.QueryRow(ctx, `SELECT
					count(*) FILTER (WHERE state = 'active' AND expiration_date <= $1),
					count(*) FILTER (WHERE state = 'expired' AND grace_ends_at <= $1)
				FROM trials WHERE test_clock_id IS NULL`, by).Scan(&wantEnding, &wantDeletions); err != nil {
				f.t.Fatal(err)
			}
			deletions, err := store.New(db).CountDeletionsDueBy(ctx, by)
			if err != nil {
				f.t.Fatal(err)
			}
			if ending[i] != wantEnding || deletions != wantDeletions {
				if wrong++; wrong > 5 {
					f.t.Fatal("and more")
				}
				f.t.Errorf("at %s: kept counts ending %d, deletions %d; the table has %d, %d",
					by.Format(time.RFC3339Nano), ending[i], deletions, wantEnding, wantDeletions)
			}
		}
	}
}

// instants are the instants worth checking from `from` on: each trial's
// dates and the instant before each, their minute, hour and day
// boundaries and the instant before those, and the gauges' windows from
// clock positions across the trials' span.
func (f *dueFixture) instants(ctx context.Context, db store.DBTX, from time.Time) []time.Time {
	f.t.Helper()
	rows, err := db.Query(ctx, `SELECT expiration_date FROM trials UNION SELECT grace_ends_at FROM trials WHERE grace_ends_at IS NOT NULL`)
	if err != nil {
		f.t.Fatal(err)
	}
	dates, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		f.t.Fatal(err)
	}
	var out []time.Time
	add := func(at time.Time) {
		for _, i := range []time.Time{at, at.Add(-time.Microsecond)} {
			if !i.Before(from) {
				out = append(out, i)
			}
		}
	}
	for _, d := range dates {
		for _, span := range []time.Duration{0, time.Minute, time.Hour, day} {
			if span == 0 {
				add(d)
			} else {
				add(d.Truncate(span))
			}
		}
	}
	for now := dueBase.Add(-2 * day); now.Before(dueBase.Add(45 * day)); now = now.Add(19*time.Hour + 7*time.Minute + 13*time.Second) {
		for _, w := range []time.Duration{day, 7 * day, 30 * day} {
			add(now.Add(w))
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return slices.CompactFunc(out, time.Time.Equal)
}

// The kept look-ahead counts equal a count over the table through every
// transition, in statements changing one trial or many, in a session of
// another time zone, for test-clock trials (never counted) and at instants
// on and beside every bucket boundary; and after a fold, for every instant
// from its horizon on.
func TestTrialDueCountsFollowTheTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	f := newDueFixture(t, pool)
	r := rand.New(rand.NewPCG(1, 2))
	var ids []int64
	for i := range 80 {
		id, err := f.start(ctx, pool, pickDate(r), i%7 == 0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	round := func() {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SET LOCAL TimeZone = 'Asia/Kathmandu'`); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := f.step(ctx, tx, r, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	round()
	f.mix(ctx)
	f.check(ctx, pool, f.instants(ctx, pool, time.Time{}))
	// Many trials in one statement: an expiry batch, a sweep, an import.
	if _, err := pool.Exec(ctx, `UPDATE trials SET expired_date = $1, grace_ends_at = $1::timestamptz + interval '7 days'
		WHERE state = 'active' AND expiration_date < $2`, dueBase, dueBase.Add(10*day)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE trials SET expiration_date = expiration_date + interval '90 seconds' WHERE state = 'active'`); err != nil {
		t.Fatal(err)
	}
	round()
	f.check(ctx, pool, f.instants(ctx, pool, time.Time{}))

	// A fold a day behind a clock at dueBase + 6d, with the rows of two
	// backends that have gone (their counts cancel out).
	if _, err := pool.Exec(ctx, `INSERT INTO trial_due_counts (kind, span, bucket, shard, n) VALUES
		('ending', 'day', $1, 2147483000, 1), ('ending', 'day', $1, 2147483001, -1)`, dueBase.Add(20*day)); err != nil {
		t.Fatal(err)
	}
	before := dueBase.Add(5 * day)
	if _, err := store.New(pool).FoldTrialDueCounts(ctx, before); err != nil {
		t.Fatal(err)
	}
	var stale int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM trial_due_counts
		WHERE shard >= 2147483000 OR (bucket < $1 AND NOT (span = 'day' AND bucket = '-infinity' AND shard = 0))`, before).Scan(&stale); err != nil || stale != 0 {
		t.Fatalf("%d counter rows of gone backends or before the horizon left after the fold (%v)", stale, err)
	}
	f.check(ctx, pool, f.instants(ctx, pool, before))
	round()
	f.check(ctx, pool, f.instants(ctx, pool, before))
}

// Transactions on several connections at once, some rolled back, changing
// trials whose dates share buckets, while folds run beside them, leave the
// kept counts exact: no change is lost or counted twice.
func TestTrialDueCountsUnderConcurrentChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	f := newDueFixture(t, pool)
	// A few shared dates, so every worker counts in the same buckets.
	shared := make([]time.Time, 6)
	for i := range shared {
		shared[i] = pickDate(rand.New(rand.NewPCG(uint64(i), 7)))
	}
	// The folds' horizon is among the dates, so they take rows the workers
	// are writing.
	before := dueBase.Add(3 * day)
	shared[0], shared[1] = before.Add(-time.Minute), before
	done := make(chan struct{})
	folds := make(chan error, 1)
	var folded int64
	go func() {
		var err error
		for err == nil {
			select {
			case <-done:
				folds <- nil
				return
			default:
				var n int64
				n, err = store.New(pool).FoldTrialDueCounts(ctx, before)
				folded += n
			}
		}
		folds <- err
	}()
	var wg sync.WaitGroup
	for w := range 7 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.work(ctx, rand.New(rand.NewPCG(uint64(w), 99)), shared); err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		}()
	}
	wg.Wait()
	close(done)
	if err := <-folds; err != nil {
		t.Fatal(err)
	}
	if folded == 0 {
		t.Error("the folds took no rows beside the workers")
	}
	f.mix(ctx)
	f.check(ctx, pool, f.instants(ctx, pool, before))
}

// work runs 40 transactions of one to four changes on trials of its own,
// one in five rolled back, on a connection of its own.
func (f *dueFixture) work(ctx context.Context, r *rand.Rand, shared []time.Time) error {
	conn, err := f.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var mine []int64
	for range 40 {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		started := mine
		for range 1 + r.IntN(4) {
			if len(started) == 0 || r.IntN(3) == 0 {
				id, err := f.start(ctx, tx, shared[r.IntN(len(shared))], r.IntN(5) == 0)
				if err != nil {
					return rollback(tx, err)
				}
				started = append(started, id)
				continue
			}
			if err := f.step(ctx, tx, r, started[r.IntN(len(started))]); err != nil {
				return rollback(tx, err)
			}
		}
		if r.IntN(5) == 0 {
			err = tx.Rollback(ctx)
		} else if err = tx.Commit(ctx); err == nil {
			mine = started
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rollback rolls tx back and returns err.
func rollback(tx pgx.Tx, err error) error {
	_ = tx.Rollback(context.Background())
	return err
}

// Transactions on many backends that each start a trial ending at the same
// instant, all open at once, never wait on one another's counter rows,
// which every one of them writes the same buckets of.
func TestTrialDueCountersNeverWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, url := testdb.NewWithURL(t)
	f := newDueFixture(t, pool)
	exp := dueBase.Add(14*day + 90*time.Second)
	writeOnOpenBackends(t, url, 20, func(ctx context.Context, c *pgx.Conn, _ int) error {
		_, err := f.start(ctx, c, exp, false)
		return err
	})
	f.check(ctx, pool, []time.Time{exp, exp.Add(-time.Microsecond), exp.Add(time.Hour), exp.Add(day)})
}

// The look-ahead counts read no more of the trials table than the trials
// of each window's last minute, however many trials it holds: of 20,000
// trials, one every 259 s over two months, one trial and a few dozen
// counter rows for the four windows.
func TestTrialDueCountsReadOneMinuteOfTrials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	f := newDueFixture(t, pool)
	if _, err := pool.Exec(ctx, `
		WITH o AS (INSERT INTO organizations (name, is_trial, created_at) SELECT 'o', true, $2 FROM generate_series(1, 20000) RETURNING id),
		n AS (SELECT id, row_number() OVER (ORDER BY id) AS i FROM o)
		INSERT INTO trials (user_id, organization_id, self_service, created_at, expiration_date, expired_date, grace_ends_at)
		SELECT $1, id, false, $2, $2 + i * interval '259 seconds',
			CASE WHEN i % 3 = 0 THEN $2 END, CASE WHEN i % 3 = 0 THEN $2 + i * interval '259 seconds' END
		FROM n`, f.user, dueBase); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE trials, trial_due_counts`); err != nil {
		t.Fatal(err)
	}
	// The 24-hour window ends 10 s after trial 1000's date, in its minute.
	now := dueBase.Add(1000*259*time.Second + 10*time.Second - day)
	var plans []json.RawMessage
	q := store.New(analyzer{db: pool, plans: &plans})
	if _, err := q.CountTrialsEndingBy(ctx, []time.Time{now.Add(day), now.Add(7 * day), now.Add(30 * day)}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.CountDeletionsDueBy(ctx, now.Add(7*day)); err != nil {
		t.Fatal(err)
	}
	read := map[string]float64{}
	for _, p := range plans {
		var top []struct{ Plan planNode }
		if err := json.Unmarshal(p, &top); err != nil {
			t.Fatal(err)
		}
		top[0].Plan.rowsRead(read)
	}
	// The trials whose date falls in a window's last minute, whatever
	// their state: trial 1000 (active, in the 24-hour window's) and trial
	// 10674 (expired, in the 30-day window's).
	var edges float64
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM trials, unnest($1::timestamptz[]) by
			WHERE expiration_date BETWEEN trial_due_bucket('minute', by) AND by) +
		(SELECT count(*) FROM trials WHERE grace_ends_at BETWEEN trial_due_bucket('minute', $2) AND $2)`,
		[]time.Time{now.Add(day), now.Add(7 * day), now.Add(30 * day)}, now.Add(7*day)).Scan(&edges); err != nil {
		t.Fatal(err)
	}
	if _, scanned := read["trials"]; !scanned || read["trials"] > edges || edges != 2 {
		t.Errorf("the look-ahead counts read %v rows of trials; want at most the %v in the windows' last minutes", read["trials"], edges)
	}
	// A window reads the days before its own (33 for 30 days from day 3),
	// up to 23 hours and 59 minutes, each one row here (one backend counted).
	if read["trial_due_counts"] > 4*(33+23+59) {
		t.Errorf("the look-ahead counts read %v counter rows; want at most %d", read["trial_due_counts"], 4*(33+23+59))
	}
	f.check(ctx, pool, []time.Time{now.Add(day), now.Add(7 * day), now.Add(30 * day)})
}

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	Relation  string     `json:"Relation Name"`
	Rows      float64    `json:"Actual Rows"`
	Loops     float64    `json:"Actual Loops"`
	Filtered  float64    `json:"Rows Removed by Filter"`
	Rechecked float64    `json:"Rows Removed by Index Recheck"`
	Plans     []planNode `json:"Plans"`
}

// rowsRead adds, by relation, the rows n and its children read: those
// returned and those a filter or recheck threw away, over every loop.
func (n planNode) rowsRead(read map[string]float64) {
	if n.Relation != "" {
		read[n.Relation] += (n.Rows + n.Filtered + n.Rechecked) * n.Loops
	}
	for _, c := range n.Plans {
		c.rowsRead(read)
	}
}

// analyzer is a store.DBTX that runs every QueryRow under EXPLAIN ANALYZE
// first and keeps its plan.
type analyzer struct {
	db    *pgxpool.Pool
	plans *[]json.RawMessage
}

func (a analyzer) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return a.db.Exec(ctx, sql, args...)
}

func (a analyzer) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return a.db.Query(ctx, sql, args...)
}

func (a analyzer) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	var plan []byte
	if err := a.db.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
		return errRow{fmt.Errorf("explaining: %w", err)}
	}
	*a.plans = append(*a.plans, plan)
	return a.db.QueryRow(ctx, sql, args...)
}

// errRow is a pgx.Row that fails.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
