package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testdb"
)

// Two transactions that lock two rows in opposite orders deadlock; Postgres
// aborts one of them and InTx runs it again, so both succeed, and the one
// aborted ran twice.
func TestInTxRetriesADeadlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)
	var ids [2]int64
	for i := range ids {
		if err := pool.QueryRow(ctx, `INSERT INTO organizations (name, created_at) VALUES ('o', $1) RETURNING id`, time.Now()).Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	lock := func(tx pgx.Tx, id int64) error {
		_, err := tx.Exec(ctx, `SELECT FROM organizations WHERE id = $1 FOR UPDATE`, id)
		return err
	}
	// Both first attempts hold their first row before either asks for its
	// second: a deadlock by construction, not by timing.
	var firstLocks sync.WaitGroup
	firstLocks.Add(2)
	var runs atomic.Int32
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, order := range [][2]int64{{ids[0], ids[1]}, {ids[1], ids[0]}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			attempt := 0
			var arrived sync.Once // also when the first lock fails: the other must not wait for ever
			defer arrived.Do(firstLocks.Done)
			errs[i] = store.InTx(ctx, pool, func(tx pgx.Tx) error {
				attempt++
				runs.Add(1)
				err := lock(tx, order[0])
				if attempt == 1 {
					arrived.Do(firstLocks.Done)
					firstLocks.Wait()
				}
				if err != nil {
					return err
				}
				return lock(tx, order[1])
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("%d runs of the two transactions, want 3: one retried once", n)
	}
}

// A server (or a role) whose default isolation is stricter does not change
// InTx's: the lock order's waits rely on each statement seeing what the
// lock's previous holder committed.
func TestInTxIsReadCommittedWhateverTheDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := testdb.NewWithURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "repeatable read"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var level string
	err = store.InTx(ctx, pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SHOW transaction_isolation`).Scan(&level)
	})
	if err != nil {
		t.Fatal(err)
	}
	if level != "read committed" {
		t.Errorf("InTx ran at %q, want read committed", level)
	}
}
