package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
)

const testClockColumns = `id, name, frozen_time, status, target_time, step_job_ids, created_at, deletes_after`

func scanTestClock(row pgx.Row) (domain.TestClock, error) {
	var c domain.TestClock
	err := row.Scan(&c.ID, &c.Name, &c.FrozenTime, &c.Status, &c.Target, &c.StepJobIDs, &c.CreatedAt, &c.DeletesAfter)
	return c, notFound(err)
}

// NewTestClock is what a test clock is created with.
type NewTestClock struct {
	Name       string
	FrozenTime time.Time
	// CreatedAt and DeletesAfter are real time.
	CreatedAt, DeletesAfter time.Time
}

// InsertTestClock creates a ready test clock.
func (q *Queries) InsertTestClock(ctx context.Context, c NewTestClock) (domain.TestClock, error) {
	clk, err := scanTestClock(q.db.QueryRow(ctx, `
		INSERT INTO test_clocks (name, frozen_time, created_at, deletes_after)
		VALUES ($1, $2, $3, $4) RETURNING `+testClockColumns, c.Name, c.FrozenTime, c.CreatedAt, c.DeletesAfter))
	if err != nil {
		return domain.TestClock{}, fmt.Errorf("inserting test clock: %w", err)
	}
	return clk, nil
}

// TestClockByID returns the test clock with id.
func (q *Queries) TestClockByID(ctx context.Context, id int64) (domain.TestClock, error) {
	return scanTestClock(q.db.QueryRow(ctx, `SELECT `+testClockColumns+` FROM test_clocks WHERE id = $1`, id))
}

// TestClockByIDForUpdate returns the test clock with id and locks it: an
// advance's step, an advance's start and a clock's deletion serialise on it.
// It comes before the clock's trials in the lock order.
func (q *Queries) TestClockByIDForUpdate(ctx context.Context, id int64) (domain.TestClock, error) {
	return scanTestClock(q.db.QueryRow(ctx, `SELECT `+testClockColumns+` FROM test_clocks WHERE id = $1 FOR UPDATE`, id))
}

// TestClockOfStepJobForUpdate returns the test clock whose current step
// holds job id, and locks it.
func (q *Queries) TestClockOfStepJobForUpdate(ctx context.Context, id int64) (domain.TestClock, error) {
	return scanTestClock(q.db.QueryRow(ctx, `SELECT `+testClockColumns+` FROM test_clocks WHERE step_job_ids @> ARRAY[$1::bigint] FOR UPDATE`, id))
}

// TestClocks returns up to limit test clocks, newest first.
func (q *Queries) TestClocks(ctx context.Context, limit int) ([]domain.TestClock, error) {
	rows, err := q.db.Query(ctx, `SELECT `+testClockColumns+` FROM test_clocks ORDER BY id DESC LIMIT $1`, limit)
	return collect(rows, err, "listing test clocks", func(row pgx.CollectableRow) (domain.TestClock, error) { return scanTestClock(row) })
}

// SetTestClock writes a clock's time, status, target and current step.
func (q *Queries) SetTestClock(ctx context.Context, c domain.TestClock) error {
	_, err := q.db.Exec(ctx, `
		UPDATE test_clocks SET frozen_time = $2, status = $3, target_time = $4, step_job_ids = coalesce($5::bigint[], '{}')
		WHERE id = $1`, c.ID, c.FrozenTime, c.Status, c.Target, c.StepJobIDs)
	if err != nil {
		return fmt.Errorf("updating test clock %d: %w", c.ID, err)
	}
	return nil
}

// CountTrialsOnClock counts the trials on a test clock.
func (q *Queries) CountTrialsOnClock(ctx context.Context, clockID int64) (int, error) {
	var n int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM trials WHERE test_clock_id = $1`, clockID).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting trials of test clock %d: %w", clockID, err)
	}
	return n, nil
}

// LockTrialsOfClock locks the trials of a test clock in id order, as the
// lock order asks before their jobs are touched.
func (q *Queries) LockTrialsOfClock(ctx context.Context, clockID int64) error {
	if _, err := q.db.Exec(ctx, `SELECT id FROM trials WHERE test_clock_id = $1 ORDER BY id FOR UPDATE`, clockID); err != nil {
		return fmt.Errorf("locking trials of test clock %d: %w", clockID, err)
	}
	return nil
}

// TestClockJobIDs returns the River jobs the trials of a test clock have
// recorded: each trial's transition and reminders, and its organization's
// purge.
func (q *Queries) TestClockJobIDs(ctx context.Context, clockID int64) ([]int64, error) {
	rows, err := q.db.Query(ctx, `
		SELECT id FROM (
			SELECT t.transition_job_id AS id FROM trials t WHERE t.test_clock_id = $1
			UNION ALL
			SELECT unnest(t.reminder_job_ids) FROM trials t WHERE t.test_clock_id = $1
			UNION ALL
			SELECT o.purge_job_id FROM trials t JOIN organizations o ON o.id = t.organization_id
			WHERE t.test_clock_id = $1
		) jobs WHERE id IS NOT NULL ORDER BY id`, clockID)
	return collect(rows, err, "listing jobs of test clock", pgx.RowTo[int64])
}

// DeleteTestClock deletes a test clock with its trials, their organizations
// (and so their projects and memberships) and their histories. The caller
// has locked the trials (LockTrialsOfClock) and cancelled their jobs.
func (q *Queries) DeleteTestClock(ctx context.Context, clockID int64) error {
	_, err := q.db.Exec(ctx, `
		WITH gone AS (
			SELECT id, organization_id FROM trials WHERE test_clock_id = $1 ORDER BY id FOR UPDATE
		), events AS (
			DELETE FROM trial_events WHERE trial_id IN (SELECT id FROM gone)
		)
		DELETE FROM organizations WHERE id IN (SELECT organization_id FROM gone)`, clockID)
	if err != nil {
		return fmt.Errorf("deleting trials of test clock %d: %w", clockID, err)
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM test_clocks WHERE id = $1`, clockID); err != nil {
		return fmt.Errorf("deleting test clock %d: %w", clockID, err)
	}
	return nil
}

// ExpiredTestClocks returns the ids of up to limit test clocks whose
// retention ended by now (real time).
func (q *Queries) ExpiredTestClocks(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	rows, err := q.db.Query(ctx, `SELECT id FROM test_clocks WHERE deletes_after <= $1 ORDER BY id LIMIT $2`, now, limit)
	return collect(rows, err, "finding expired test clocks", pgx.RowTo[int64])
}
