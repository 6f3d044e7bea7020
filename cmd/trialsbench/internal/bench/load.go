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
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/wire"
)

// The rows below are what lifecycle.StartTrial writes when an admin starts a
// trial for another user (expiration date set, no reminder due before it),
// written with COPY instead of one transaction per trial: loading 100k trials
// takes seconds instead of minutes, and 10M becomes possible at all.
// TestLoadMatchesStartTrial keeps the two in step.
const (
	kindExpire     = "trial.expire"
	queueLifecycle = "lifecycle"
	// uniqueStatesDefault is River's default unique states (every state but
	// cancelled and discarded) as the bit(8) it stores.
	uniqueStatesDefault = 0xF5
	benchCause          = "request:trialsbench"
)

// trialLoad describes a batch of trials to load: N users, each with a trial
// organization they administer and an active trial expiring at evenly spaced
// instants over [From, From+Window), each with its scheduled Expire job.
type trialLoad struct {
	N       int
	From    time.Time
	Window  time.Duration
	AdminID int64
	// MaxAttempts is river.max_attempts of the daemon that will work the jobs.
	MaxAttempts int
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
	return at.UTC().Truncate(time.Millisecond)
}

// expireArgs is jobargs.ExpireTrial as River encodes it; uniqueKey is the
// key River derives from its unique fields (kind, generation, trial_id).
func expireArgs(trialID int64) []byte {
	return fmt.Appendf(nil, `{"v":1,"trial_id":%d,"generation":1}`, trialID)
}

func uniqueKey(kind string, trialID int64) []byte {
	sum := sha256.Sum256(fmt.Appendf(nil, `&kind=%s&args={"generation":1,"trial_id":%d}`, kind, trialID))
	return sum[:]
}

