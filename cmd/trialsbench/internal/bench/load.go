package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
)

// The rows below are what lifecycle.StartTrial writes when an admin starts a
// trial for another user (expiration date set, no reminder due before it),
// written with COPY instead of one transaction per trial: loading 100k trials
// takes seconds instead of minutes, and 10M becomes possible at all. The
// trials' Expire jobs River writes itself (see jobs.go).
// TestLoadMatchesStartTrial keeps the two in step.
const benchCause = "request:trialsbench"

// trialLoad describes a batch of trials to load: N users, each with a trial
// organization they administer and an active trial expiring at evenly spaced
// instants over [From, From+Window), each with its scheduled Expire job.
type trialLoad struct {
	N       int
	From    time.Time
	Window  time.Duration
	AdminID int64
	// Config is the configuration of the daemon that will work the jobs:
	// their attempts (river.max_attempts) and when each Expire job is due
	// (lifecycle.ExpiryJobDelay), as StartTrial would write them.
	Config *config.Config
}

// loaded is where a load's rows start, to tell them from older ones.
type loaded struct {
	FirstTrialID, LastTrialID int64
	FirstUserID               int64
}

// expiration is the due date of the i-th of n trials, at millisecond
// precision like every date the lifecycle stores.
func (l trialLoad) expiration(i int) time.Time {
	at := l.From
	if l.N > 1 && l.Window > 0 {
		// In float: Window·i overflows int64 for days × millions of trials.
		at = at.Add(time.Duration(float64(l.Window) * float64(i) / float64(l.N)))
	}
	return domain.Instant(at)
}

// idBase is where the ids of a load's rows start: row i of a table gets
// base + i + 1. The load's jobs get their ids from River; lastJob is the
// newest job before them.
type idBase struct{ user, org, trial, lastJob int64 }

func (b idBase) userID(i int) int64  { return b.user + int64(i) + 1 }
func (b idBase) orgID(i int) int64   { return b.org + int64(i) + 1 }
func (b idBase) trialID(i int) int64 { return b.trial + int64(i) + 1 }

// loadedTables are the tables a load locks and analyzes.
const loadedTables = `users, organizations, organization_members, trials, trial_events, river_job`

