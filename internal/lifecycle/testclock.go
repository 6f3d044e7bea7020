package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/store"
)

// A test clock is simulated time for the trials created on it. Its trials'
// jobs are the real ones, inserted pending (River never runs a pending job
// by time) on the test-clock queue; an advance steps the clock from due
// date to due date, making the jobs due at each step available (River's
// JobRetryTx) and waiting for them to finish before it steps on, so every
// transition lands exactly at its simulated due time and schedules the
// next, which a later step finds. The advance waits holding no worker: each
// step is one run of a job, and the step's last job wakes the next.

// errTestClocksOff is the answer to every test-clock request of a daemon
// that does not serve them.
var errTestClocksOff = apperr.Errorf(apperr.NotFound, "Test clocks are not enabled on this server (test_clocks.enabled)")

// clockID is the change's test clock, nil for real time.
func (c *change) clockID() *int64 {
	if c.clock == nil {
		return nil
	}
	return &c.clock.ID
}

// onTestClock puts a trial the change creates on the test clock with id
// (nil: real time). Only an admin may, on a clock that is ready and has
// room. The clock is locked (after the trial's user, before any trial) so
// that two creations cannot both take its last place.
func (c *change) onTestClock(ctx context.Context, id *int64) error {
	if id == nil {
		return nil
	}
	switch {
	case !c.s.clocks.Enabled:
		return errTestClocksOff
	case !c.actor.Admin:
		return apperr.Errorf(apperr.Forbidden, "Only admins can create trials on a test clock")
	}
	clk, err := c.q.TestClockByIDForUpdate(ctx, *id)
	if err != nil {
		return notFoundAs(err, "Test clock %d not found", *id)
	}
	if clk.Status != domain.ClockReady {
		return apperr.Errorf(apperr.Conflict, "Test clock %d is advancing; add trials once it is ready", *id)
	}
	n, err := c.q.CountTrialsOnClock(ctx, *id)
	if err != nil {
		return err
	}
	if n >= c.s.clocks.MaxTrials {
		return apperr.Errorf(apperr.Conflict, "Test clock %d holds %d trials, the most it may (test_clocks.max_trials)", *id, n)
	}
	c.useClock(clk)
	return nil
}

// NewTestClock asks for a test clock.
type NewTestClock struct {
	Name       string
	FrozenTime time.Time
}

// CreateTestClock creates a ready test clock standing at FrozenTime; it is
// deleted with its trials test_clocks.retention (real time) later.
func (s *Service) CreateTestClock(ctx context.Context, req NewTestClock) (domain.TestClock, error) {
	if !s.clocks.Enabled {
		return domain.TestClock{}, errTestClocksOff
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 255 {
		return domain.TestClock{}, apperr.InvalidField("name", "name must be 1 to 255 characters")
	}
	if req.FrozenTime.IsZero() {
		return domain.TestClock{}, apperr.InvalidField("frozenTime", "frozenTime is required")
	}
	if err := domain.CheckDate("frozenTime", req.FrozenTime); err != nil {
		return domain.TestClock{}, err
	}
	now := s.now()
	return store.New(s.pool).InsertTestClock(ctx, store.NewTestClock{
		Name: name, FrozenTime: domain.Instant(req.FrozenTime),
		CreatedAt: now, DeletesAfter: now.Add(s.clocks.Retention),
	})
}

// TestClock returns the test clock with id.
func (s *Service) TestClock(ctx context.Context, id int64) (domain.TestClock, error) {
	if !s.clocks.Enabled {
		return domain.TestClock{}, errTestClocksOff
	}
	clk, err := store.New(s.pool).TestClockByID(ctx, id)
	return clk, notFoundAs(err, "Test clock %d not found", id)
}

// NowOf is trial t's now, as its operations see it: its test clock's time
// for a clock's trial (whatever the server's test_clocks setting, since
// the trial exists), the daemon's clock otherwise. Shown beside the
// trial's dates, it keeps "in 3d" true in simulated time.
func (s *Service) NowOf(ctx context.Context, t domain.Trial) (time.Time, error) {
	if t.TestClockID == nil {
		return s.now(), nil
	}
	clk, err := store.New(s.pool).TestClockByID(ctx, *t.TestClockID)
	if err != nil {
		return time.Time{}, notFoundAs(err, "Test clock %d not found", *t.TestClockID)
	}
	return domain.Instant(clk.FrozenTime), nil
}

// maxListedClocks bounds a listing of test clocks.
const maxListedClocks = 1000

// TestClocks returns the test clocks, newest first.
func (s *Service) TestClocks(ctx context.Context) ([]domain.TestClock, error) {
	if !s.clocks.Enabled {
		return nil, errTestClocksOff
	}
	return store.New(s.pool).TestClocks(ctx, maxListedClocks)
}

// AdvanceTestClock starts moving a ready clock to target: it answers at
// once with the clock advancing, and a River job (AdvanceTestClock) does
// the stepping, so an advance survives a restart of the daemon.
func (s *Service) AdvanceTestClock(ctx context.Context, id int64, target time.Time) (domain.TestClock, error) {
	if !s.clocks.Enabled {
		return domain.TestClock{}, errTestClocksOff
	}
	target = domain.Instant(target)
	var clk domain.TestClock
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		var err error
		if clk, err = q.TestClockByIDForUpdate(ctx, id); err != nil {
			return notFoundAs(err, "Test clock %d not found", id)
		}
		if err := s.checkAdvance(clk, target); err != nil {
			return err
		}
		clk.Status, clk.Target, clk.StepJobIDs = domain.ClockAdvancing, &target, nil
		if err := q.SetTestClock(ctx, clk); err != nil {
			return err
		}
		if err := s.webhooks.EnqueueClockEvent(ctx, tx, domain.EventClockAdvancing, clk, s.now()); err != nil {
			return err
		}
		_, err = s.jobs.InsertTx(ctx, tx, jobargs.AdvanceTestClock{V: jobargs.Version, ClockID: id, Target: target}, nil)
		return err
	})
	if err != nil {
		return domain.TestClock{}, err
	}
	s.logger.InfoContext(ctx, "test clock advancing", "test_clock_id", id, "from", clk.FrozenTime, "to", target)
	return clk, nil
}

