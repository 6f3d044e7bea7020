package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/trialsd/trialsd/internal/jobargs"
)

// The harness writes trialsd's own rows with COPY but leaves every River job
// row to River: its args encoding, unique key and unique states are River's
// business and change with River releases, and a copy of them here would go
// on writing the old ones after an upgrade without anyone noticing. River's
// fast insert path is a COPY too, so the load stays as quick.

// jobBatch is how many jobs go to River per InsertManyFastTx: big enough
// that per-call overhead vanishes, small enough that 10M trials do not hold
// all their job params in memory at once.
const jobBatch = 50_000

// newInserter is an insert-only River client shaped like the daemon's where
// it matters for the rows it writes: the same max_attempts. The daemon's
// other settings (queues, workers, timeouts) do not reach a job row.
func newInserter(pool *pgxpool.Pool, maxAttempts int) (*river.Client[pgx.Tx], error) {
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{MaxAttempts: maxAttempts})
	if err != nil {
		return nil, fmt.Errorf("creating insert-only River client: %w", err)
	}
	return client, nil
}

// insertJobs has River insert n jobs, job(i) for i in [0, n), in tx, in
// batches, the way InsertManyFastTx writes them.
func insertJobs(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], n int, job func(i int) river.InsertManyParams) error {
	params := make([]river.InsertManyParams, 0, min(n, jobBatch))
	for from := 0; from < n; from += jobBatch {
		params = params[:0]
		for i := from; i < min(n, from+jobBatch); i++ {
			params = append(params, job(i))
		}
		got, err := client.InsertManyFastTx(ctx, tx, params)
		if err != nil {
			return fmt.Errorf("inserting jobs %d..%d through River: %w", from, from+len(params)-1, err)
		}
		if got != len(params) {
			return fmt.Errorf("River inserted %d of jobs %d..%d", got, from, from+len(params)-1)
		}
	}
	return nil
}

// expireJob is the Expire job StartTrial enqueues for a new trial: its first
// schedule generation, due at the expiration date.
func expireJob(trialID int64, at time.Time) river.InsertManyParams {
	return river.InsertManyParams{
		Args:       jobargs.ExpireTrial{V: jobargs.Version, TrialID: trialID, Generation: 1},
		InsertOpts: &river.InsertOpts{ScheduledAt: at},
	}
}

// expireJobIDs reads back the ids River gave the Expire jobs of trials
// [firstTrial, firstTrial+n), inserted after job afterJob, indexed by trial:
// the fast insert returns no rows, and the trials must point at their jobs.
func expireJobIDs(ctx context.Context, tx pgx.Tx, afterJob, firstTrial int64, n int) ([]int64, error) {
	ids := make([]int64, n)
	rows, err := tx.Query(ctx, `SELECT id, args FROM river_job WHERE id > $1 AND kind = $2`, afterJob, jobargs.KindExpireTrial)
	if err != nil {
		return nil, fmt.Errorf("reading back loaded job ids: %w", err)
	}
	var id int64
	var raw []byte
	seen := 0
	_, err = pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
		var args jobargs.ExpireTrial
		if err := json.Unmarshal(raw, &args); err != nil {
			return fmt.Errorf("decoding args of job %d: %w", id, err)
		}
		i := args.TrialID - firstTrial
		if i < 0 || i >= int64(n) || ids[i] != 0 {
			return fmt.Errorf("job %d expires trial %d, not one of the load's", id, args.TrialID)
		}
		ids[i] = id
		seen++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading back loaded job ids: %w", err)
	}
	if seen != n {
		return nil, fmt.Errorf("found %d loaded Expire jobs, want %d", seen, n)
	}
	return ids, nil
}
