package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
)

// step is one job-driven transition for the transition frame: the job's
// trial and generation, the state the transition leaves (from) and the one
// it leads to (to; "" when it leads to none), when it is due, and what
// applying it does, as a change by the system.
type step struct {
	trialID, generation int64
	from, to            domain.State
	cause               string
	due                 func(domain.Trial) time.Time
	apply               func(ctx context.Context, c *change, t *domain.Trial) error
}

// transition is the frame of every job-driven trial transition: lock the
// trial, skip unless it is in st.from with the job's generation, snooze
// unless due, then apply. Finding the trial already where the transition
// leads, with the job's generation, means the transition was applied by
// another job's batch or by an earlier attempt of this one. The result
// tells the worker what happened.
func (s *Service) transition(ctx context.Context, st step) (Result, error) {
	// A trial never returns to a (state, generation) it has left: every
	// path back to an earlier state starts a new generation. So a job whose
	// trial has moved on can tell without the row lock, whose transaction
	// would cost a commit: in a storm most expiry jobs find their trial
	// claimed by another job's batch and end here.
	cur, err := store.New(s.pool).TrialPositionByID(ctx, st.trialID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Result{}, fmt.Errorf("reading trial %d: %w", st.trialID, err)
	}
	if errors.Is(err, store.ErrNotFound) || cur != (domain.Position{State: st.from, ScheduleGen: st.generation}) {
		return Result{Outcome: st.moved(cur)}, nil
	}
	var res Result
	err = s.inChange(ctx, domain.System, st.cause, func(c *change) error {
		res = Result{}
		t, err := c.q.TrialByIDForUpdate(ctx, st.trialID)
		if errors.Is(err, store.ErrNotFound) {
			res.Outcome = Skipped
			return nil
		}
		if err != nil {
			return fmt.Errorf("locking trial %d: %w", st.trialID, err)
		}
		if t.Position() != (domain.Position{State: st.from, ScheduleGen: st.generation}) {
			res.Outcome = st.moved(t.Position())
			return nil
		}
		if err := c.enterClock(ctx, t); err != nil {
			return err
		}
		dueAt := st.due(t)
		if dueAt.After(c.now) {
			return &NotDueError{Due: dueAt}
		}
		res = Result{Outcome: Applied, Due: dueAt, At: c.now}
		c.due = res.Due
		return st.apply(ctx, c, &t)
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// moved is the outcome of a job whose trial is no longer where it expects:
// AlreadyApplied when the trial is where the transition leads, for the
// job's generation, Skipped otherwise (or when the trial is gone: cur is
// then zero).
func (st step) moved(cur domain.Position) Outcome {
	if st.to != "" && cur == (domain.Position{State: st.to, ScheduleGen: st.generation}) {
		return AlreadyApplied
	}
	return Skipped
}