// checkAdvance refuses an advance of clk to target that cannot start.
func (s *Service) checkAdvance(clk domain.TestClock, target time.Time) error {
	switch {
	case clk.Status != domain.ClockReady:
		return apperr.Errorf(apperr.Conflict, "Test clock %d is already advancing", clk.ID)
	case !target.After(clk.FrozenTime):
		return apperr.InvalidField("frozenTime", "frozenTime must be after the clock's current time")
	case target.Sub(clk.FrozenTime) > s.clocks.MaxAdvance:
		return apperr.InvalidField("frozenTime", "a clock advances at most %s at a time (test_clocks.max_advance)", s.clocks.MaxAdvance)
	}
	return domain.CheckDate("frozenTime", target)
}

// stepOutcome is what one step of an advance did.
type stepOutcome int

const (
	// stepped: the clock moved to the next due time and made its jobs runnable.
	stepped stepOutcome = iota
	// waiting: the last step's jobs have not all finished.
	waiting
	// arrived: the clock stands at the target, ready (or the advance is gone:
	// the clock was deleted, or this job is stale).
	arrived
)

// AdvanceRecheck is how long a step's job waits, at most, before it looks
// whether the step's jobs are done: the step's last job wakes it at once
// (StepJobDone), and only a job that never finishes (discarded, or of a
// trial changed meanwhile) leaves the step to this.
const AdvanceRecheck = 5 * time.Second

// ErrAdvanceWaits says the advance waits for its step's jobs: the job runs
// again when they are done, or AdvanceRecheck later.
var ErrAdvanceWaits = errors.New("test clock advance waits for its step's jobs")

// RunAdvance is one run of an AdvanceTestClock job: it takes the advance's
// next step and returns, holding no worker while the step's jobs run. The
// step inserts the job that takes the step after it; the step's last job
// makes that job run (StepJobDone). A job that finds the step it waits for
// still running returns ErrAdvanceWaits; one whose step is past has
// nothing left to do.
func (s *Service) RunAdvance(ctx context.Context, a jobargs.AdvanceTestClock) error {
	out, err := s.step(ctx, a)
	if err == nil && out == waiting {
		return ErrAdvanceWaits
	}
	return err
}

