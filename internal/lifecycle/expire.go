package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/store"
)

// Expire applies the Expire transition: at its expiration date an active
// trial becomes expired, its organization loses enterprise features, and its
// Delete is scheduled for the end of the grace period. It runs under the
// trial's row lock and checks that the transition is still due, so running
// it twice, late, or after the trial was rescheduled, upgraded or purged does
// nothing (Skipped). Run before the date, it returns a *NotDueError.
func (s *Service) Expire(ctx context.Context, trialID, generation int64, cause string) (Result, error) {
	return s.transition(ctx, trialID, generation, store.StateActive, cause,
		func(t store.Trial) time.Time { return t.ExpirationDate },
		func(tx pgx.Tx, q *store.Queries, t *store.Trial, now time.Time) error {
			return s.applyExpire(ctx, tx, q, t, now, ActorSystem, cause)
		})
}

// applyExpire expires t now and schedules its Delete, in tx.
func (s *Service) applyExpire(ctx context.Context, tx pgx.Tx, q *store.Queries, t *store.Trial, now time.Time, actor, cause string) error {
	if err := s.retireJobs(ctx, tx, q, t); err != nil {
		return err
	}
	t.ExpiredDate = ptrTime(now)
	t.GraceEndsAt = ptrTime(now.Add(s.cfg.GracePeriod))
	if err := setDates(ctx, q, t); err != nil {
		return err
	}
	if err := q.SetEnterpriseFeatures(ctx, t.OrganizationID, false); err != nil {
		return err
	}
	if err := s.record(ctx, tx, *t, EventExpired, now, actor, cause, map[string]any{
		"expirationDate": t.ExpirationDate, "graceEndsAt": t.GraceEndsAt,
	}); err != nil {
		return err
	}
	return s.schedule(ctx, tx, *t, nil)
}

// transition is the frame of every job-driven trial transition: lock the
// trial, skip unless it is in state with the job's generation, snooze unless
// due, then apply. The result tells the worker what happened.
func (s *Service) transition(ctx context.Context, trialID, generation int64, state, cause string,
	due func(store.Trial) time.Time, apply func(pgx.Tx, *store.Queries, *store.Trial, time.Time) error,
) (Result, error) {
	var res Result
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		t, err := q.TrialByIDForUpdate(ctx, trialID)
		if errors.Is(err, store.ErrNotFound) {
			res = Result{Outcome: Skipped}
			return nil
		}
		if err != nil {
			return fmt.Errorf("locking trial %d: %w", trialID, err)
		}
		if t.State != state || t.ScheduleGen != generation {
			res = Result{Outcome: Skipped}
			return nil
		}
		now, dueAt := s.now(), due(t)
		if dueAt.After(now) {
			return &NotDueError{Due: dueAt}
		}
		if err := apply(tx, q, &t, now); err != nil {
			return err
		}
		res = Result{Outcome: Applied, Due: dueAt, At: now}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if res.Outcome == Applied {
		s.logger.InfoContext(ctx, "trial transition applied", "trial_id", trialID, "from_state", state,
			"cause", cause, "lag", res.At.Sub(res.Due))
	}
	return res, nil
}