// loadTrials writes the rows of l with one COPY per table and River's fast
// insert for the jobs, in one transaction that holds off other writers (a
// running daemon's periodic jobs) so the explicit ids cannot collide, and
// moves the identity sequences past them.
func loadTrials(ctx context.Context, pool *pgxpool.Pool, l trialLoad) (_ loaded, err error) {
	jobs, err := newInserter(pool, l.Config.River.MaxAttempts)
	if err != nil {
		return loaded{}, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return loaded{}, fmt.Errorf("beginning load: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, `LOCK TABLE `+loadedTables+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return loaded{}, fmt.Errorf("locking tables for load: %w", err)
	}
	base, err := readIDBases(ctx, tx)
	if err != nil {
		return loaded{}, err
	}
	// Row triggers off for the load: the foreign keys hold by construction,
	// and the per-row trigger that keeps trial_state_counts makes a bulk
	// insert in one transaction quadratic (every row updates the same
	// counter row again, a chain no one can prune until commit: 100k trials
	// took a minute). Its effect is applied once, below.
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		return loaded{}, fmt.Errorf("disabling triggers for load: %w", err)
	}
	delay := lifecycle.ExpiryJobDelay(l.Config.Lifecycle)
	if err := insertJobs(ctx, tx, jobs, l.N, func(i int) river.InsertManyParams {
		return expireJob(base.trialID(i), l.expiration(i).Add(delay))
	}); err != nil {
		return loaded{}, err
	}
	jobIDs, err := expireJobIDs(ctx, tx, base.lastJob, base.trialID(0), l.N)
	if err != nil {
		return loaded{}, err
	}
	for _, t := range l.tables(base, jobIDs) {
		if err := copyRows(ctx, tx, t.table, t.columns, l.N, t.row); err != nil {
			return loaded{}, err
		}
	}
	if err := finishLoad(ctx, tx, base.trialID(0), l.N); err != nil {
		return loaded{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return loaded{}, fmt.Errorf("committing load: %w", err)
	}
	// Trials created over days have statistics long before they fall due;
	// a bulk load has none until autovacuum comes by, and River's scheduler
	// planned without them takes ~27 s instead of ~0.4 s per 10k jobs.
	if _, err := pool.Exec(ctx, `ANALYZE `+loadedTables); err != nil {
		return loaded{}, fmt.Errorf("analyzing loaded tables: %w", err)
	}
	return loaded{FirstTrialID: base.trialID(0), LastTrialID: base.trialID(l.N - 1), FirstUserID: base.userID(0)}, nil
}

// readIDBases reads where the load's ids start. An insert that drew its id
// before the lock has not written it yet: start past the sequences as well
// as past the rows.
func readIDBases(ctx context.Context, tx pgx.Tx) (idBase, error) {
	var b idBase
	err := tx.QueryRow(ctx, `SELECT
		greatest((SELECT coalesce(max(id), 0) FROM users), (SELECT last_value FROM users_id_seq)),
		greatest((SELECT coalesce(max(id), 0) FROM organizations), (SELECT last_value FROM organizations_id_seq)),
		greatest((SELECT coalesce(max(id), 0) FROM trials), (SELECT last_value FROM trials_id_seq)),
		(SELECT coalesce(max(id), 0) FROM river_job)`).
		Scan(&b.user, &b.org, &b.trial, &b.lastJob)
	if err != nil {
		return idBase{}, fmt.Errorf("reading id bases: %w", err)
	}
	return b, nil
}

// loadTable is one table's COPY: its columns and how to make row i.
type loadTable struct {
	table   string
	columns []string
	row     func(i int) ([]any, error)
}

// tables are the COPYs of l's rows of trialsd's own tables, the trials
// pointing at the jobs River gave jobIDs.
func (l trialLoad) tables(b idBase, jobIDs []int64) []loadTable {
	now := domain.Instant(time.Now())
	name := func(i int) string { return fmt.Sprintf("Bench User %d", b.userID(i)) }
	actor := fmt.Sprintf("admin:%d", l.AdminID)
	return []loadTable{
		{"users", []string{"id", "username", "email", "name", "created_at", "updated_at"}, func(i int) ([]any, error) {
			return []any{b.userID(i), fmt.Sprintf("bench%d", b.userID(i)), fmt.Sprintf("bench%d@example.com", b.userID(i)), name(i), now, now}, nil
		}},
		{"organizations", []string{"id", "name", "is_trial", "enterprise_features", "created_at"}, func(i int) ([]any, error) {
			return []any{b.orgID(i), name(i), true, true, now}, nil
		}},
		{"organization_members", []string{"organization_id", "user_id", "role", "created_at"}, func(i int) ([]any, error) {
			return []any{b.orgID(i), b.userID(i), store.RoleAdmin, now}, nil
		}},
		{"trials", []string{"id", "user_id", "organization_id", "self_service", "created_at", "expiration_date", "transition_job_id"}, func(i int) ([]any, error) {
			return []any{b.trialID(i), b.userID(i), b.orgID(i), false, now, l.expiration(i), jobIDs[i]}, nil
		}},
		{"trial_events", []string{"trial_id", "kind", "at", "actor", "cause", "data"}, func(i int) ([]any, error) {
			data, err := json.Marshal(map[string]any{"expirationDate": wire.Format(l.expiration(i)), "organizationId": b.orgID(i), "selfService": false})
			return []any{b.trialID(i), domain.EventCreated, now, actor, benchCause, data}, err
		}},
	}
}

// finishLoad does what the disabled triggers would have done for the n
// trials from id first and moves the sequences past the loaded ids.
func finishLoad(ctx context.Context, tx pgx.Tx, first int64, n int) error {
	if err := countActive(ctx, tx, n); err != nil {
		return err
	}
	if err := countDue(ctx, tx, first, n); err != nil {
		return err
	}
	return resetSequences(ctx, tx)
}

// countDue does what the trials trigger would have done for the n new
// active trials from id first, when the schema keeps the look-ahead counts
// (migration 00014): one pass over the loaded rows.
func countDue(ctx context.Context, tx pgx.Tx, first int64, n int) error {
	var counted bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('trial_due_counts') IS NOT NULL`).Scan(&counted); err != nil {
		return fmt.Errorf("looking for trial_due_counts: %w", err)
	}
	if !counted {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO trial_due_counts AS c (kind, span, bucket, shard, n)
		SELECT k.kind, k.span, k.bucket, 0, count(*)
		FROM trials t, LATERAL trial_due_keys(t.state, t.expiration_date, t.grace_ends_at) k
		WHERE t.id BETWEEN $1 AND $2
		GROUP BY 1, 2, 3
		ON CONFLICT (kind, span, bucket, shard) DO UPDATE SET n = c.n + EXCLUDED.n`, first, first+int64(n)-1)
	if err != nil {
		return fmt.Errorf("counting loaded trials by due date: %w", err)
	}
	return nil
}