// step takes the next step of an advance, under the clock's lock: it waits
// while the last step's jobs run, then moves the clock to the earliest due
// time of its pending jobs (at most target) and makes the jobs due then
// runnable, or, with none left on the way, to target, ready. A job waiting
// for a step other than the clock's is stale: arrived.
func (s *Service) step(ctx context.Context, a jobargs.AdvanceTestClock) (stepOutcome, error) {
	out := arrived
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		clk, err := q.TestClockByIDForUpdate(ctx, a.ClockID)
		if errors.Is(err, store.ErrNotFound) {
			out = arrived // deleted meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		if clk.Status != domain.ClockAdvancing || !clk.Target.Equal(a.Target) {
			out = arrived // a stale job: that advance is over
			return nil
		}
		if busy, err := s.jobsLive(ctx, tx, clk.StepJobIDs); err != nil || busy {
			out = waiting
			if !a.Step.IsZero() && !a.Step.Equal(clk.FrozenTime) {
				out = arrived // another step's job: that step is over
			}
			return err
		}
		out, err = s.stepTo(ctx, tx, clk, a)
		return err
	})
	return out, err
}

// jobsLive tells whether any of the jobs has yet to finish.
func (s *Service) jobsLive(ctx context.Context, tx pgx.Tx, ids []int64) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	res, err := s.jobs.JobListTx(ctx, tx, river.NewJobListParams().IDs(ids...).States(store.LiveJobStates...).First(len(ids)))
	if err != nil {
		return false, fmt.Errorf("listing the test clock's running jobs: %w", err)
	}
	return len(res.Jobs) > 0, nil
}

// stepTo moves clk to its next due time on the way to its target, and
// inserts the job that takes the step after, due AdvanceRecheck later. A
// step at the instant the clock stands at (a job the last step's jobs
// scheduled for their own time, such as the notice of an expiry) is taken
// again by the running job a, which waits for it: a is that job already.
func (s *Service) stepTo(ctx context.Context, tx pgx.Tx, clk domain.TestClock, a jobargs.AdvanceTestClock) (stepOutcome, error) {
	q := store.New(tx)
	due, err := s.nextDue(ctx, tx, clk)
	if err != nil {
		return 0, err
	}
	if len(due) == 0 {
		clk.FrozenTime, clk.Status, clk.Target, clk.StepJobIDs = *clk.Target, domain.ClockReady, nil, nil
		if err := q.SetTestClock(ctx, clk); err != nil {
			return 0, err
		}
		if err := s.webhooks.EnqueueClockEvent(ctx, tx, domain.EventClockReady, clk, s.now()); err != nil {
			return 0, err
		}
		s.logger.InfoContext(ctx, "test clock ready", "test_clock_id", clk.ID, "frozen_time", clk.FrozenTime)
		return arrived, nil
	}
	clk.FrozenTime = due[0].ScheduledAt.UTC()
	if err := s.runStepJobs(ctx, tx, &clk, due); err != nil {
		return 0, err
	}
	next := nextStep(clk)
	if next == a {
		return waiting, q.SetTestClock(ctx, clk)
	}
	if _, err := s.jobs.InsertTx(ctx, tx, next, &river.InsertOpts{ScheduledAt: s.now().Add(AdvanceRecheck)}); err != nil {
		return 0, fmt.Errorf("enqueueing the next step of test clock %d: %w", clk.ID, err)
	}
	return stepped, q.SetTestClock(ctx, clk)
}

// runSameInstant makes the clock's pending jobs due at the instant it
// stands at runnable, as the step's jobs: jobs the step's jobs scheduled
// for their own time (an expiry's notice, due as it expires). It says
// whether there were any; the step then ends when they do.
func (s *Service) runSameInstant(ctx context.Context, tx pgx.Tx, clk *domain.TestClock) (bool, error) {
	due, err := s.nextDue(ctx, tx, *clk)
	if err != nil || len(due) == 0 || !due[0].ScheduledAt.Equal(clk.FrozenTime) {
		return false, err
	}
	if err := s.runStepJobs(ctx, tx, clk, due); err != nil {
		return false, err
	}
	return true, store.New(tx).SetTestClock(ctx, *clk)
}

// runStepJobs makes the jobs runnable as clk's step's jobs, whose last
// one to finish wakes the advance (StepJobDone).
func (s *Service) runStepJobs(ctx context.Context, tx pgx.Tx, clk *domain.TestClock, jobs []*rivertype.JobRow) error {
	clk.StepJobIDs = nil
	for _, j := range jobs {
		if _, err := s.jobs.JobRetryTx(ctx, tx, j.ID); err != nil {
			return fmt.Errorf("making job %d of test clock %d runnable: %w", j.ID, clk.ID, err)
		}
		clk.StepJobIDs = append(clk.StepJobIDs, j.ID)
	}
	return nil
}

// nextStep is the job that takes the step after the one clk stands at.
func nextStep(clk domain.TestClock) jobargs.AdvanceTestClock {
	return jobargs.AdvanceTestClock{V: jobargs.Version, ClockID: clk.ID, Target: *clk.Target, Step: clk.FrozenTime}
}

