package bench

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/testdb"
)

// volatile are the columns that differ between any two inserts of the same
// trial: ids, clocks and random public ids. Everything else must match.
var volatile = map[string][]string{
	"users":                {"id", "public_id", "created_at", "updated_at", "username", "email", "name"},
	"organizations":        {"id", "public_id", "created_at", "name"},
	"organization_members": {"organization_id", "user_id", "created_at"},
	"trials":               {"id", "user_id", "organization_id", "created_at", "transition_job_id"},
	"trial_events":         {"id", "trial_id", "at", "actor", "cause", "data"},
	"river_job":            {"id", "created_at", "args", "unique_key"},
}

// The COPY loader writes what StartTrial writes: the same rows in every
// table, the same River job (args, unique key, states, queue, attempts), and
// the trial pointing at its job.
func TestLoadMatchesStartTrial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := config.Default()
	// The loader writes trials as they stand once their welcome went out;
	// their reminders (due a day and more before) are past.
	cfg.Email.Notices.Welcome = false
	due := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)

	viaService, d, jobs := benchServices(t, cfg)
	admin := newAdmin(t, d)
	var userID int64
	if err := viaService.QueryRow(ctx, `INSERT INTO users (username, email, name, created_at, updated_at)
		VALUES ('bench2', 'bench2@example.com', 'Bench User 2', now(), now()) RETURNING id`).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lifecycle.StartTrial(ctx, domain.Actor{UserID: admin, Admin: true},
		lifecycle.StartTrialRequest{UserID: userID, ExpirationDate: &due}, benchCause); err != nil {
		t.Fatal(err)
	}

	viaCopy, d2, jobs2 := benchServices(t, cfg)
	got, err := loadTrials(ctx, viaCopy, trialLoad{N: 1, From: due, AdminID: newAdmin(t, d2), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if got.LastTrialID != got.FirstTrialID {
		t.Errorf("loaded trials %d..%d, want one", got.FirstTrialID, got.LastTrialID)
	}

	for table, drop := range volatile {
		want, have := rowsOf(t, viaService, table, drop), rowsOf(t, viaCopy, table, drop)
		if len(want) == 0 {
			t.Errorf("%s: StartTrial wrote no rows to compare with", table)
		}
		if len(want) != len(have) {
			t.Errorf("%s: StartTrial wrote %d rows, the loader %d", table, len(want), len(have))
			continue
		}
		for i := range want {
			if !maps.Equal(want[i], have[i]) {
				t.Errorf("%s row %d differs:\n StartTrial %v\n loader     %v", table, i, want[i], have[i])
			}
		}
	}
	// The dropped columns that are not arbitrary: the trial's event and job
	// are its own, and the job is the one River itself writes for it.
	checkTrialJob(t, "StartTrial", viaService, jobs)
	checkTrialJob(t, "loader", viaCopy, jobs2)
	if want, have := stateCounts(t, viaService), stateCounts(t, viaCopy); want != have || want == "" {
		t.Errorf("trial_state_counts: StartTrial %q, loader %q", want, have)
	}
	if want, have := dueCounts(t, viaService), dueCounts(t, viaCopy); want != have || want == "" {
		t.Errorf("trial_due_counts: StartTrial %q, loader %q", want, have)
	}
}

// benchServices are the daemon's services on a fresh database, on a River
// client built from the daemon's River settings, which only inserts.
func benchServices(t *testing.T, cfg *config.Config) (*pgxpool.Pool, *services.Services, *river.Client[pgx.Tx]) {
	t.Helper()
	pool := testdb.New(t)
	logger := slog.New(slog.DiscardHandler)
	jobs, err := river.NewClient(riverpgxv5.New(pool), services.RiverConfig(cfg.River, clock.Real{}, logger))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := services.New(services.Deps{Config: cfg, Logger: logger, Pool: pool, Clock: clock.Real{}, Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	return pool, svc, jobs
}

// newAdmin creates the admin who starts the trials and returns its id.
func newAdmin(t *testing.T, d *services.Services) int64 {
	t.Helper()
	admin, _, err := d.Accounts.CreateAdmin(context.Background(), "benchadmin", "benchadmin@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	return admin.ID
}

// checkTrialJob checks the one non-admin trial on pool: its trial.created
// event describes it, and its job is what River, asked through the daemon's
// client to enqueue the trial's Expire job the way the lifecycle does, takes
// for that very job. River derives the unique key and states from the args
// itself, so a job whose key or states River would not have written is not
// found as a duplicate and River inserts a second one.
func checkTrialJob(t *testing.T, name string, pool *pgxpool.Pool, client *river.Client[pgx.Tx]) {
	t.Helper()
	ctx := context.Background()
	var trialID, jobID int64
	var due time.Time
	var ok bool
	err := pool.QueryRow(ctx, `SELECT t.id, t.transition_job_id, t.expiration_date,
			e.data = jsonb_build_object('expirationDate', to_char(t.expiration_date AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
				'organizationId', t.organization_id, 'selfService', false)
			AND e.actor = 'admin:' || (SELECT id FROM users WHERE is_admin)
		FROM trials t JOIN trial_events e ON e.trial_id = t.id
		WHERE t.user_id <> (SELECT id FROM users WHERE is_admin)`).Scan(&trialID, &jobID, &due, &ok)
	if err != nil || !ok {
		t.Errorf("%s: trial and event do not belong together (ok=%v, err=%v)", name, ok, err)
		return
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	args := jobargs.ExpireTrial{V: jobargs.Version, TrialID: trialID, Generation: 1}
	res, err := client.InsertTx(ctx, tx, args, &river.InsertOpts{ScheduledAt: due})
	if err != nil {
		t.Fatalf("%s: enqueueing the trial's Expire job again: %v", name, err)
	}
	if !res.UniqueSkippedAsDuplicate || res.Job.ID != jobID {
		t.Errorf("%s: River enqueued the Expire job of trial %d as job %d (duplicate %v), want the trial's job %d",
			name, trialID, res.Job.ID, res.UniqueSkippedAsDuplicate, jobID)
	}
	want, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT args = $2::jsonb FROM river_job WHERE id = $1`, jobID, want).Scan(&ok); err != nil || !ok {
		t.Errorf("%s: job %d's args are not %s (ok=%v, err=%v)", name, jobID, want, ok, err)
	}
}

// stateCounts are the counts by state the gauges read.
func stateCounts(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(state || '=' || n, ',' ORDER BY state), '')
		FROM (SELECT state, sum(n) AS n FROM trial_state_counts GROUP BY state) x`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// dueCounts is trial_due_counts summed over shards, as text.
func dueCounts(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(k, ',' ORDER BY k), '')
		FROM (SELECT kind || '/' || span || '/' || bucket || '=' || sum(n) AS k FROM trial_due_counts
			GROUP BY kind, span, bucket HAVING sum(n) <> 0) x`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// rowsOf returns table's non-admin rows, ordered by id-ish, as JSON objects
// without the volatile columns.
func rowsOf(t *testing.T, pool *pgxpool.Pool, table string, drop []string) []map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT to_jsonb(x) - $1::text[] FROM `+table+` x
		WHERE NOT (to_jsonb(x) ? 'is_admin' AND (to_jsonb(x)->>'is_admin')::boolean) ORDER BY 1::text`, drop)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		var raw map[string]json.RawMessage
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for k, v := range raw {
			m[k] = string(v)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Due dates stay inside the window and in order even when window × count
// overflows 64-bit nanoseconds (14 days × 10M trials).
func TestExpirationSpread(t *testing.T) {
	t.Parallel()
	from := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	l := trialLoad{N: 10_000_000, From: from, Window: 14 * 24 * time.Hour}
	prev := from
	for _, i := range []int{0, 1, 1000, 5_000_000, 9_999_999} {
		at := l.expiration(i)
		if at.Before(prev) || !at.Before(from.Add(l.Window)) {
			t.Fatalf("trial %d due %s, want within [%s, %s) and after %s", i, at, from, from.Add(l.Window), prev)
		}
		prev = at
	}
}

// The pgbench script is built from the store's queries: a parameter left
// without a value, or a value for a parameter the query does not have, is
// an error before pgbench runs.
func TestStoreStatementNeedsEveryParameterOnce(t *testing.T) {
	t.Parallel()
	got, err := storeStatement("SetTrialNotes", map[string]string{"notes": "NULL", "id": ":tid"})
	if err != nil || got != "UPDATE trials SET notes = (NULL) WHERE id = (:tid)" {
		t.Errorf("SetTrialNotes = %q, %v", got, err)
	}
	if _, err := storeStatement("SetTrialNotes", map[string]string{"id": ":tid"}); err == nil {
		t.Error("no error for a missing parameter")
	}
	if _, err := storeStatement("SetTrialNotes", map[string]string{"notes": "NULL", "id": ":tid", "state": "'x'"}); err == nil {
		t.Error("no error for a parameter the query does not have")
	}
}
