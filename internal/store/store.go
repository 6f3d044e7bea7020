// Package store holds every SQL statement trialsd runs, one file per table,
// beside the migration that made the table. It knows rows, not rules: the
// lifecycle package decides what to write and in which transaction.
//
// # Lock order
//
// Every transaction that locks more than one row takes its locks in this
// order, so no two of them wait on each other in a cycle:
//
//  1. a user, when the transaction works on one user's account (starting a
//     trial locks its user before creating anything);
//  2. a test clock: an advance's step, a clock's deletion and a trial
//     created on the clock lock it; a transition of one of its trials only
//     reads it, after locking the trial;
//  3. a trial start's eligibility (LockEligibility, an advisory lock on its
//     company domain, or on its address when the domain has no limits): a
//     trial start takes it after its user and its test clock, before
//     counting the domain's trials and creating its own;
//  4. trials, in id order: a transition's own trial first, then the ones an
//     expiry batch claims (SKIP LOCKED, so the claim never waits);
//  5. the organizations of those trials, in id order; an operation on a
//     whole organization locks its trials first (LockOrganization), even
//     when it starts from the organization;
//  6. everything else the transaction writes: projects, memberships,
//     enterprises, idempotency records, events, the outbox and River's
//     jobs (through River's API), each only under the lock of the trial or
//     organization it belongs to.
//
// A webhook delivery's transaction, which locks no trial, writes the outbox
// message first and its webhook endpoint after, FOR NO KEY UPDATE, which
// leaves alone the key-share locks of the rows referring to the endpoint;
// an admin's change of an endpoint locks only the endpoint.
//
// The counters that triggers keep (trials by state, and by due date for the
// look-ahead gauges) are outside the order: each backend writes a shard of
// its own (migrations 00004 and 00014), so no transaction waits on
// another's. A lock that breaks the order anyway ends in a deadlock,
// which Postgres resolves by aborting one transaction; InTx runs that one
// again.
//
// # Where the SQL is
//
// Every table's statements are in queries/*.sql; sqlc checks them against
// the migrations and generates internal/dbsqlc from them (make generate),
// and the methods here wrap the generated code and map its rows to the
// domain's types. Query hands the same statements to what runs them
// outside Go (the bench's pgbench script). Three stay by hand: the
// console's search (trial_search.go) builds its WHERE clause from the
// filters given, which sqlc cannot type; river_jobs.go reads River's own
// table, whose schema River's migrations own; and the look-ahead counters
// (trial_due_counts.go) build their sums per horizon asked for, over the
// migration's SQL functions.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// ErrNotFound is returned when a row asked for by key does not exist.
var ErrNotFound = errors.New("not found")

// DBTX is what the queries run on: the pool or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Queries runs the statements of every table on one DBTX: those of
// queries/*.sql through gen, the code sqlc generates from them, the rest
// as written in their files (package doc).
type Queries struct {
	db  DBTX
	gen *dbsqlc.Queries
}

// New returns the queries bound to db.
func New(db DBTX) *Queries { return &Queries{db: db, gen: dbsqlc.New(db)} }

// maxTxAttempts bounds how many times InTx runs a transaction that keeps
// failing with a serialization failure or a deadlock.
const maxTxAttempts = 4

// txRetryBase is the upper bound of the jittered pause before the second
// attempt; it doubles with each attempt after.
const txRetryBase = 10 * time.Millisecond

// InTx runs fn in a transaction on pool, committing when fn returns nil and
// rolling back otherwise, so a failed request writes nothing.
//
// The transaction is READ COMMITTED whatever the server's
// default_transaction_isolation says: the locks of the lock order are taken
// so that each statement after them sees what the lock's previous holder
// committed (the eligibility counts after their advisory lock, a claim
// after its row locks), which a REPEATABLE READ snapshot, taken at the
// first statement, would not.
//
// A transaction that Postgres aborted with a serialization failure (40001)
// or a deadlock (40P01) is run again, from the start, up to maxTxAttempts
// times in all, after a jittered pause. The lock order (package doc) keeps
// deadlocks out; this is the second line of defence. So fn may run more
// than once: it must set what it returns afresh on each run and act on
// nothing outside tx. Nothing in trialsd calls out of a transaction — what
// must reach the world (webhooks, e-mails) is written to the outbox in tx
// and sent after commit — and a transaction that had to must not use InTx.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := runTx(ctx, pool, fn)
		code := retryableCode(err)
		if code == "" {
			return err
		}
		aborted.count(code)
		if attempt == maxTxAttempts {
			return err
		}
		pause := rand.N(txRetryBase << (attempt - 1))
		slog.WarnContext(ctx, "transaction aborted by Postgres, retrying", "sqlstate", code,
			"attempt", attempt, "max_attempts", maxTxAttempts, "pause", pause.String(), "error", err)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return err
		}
	}
}

// Aborts counts the transactions of InTx that Postgres aborted with a
// deadlock or a serialization failure since the process started, retried
// or not: with the lock order kept, both stay at zero, so any rise is worth
// a look (trialsd_transaction_aborts_total).
type Aborts struct {
	Deadlocks, SerializationFailures int64
}

// aborted is the process's Aborts.
var aborted abortCounter

type abortCounter struct{ deadlocks, serialization atomic.Int64 }

func (c *abortCounter) count(code string) {
	if code == "40P01" {
		c.deadlocks.Add(1)
	} else {
		c.serialization.Add(1)
	}
}

// AbortsSoFar returns the process's Aborts.
func AbortsSoFar() Aborts {
	return Aborts{Deadlocks: aborted.deadlocks.Load(), SerializationFailures: aborted.serialization.Load()}
}

// runTx is one attempt of InTx.
func runTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// retryableCode returns the SQLSTATE of err when running its transaction
// again may succeed (a serialization failure or a deadlock), else "".
func retryableCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
		return pgErr.Code
	}
	return ""
}

// UniqueViolation returns the name of the unique index err violated, or "".
func UniqueViolation(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName
	}
	return ""
}

// ForeignKeyViolation returns the name of the foreign key err violated, or
// "".
func ForeignKeyViolation(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return pgErr.ConstraintName
	}
	return ""
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// collect reads every row of a query into a slice with pgx's row function,
// wrapping a failure of the query (err) or of a row with what was being
// done.
func collect[T any](rows pgx.Rows, err error, doing string, fn pgx.RowToFunc[T]) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	out, err := pgx.CollectRows(rows, fn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	return out, nil
}

// mapRows is collect for a generated read: its rows mapped with to, a
// failure wrapped with what was being done.
func mapRows[R, T any](rows []R, err error, doing string, to func(R) T) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = to(r)
	}
	return out, nil
}

// mapRow maps a generated single-row read with to, no row being
// ErrNotFound: mapRow(to)(q.gen.Read(ctx, id)).
func mapRow[R, T any](to func(R) T) func(R, error) (T, error) {
	return func(r R, err error) (T, error) {
		if err != nil {
			var zero T
			return zero, notFound(err)
		}
		return to(r), nil
	}
}