// StepJobDone is told by a job of a test clock's trial that it is done: it
// leaves its clock's step, and the step's last job makes the job that takes
// the next step run at once, instead of AdvanceRecheck after the step. A
// job that is not in a step does nothing. Each job leaves the step itself,
// under the clock's lock, so of two jobs ending at once the second sees the
// first gone, though River has yet to record it completed.
func (s *Service) StepJobDone(ctx context.Context, jobID int64) error {
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		clk, err := q.TestClockOfStepJobForUpdate(ctx, jobID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		clk.StepJobIDs = slices.DeleteFunc(clk.StepJobIDs, func(id int64) bool { return id == jobID })
		if err := q.SetTestClock(ctx, clk); err != nil {
			return err
		}
		if busy, err := s.jobsLive(ctx, tx, clk.StepJobIDs); err != nil || busy {
			return err
		}
		if more, err := s.runSameInstant(ctx, tx, &clk); err != nil || more {
			return err
		}
		res, err := s.jobs.InsertTx(ctx, tx, nextStep(clk), nil)
		if err != nil {
			return fmt.Errorf("waking the next step of test clock %d: %w", clk.ID, err)
		}
		if res.UniqueSkippedAsDuplicate {
			if _, err := s.jobs.JobRetryTx(ctx, tx, res.Job.ID); err != nil {
				return fmt.Errorf("waking the next step of test clock %d: %w", clk.ID, err)
			}
		}
		return nil
	})
}

// nextDue returns the clock's pending jobs due at the earliest time not
// after its target.
func (s *Service) nextDue(ctx context.Context, tx pgx.Tx, clk domain.TestClock) ([]*rivertype.JobRow, error) {
	ids, err := store.New(tx).TestClockJobIDs(ctx, clk.ID)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	res, err := s.jobs.JobListTx(ctx, tx, river.NewJobListParams().IDs(ids...).
		States(rivertype.JobStatePending).First(len(ids)))
	if err != nil {
		return nil, fmt.Errorf("listing the pending jobs of test clock %d: %w", clk.ID, err)
	}
	var due []*rivertype.JobRow
	for _, j := range res.Jobs {
		switch at := j.ScheduledAt; {
		case at.After(*clk.Target):
		case len(due) == 0 || at.Before(due[0].ScheduledAt):
			due = []*rivertype.JobRow{j}
		case at.Equal(due[0].ScheduledAt):
			due = append(due, j)
		}
	}
	return due, nil
}

// DeleteTestClock deletes a clock with its trials, their organizations,
// projects and memberships, their histories and their pending jobs, at
// once: no lifecycle events are recorded for them.
func (s *Service) DeleteTestClock(ctx context.Context, id int64) error {
	if !s.clocks.Enabled {
		return errTestClocksOff
	}
	return s.deleteTestClock(ctx, id)
}

func (s *Service) deleteTestClock(ctx context.Context, id int64) error {
	err := s.inChange(ctx, domain.System, domain.TestClockDeleteCause, func(c *change) error {
		clk, err := c.q.TestClockByIDForUpdate(ctx, id)
		if err != nil {
			return notFoundAs(err, "Test clock %d not found", id)
		}
		if err := c.s.webhooks.EnqueueClockEvent(ctx, c.tx, domain.EventClockDeleted, clk, c.s.now()); err != nil {
			return err
		}
		if err := c.q.LockTrialsOfClock(ctx, id); err != nil {
			return err
		}
		ids, err := c.q.TestClockJobIDs(ctx, id)
		if err != nil {
			return err
		}
		if err := c.cancelJobs(ctx, ids); err != nil {
			return err
		}
		return c.q.DeleteTestClock(ctx, id)
	})
	if err == nil {
		s.logger.InfoContext(ctx, "test clock deleted", "test_clock_id", id)
	}
	return err
}

// sweepTestClocks deletes the clocks whose retention has ended, with
// everything on them, and returns how many.
func (s *Service) sweepTestClocks(ctx context.Context) (int, error) {
	ids, err := store.New(s.pool).ExpiredTestClocks(ctx, s.now(), maxListedClocks)
	if err != nil {
		return 0, err
	}
	for i, id := range ids {
		if err := s.deleteTestClock(ctx, id); err != nil && apperr.CodeOf(err) != apperr.NotFound {
			return i, err
		}
	}
	return len(ids), nil
}