// countActive does what the trials trigger would have done for n new
// active trials, when the schema keeps counts by state.
func countActive(ctx context.Context, tx pgx.Tx, n int) error {
	var counted bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('trial_state_counts') IS NOT NULL`).Scan(&counted); err != nil {
		return fmt.Errorf("looking for trial_state_counts: %w", err)
	}
	if !counted {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO trial_state_counts AS c (shard, state, n) VALUES (0, 'active', $1)
		ON CONFLICT (shard, state) DO UPDATE SET n = c.n + $1`, n)
	if err != nil {
		return fmt.Errorf("counting loaded trials: %w", err)
	}
	return nil
}

// copier is a pool or a transaction.
type copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// copyRows COPYs n rows made by row into table.
func copyRows(ctx context.Context, db copier, table string, columns []string, n int, row func(int) ([]any, error)) error {
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= n {
			return nil, nil
		}
		r, err := row(i)
		i++
		return r, err
	})
	got, err := db.CopyFrom(ctx, pgx.Identifier{table}, columns, src)
	if err != nil {
		return fmt.Errorf("copying %d rows into %s: %w", n, table, err)
	}
	if got != int64(n) {
		return fmt.Errorf("copied %d rows into %s, want %d", got, table, n)
	}
	return nil
}

// resetSequences moves every identity sequence past the rows COPY wrote
// with explicit ids, so the daemon's own inserts do not collide with them.
func resetSequences(ctx context.Context, db copier) error {
	for _, t := range []string{"users", "organizations", "trials", "river_job", "api_keys"} {
		_, err := db.Exec(ctx, fmt.Sprintf(
			`SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), coalesce((SELECT max(id) FROM %[1]s), 0) + 1, false)`, t))
		if err != nil {
			return fmt.Errorf("resetting the id sequence of %s: %w", t, err)
		}
	}
	return nil
}

// apiUser is a user the intake scenario acts as.
type apiUser struct {
	ID  int64
	Key string
}

// loadAPIUsers creates n users, each with an API key, and returns them. The
// key format and hash are those of accounts.issueKey: "ei_" and 64 hex
// digits, stored as its SHA-256 with the first 11 characters for display.
func loadAPIUsers(ctx context.Context, pool *pgxpool.Pool, n int, prefix string) ([]apiUser, error) {
	var base int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM users`).Scan(&base); err != nil {
		return nil, fmt.Errorf("reading user id base: %w", err)
	}
	now := domain.Instant(time.Now())
	users := make([]apiUser, n)
	for i := range users {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		users[i] = apiUser{ID: base + int64(i) + 1, Key: "ei_" + hex.EncodeToString(b)}
	}
	err := copyRows(ctx, pool, "users", []string{"id", "username", "email", "name", "created_at", "updated_at"}, n, func(i int) ([]any, error) {
		id := users[i].ID
		// Each of a company of its own: one trial per company domain is
		// what the eligibility rules allow at a time.
		return []any{id, fmt.Sprintf("%s%d", prefix, id), fmt.Sprintf("%s%d@%s%d.example", prefix, id, prefix, id), fmt.Sprintf("Intake User %d", id), now, now}, nil
	})
	if err != nil {
		return nil, err
	}
	err = copyRows(ctx, pool, "api_keys", []string{"user_id", "name", "key_hash", "prefix", "created_at"}, n, func(i int) ([]any, error) {
		sum := sha256.Sum256([]byte(users[i].Key))
		return []any{users[i].ID, "trialsbench", sum[:], users[i].Key[:11], now}, nil
	})
	if err != nil {
		return nil, err
	}
	return users, resetSequences(ctx, pool)
}