// loadTrials writes the rows of l with one COPY per table, in one
// transaction that holds off other writers (a running daemon's periodic
// jobs) so the explicit ids cannot collide, and moves the identity
// sequences past them.
func loadTrials(ctx context.Context, pool *pgxpool.Pool, l trialLoad) (_ loaded, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return loaded{}, fmt.Errorf("beginning load: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, `LOCK TABLE users, organizations, organization_members, trials, trial_events, river_job IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return loaded{}, fmt.Errorf("locking tables for load: %w", err)
	}
	// An insert that drew its id before the lock has not written it yet:
	// start past the sequences as well as past the rows.
	var base struct{ user, org, trial, job int64 }
	err = tx.QueryRow(ctx, `SELECT
		greatest((SELECT coalesce(max(id), 0) FROM users), (SELECT last_value FROM users_id_seq)),
		greatest((SELECT coalesce(max(id), 0) FROM organizations), (SELECT last_value FROM organizations_id_seq)),
		greatest((SELECT coalesce(max(id), 0) FROM trials), (SELECT last_value FROM trials_id_seq)),
		greatest((SELECT coalesce(max(id), 0) FROM river_job), (SELECT last_value FROM river_job_id_seq))`).
		Scan(&base.user, &base.org, &base.trial, &base.job)
	if err != nil {
		return loaded{}, fmt.Errorf("reading id bases: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	n := l.N
	userID := func(i int) int64 { return base.user + int64(i) + 1 }
	orgID := func(i int) int64 { return base.org + int64(i) + 1 }
	trialID := func(i int) int64 { return base.trial + int64(i) + 1 }
	jobID := func(i int) int64 { return base.job + int64(i) + 1 }
	name := func(i int) string { return fmt.Sprintf("Bench User %d", userID(i)) }
	actor := fmt.Sprintf("admin:%d", l.AdminID)

	tables := []struct {
		table   string
		columns []string
		row     func(i int) ([]any, error)
	}{
		{"users", []string{"id", "username", "email", "name", "created_at", "updated_at"}, func(i int) ([]any, error) {
			return []any{userID(i), fmt.Sprintf("bench%d", userID(i)), fmt.Sprintf("bench%d@example.com", userID(i)), name(i), now, now}, nil
		}},
		{"organizations", []string{"id", "name", "is_trial", "enterprise_features", "created_at"}, func(i int) ([]any, error) {
			return []any{orgID(i), name(i), true, true, now}, nil
		}},
		{"organization_members", []string{"organization_id", "user_id", "role", "created_at"}, func(i int) ([]any, error) {
			return []any{orgID(i), userID(i), "admin", now}, nil
		}},
		{"trials", []string{"id", "user_id", "organization_id", "self_service", "created_at", "expiration_date", "transition_job_id"}, func(i int) ([]any, error) {
			return []any{trialID(i), userID(i), orgID(i), false, now, l.expiration(i), jobID(i)}, nil
		}},
		{"trial_events", []string{"trial_id", "kind", "at", "actor", "cause", "data"}, func(i int) ([]any, error) {
			data, err := json.Marshal(map[string]any{"expirationDate": wire.Format(l.expiration(i)), "organizationId": orgID(i), "selfService": false})
			return []any{trialID(i), "trial.created", now, actor, benchCause, data}, err
		}},
		{"river_job", []string{"id", "state", "attempt", "max_attempts", "created_at", "scheduled_at", "priority", "args", "kind", "metadata", "queue", "tags", "unique_key", "unique_states"}, func(i int) ([]any, error) {
			at := l.expiration(i)
			state := "scheduled"
			if !at.After(time.Now()) {
				state = "available"
			}
			return []any{jobID(i), state, 0, l.MaxAttempts, now, at, 1, expireArgs(trialID(i)), kindExpire,
				[]byte("{}"), queueLifecycle, []string{}, uniqueKey(kindExpire, trialID(i)),
				pgtype.Bits{Bytes: []byte{uniqueStatesDefault}, Len: 8, Valid: true}}, nil
		}},
	}
	// Row triggers off for the load: the foreign keys hold by construction,
	// and the per-row trigger that keeps trial_state_counts makes a bulk
	// insert in one transaction quadratic (every row updates the same
	// counter row again, a chain no one can prune until commit: 100k trials
	// took a minute). Its effect is applied once, below.
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		return loaded{}, fmt.Errorf("disabling triggers for load: %w", err)
	}
	for _, t := range tables {
		if err := copyRows(ctx, tx, t.table, t.columns, n, t.row); err != nil {
			return loaded{}, err
		}
	}
	if err := countActive(ctx, tx, n); err != nil {
		return loaded{}, err
	}
	if err := resetSequences(ctx, tx); err != nil {
		return loaded{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return loaded{}, fmt.Errorf("committing load: %w", err)
	}
	// Trials created over days have statistics long before they fall due;
	// a bulk load has none until autovacuum comes by, and River's scheduler
	// planned without them takes ~27 s instead of ~0.4 s per 10k jobs.
	if _, err := pool.Exec(ctx, `ANALYZE users, organizations, organization_members, trials, trial_events, river_job`); err != nil {
		return loaded{}, fmt.Errorf("analyzing loaded tables: %w", err)
	}
	return loaded{FirstTrialID: trialID(0), LastTrialID: trialID(n - 1), FirstUserID: userID(0)}, nil
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
	now := time.Now().UTC().Truncate(time.Millisecond)
	users := make([]apiUser, n)
	for i := range users {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		users[i] = apiUser{ID: base + int64(i) + 1, Key: "ei_" + hex.EncodeToString(b)}
	}
	err := copyRows(ctx, pool, "users", []string{"id", "username", "email", "name", "created_at", "updated_at"}, n, func(i int) ([]any, error) {
		id := users[i].ID
		return []any{id, fmt.Sprintf("%s%d", prefix, id), fmt.Sprintf("%s%d@example.com", prefix, id), fmt.Sprintf("Intake User %d", id), now, now}, nil
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
