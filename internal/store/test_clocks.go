package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// testClockOf maps a test_clocks row to the domain's clock.
func testClockOf(c dbsqlc.TestClock) domain.TestClock {
	return domain.TestClock{ID: c.ID, Name: c.Name, FrozenTime: c.FrozenTime, Status: domain.TestClockStatus(c.Status),
		Target: c.TargetTime, StepJobIDs: c.StepJobIds, CreatedAt: c.CreatedAt, DeletesAfter: c.DeletesAfter}
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
	row, err := q.gen.InsertTestClock(ctx, dbsqlc.InsertTestClockParams{
		Name: c.Name, FrozenTime: c.FrozenTime, CreatedAt: c.CreatedAt, DeletesAfter: c.DeletesAfter})
	if err != nil {
		return domain.TestClock{}, fmt.Errorf("inserting test clock: %w", err)
	}
	return testClockOf(row), nil
}

// TestClockByID returns the test clock with id.
func (q *Queries) TestClockByID(ctx context.Context, id int64) (domain.TestClock, error) {
	return mapRow(testClockOf)(q.gen.TestClockByID(ctx, id))
}

// TestClockByIDForUpdate returns the test clock with id and locks it: an
// advance's step, an advance's start and a clock's deletion serialise on it.
// It comes before the clock's trials in the lock order.
func (q *Queries) TestClockByIDForUpdate(ctx context.Context, id int64) (domain.TestClock, error) {
	return mapRow(testClockOf)(q.gen.TestClockByIDForUpdate(ctx, id))
}

// TestClockOfStepJobForUpdate returns the test clock whose current step
// holds job id, and locks it.
func (q *Queries) TestClockOfStepJobForUpdate(ctx context.Context, id int64) (domain.TestClock, error) {
	return mapRow(testClockOf)(q.gen.TestClockOfStepJobForUpdate(ctx, id))
}

// TestClocks returns up to limit test clocks, newest first.
func (q *Queries) TestClocks(ctx context.Context, limit int) ([]domain.TestClock, error) {
	rows, err := q.gen.TestClocks(ctx, int32(limit))
	return mapRows(rows, err, "listing test clocks", testClockOf)
}

// SetTestClock writes a clock's time, status, target and current step.
func (q *Queries) SetTestClock(ctx context.Context, c domain.TestClock) error {
	err := q.gen.SetTestClock(ctx, dbsqlc.SetTestClockParams{
		ID: c.ID, FrozenTime: c.FrozenTime, Status: string(c.Status), TargetTime: c.Target, StepJobIds: c.StepJobIDs})
	if err != nil {
		return fmt.Errorf("updating test clock %d: %w", c.ID, err)
	}
	return nil
}

// CountTrialsOnClock counts the trials on a test clock.
func (q *Queries) CountTrialsOnClock(ctx context.Context, clockID int64) (int, error) {
	n, err := q.gen.CountTrialsOnClock(ctx, clockID)
	if err != nil {
		return 0, fmt.Errorf("counting trials of test clock %d: %w", clockID, err)
	}
	return int(n), nil
}

// LockTrialsOfClock locks the trials of a test clock in id order, as the
// lock order asks before their jobs are touched.
func (q *Queries) LockTrialsOfClock(ctx context.Context, clockID int64) error {
	if err := q.gen.LockTrialsOfClock(ctx, clockID); err != nil {
		return fmt.Errorf("locking trials of test clock %d: %w", clockID, err)
	}
	return nil
}

// TestClockJobIDs returns the River jobs the trials of a test clock have
// recorded: each trial's transition and reminders, and its organization's
// purge.
func (q *Queries) TestClockJobIDs(ctx context.Context, clockID int64) ([]int64, error) {
	ids, err := q.gen.TestClockJobIDs(ctx, clockID)
	if err != nil {
		return nil, fmt.Errorf("listing jobs of test clock %d: %w", clockID, err)
	}
	return ids, nil
}

// DeleteTestClock deletes a test clock with its trials, their organizations
// (and so their projects and memberships) and their histories. The caller
// has locked the trials (LockTrialsOfClock) and cancelled their jobs.
func (q *Queries) DeleteTestClock(ctx context.Context, clockID int64) error {
	if err := q.gen.DeleteTrialsOfClock(ctx, clockID); err != nil {
		return fmt.Errorf("deleting trials of test clock %d: %w", clockID, err)
	}
	if err := q.gen.DeleteTestClock(ctx, clockID); err != nil {
		return fmt.Errorf("deleting test clock %d: %w", clockID, err)
	}
	return nil
}

// ExpiredTestClocks returns the ids of up to limit test clocks whose
// retention ended by now (real time).
func (q *Queries) ExpiredTestClocks(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	ids, err := q.gen.ExpiredTestClocks(ctx, dbsqlc.ExpiredTestClocksParams{Now: now, MaxClocks: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("finding expired test clocks: %w", err)
	}
	return ids, nil
}
