package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
)

// Expire applies the Expire transition: at its expiration date an active
// trial becomes expired, its organization loses enterprise features, and its
// Delete is scheduled for the end of the grace period. It runs under the
// trial's row lock and checks that the transition is still due, so running
// it twice, late, or after the trial was rescheduled, upgraded or purged does
// nothing (Skipped, or AlreadyApplied). Run before the date, it returns a
// *NotDueError.
//
// In the same transaction it claims up to lifecycle.expire_batch-1 other
// trials already due that no other transaction holds and expires them too,
// each with its own event caused by this job: in a storm one commit carries
// many expiries, where one commit per expiry would cap throughput at the
// commit rate. Their own jobs then find them expired (AlreadyApplied); on
// the daemon that committed the batch, without reading them (appliedExpiries).
func (s *Service) Expire(ctx context.Context, trialID, generation int64, cause string) (Result, error) {
	if s.applied.take(trialID, generation) {
		return Result{Outcome: AlreadyApplied}, nil
	}
	var claimed []store.Trial
	res, err := s.transition(ctx, trialID, generation, store.StateActive, store.StateExpired, cause,
		func(t store.Trial) time.Time { return t.ExpirationDate },
		func(tx pgx.Tx, q *store.Queries, t *store.Trial, now time.Time) (err error) {
			claimed = nil // a retried transaction starts over
			// The job's own trial keeps no pending job behind (a late
			// reminder, or its expiry job when called outside it).
			if err := s.retireJobs(ctx, tx, q, t); err != nil {
				return err
			}
			claimed, err = s.expireBatch(ctx, tx, q, t, now, cause)
			return err
		})
	if err == nil && res.Outcome == Applied && len(claimed) > 0 {
		keys := make([]trialGen, len(claimed))
		res.Claimed = make([]time.Time, len(claimed))
		for i, t := range claimed {
			keys[i], res.Claimed[i] = trialGen{t.ID, t.ScheduleGen}, t.ExpirationDate
		}
		s.applied.add(keys)
	}
	return res, err
}

// expireBatch expires own and the other active trials due by now that it
// can claim without waiting, set-based, in tx, and returns the others.
// The others' jobs are left in place (cancelling them would cost a
// statement per trial): each expiry job finds its transition applied and
// completes as AlreadyApplied, and a reminder still pending finds its trial
// no longer active.
func (s *Service) expireBatch(ctx context.Context, tx pgx.Tx, q *store.Queries, own *store.Trial, now time.Time, cause string) ([]store.Trial, error) {
	var others []store.Trial
	if s.cfg.ExpireBatch > 1 {
		var err error
		if others, err = q.ClaimDueActiveTrials(ctx, now, own.ID, s.cfg.ExpireBatch-1); err != nil {
			return nil, err
		}
	}
	trials := append([]store.Trial{*own}, others...)
	graceEndsAt := now.Add(s.cfg.GracePeriod)
	ids, orgs := make([]int64, len(trials)), make([]int64, len(trials))
	events := make([]store.TrialEvent, len(trials))
	jobs := make([]river.InsertManyParams, len(trials))
	for i := range trials {
		t := &trials[i]
		t.ExpiredDate, t.GraceEndsAt, t.State = ptrTime(now), ptrTime(graceEndsAt), store.StateExpired
		t.TransitionJobID, t.ReminderJobIDs = nil, nil
		ids[i], orgs[i] = t.ID, t.OrganizationID
		data, err := eventData(expiredEventData(*t))
		if err != nil {
			return nil, fmt.Errorf("encoding %s event: %w", EventExpired, err)
		}
		events[i] = store.TrialEvent{TrialID: t.ID, Kind: EventExpired, At: now, Actor: ActorSystem, Cause: cause, Data: data}
		jobs[i] = river.InsertManyParams{Args: deleteArgs(*t), InsertOpts: &river.InsertOpts{ScheduledAt: graceEndsAt}}
	}
	if err := q.SetEnterpriseFeaturesOf(ctx, orgs, false); err != nil {
		return nil, err
	}
	if err := q.InsertTrialEvents(ctx, events); err != nil {
		return nil, err
	}
	for i, ev := range events {
		if err := s.webhooks.Enqueue(ctx, tx, outbox.Event{ID: ev.ID, Kind: ev.Kind, At: ev.At, Actor: ev.Actor, Cause: ev.Cause, Data: ev.Data}, trials[i]); err != nil {
			return nil, err
		}
	}
	inserted, err := s.jobs.InsertManyTx(ctx, tx, jobs)
	if err != nil {
		return nil, fmt.Errorf("enqueueing %d deletions: %w", len(jobs), err)
	}
	jobIDs := make([]int64, len(inserted))
	for i, r := range inserted {
		jobIDs[i] = r.Job.ID
	}
	if err := q.ExpireTrials(ctx, ids, jobIDs, now, graceEndsAt); err != nil {
		return nil, err
	}
	*own = trials[0]
	own.TransitionJobID = &jobIDs[0]
	return trials[1:], nil
}

// expiredEventData is the data of a trial.expired event.
func expiredEventData(t store.Trial) map[string]any {
	return map[string]any{"expirationDate": t.ExpirationDate, "graceEndsAt": t.GraceEndsAt}
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
	if err := s.record(ctx, tx, *t, EventExpired, now, actor, cause, expiredEventData(*t)); err != nil {
		return err
	}
	return s.schedule(ctx, tx, *t, nil)
}

// transition is the frame of every job-driven trial transition: lock the
// trial, skip unless it is in state with the job's generation, snooze unless
// due, then apply. Finding the trial already in the state the transition
// leads to (to; "" when it leads to none), with the job's generation, means
// the transition was applied by another job's batch or by an earlier attempt
// of this one. The result tells the worker what happened.
func (s *Service) transition(ctx context.Context, trialID, generation int64, state, to, cause string,
	due func(store.Trial) time.Time, apply func(pgx.Tx, *store.Queries, *store.Trial, time.Time) error,
) (Result, error) {
	// A trial never returns to a (state, generation) it has left: every
	// path back to an earlier state starts a new generation. So a job whose
	// trial has moved on can tell without the row lock, whose transaction
	// would cost a commit: in a storm most expiry jobs find their trial
	// claimed by another job's batch and end here.
	cur, err := store.New(s.pool).TrialStateByID(ctx, trialID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Result{}, fmt.Errorf("reading trial %d: %w", trialID, err)
	}
	if errors.Is(err, store.ErrNotFound) || cur.State != state || cur.ScheduleGen != generation {
		return Result{Outcome: moved(cur, to, generation)}, nil
	}

	var res Result
	err = store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
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
			res = Result{Outcome: moved(store.TrialState{State: t.State, ScheduleGen: t.ScheduleGen}, to, generation)}
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

// moved is the outcome of a job whose trial is no longer in the state it
// expects: AlreadyApplied when the trial is where the transition leads, for
// the job's generation, Skipped otherwise (or when the trial is gone: cur is
// then zero).
func moved(cur store.TrialState, to string, generation int64) Outcome {
	if to != "" && cur.State == to && cur.ScheduleGen == generation {
		return AlreadyApplied
	}
	return Skipped
}
