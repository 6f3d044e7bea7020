package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/riverqueue/river"

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
	if s.applied.take(trialID, generation) || s.takenByFollower(ctx, trialID, generation) {
		// This job runs: if the batch found it held, no batch need
		// retry deleting it.
		s.held.done(trialGen{trialID, generation})
		return Result{Outcome: AlreadyApplied}, nil
	}
	var claimed []domain.Trial
	res, err := s.transition(ctx, step{
		trialID: trialID, generation: generation, from: domain.StateActive, to: domain.StateExpired, cause: cause,
		due: func(t domain.Trial) time.Time { return t.ExpirationDate },
		apply: func(ctx context.Context, c *change, t *domain.Trial) (err error) {
			claimed = nil // a retried transaction starts over
			// The job's own trial keeps no pending job behind (a late
			// reminder, or its expiry job when called outside it).
			if err := c.retireJobs(ctx, t); err != nil {
				return err
			}
			claimed, err = c.expireBatch(ctx, t)
			return err
		},
	})
	if err != nil || res.Outcome != Applied {
		return res, err
	}
	res.Claimed = s.claimed(claimed, res.At)
	res.Claimed = append(res.Claimed, s.followExpiries(ctx, cause, res.At)...)
	return res, nil
}

// claimed remembers the trials a committed batch expired at `at`, for
// their own jobs (appliedExpiries), and returns them as claims.
func (s *Service) claimed(trials []domain.Trial, at time.Time) []Claim {
	if len(trials) == 0 {
		return nil
	}
	keys := make([]trialGen, len(trials))
	out := make([]Claim, len(trials))
	for i, t := range trials {
		keys[i], out[i] = trialGen{t.ID, t.ScheduleGen}, Claim{Due: t.ExpirationDate, At: at}
	}
	s.applied.add(keys)
	return out
}

// expireBatch expires own and the other active trials due by now that it
// can claim without waiting, set-based, and returns the others. The
// others' pending jobs are deleted in one statement (deleteDoneJobs); one
// River had already started finds its transition applied and completes as
// AlreadyApplied.
func (c *change) expireBatch(ctx context.Context, own *domain.Trial) ([]domain.Trial, error) {
	var others []domain.Trial
	if batch := c.s.cfg.ExpireBatch; batch > 1 && c.clock == nil {
		var err error
		// Trials due before the job's own are left to their own jobs, which
		// River fetches first: the claim scans only [own due, now], not the
		// index entries of every trial a storm has already expired.
		due := store.DueWindow{From: own.ExpirationDate, By: c.now}
		if others, err = c.claimDue(ctx, due, own.ID, batch-1); err != nil {
			return nil, err
		}
	}
	trials := append([]domain.Trial{*own}, others...)
	jobIDs, err := c.expireTrials(ctx, trials)
	if err != nil {
		return nil, err
	}
	*own = trials[0]
	own.TransitionJobID = &jobIDs[0]
	return trials[1:], nil
}

// claimDue locks up to limit active trials due within the window that no
// one holds, except one, and deletes their pending jobs: the batch does
// their work.
func (c *change) claimDue(ctx context.Context, due store.DueWindow, except int64, limit int) ([]domain.Trial, error) {
	claimed, err := c.q.ClaimDueActiveTrials(ctx, due, except, limit)
	if err != nil {
		return nil, err
	}
	if err := c.deleteDoneJobs(ctx, claimed); err != nil {
		return nil, err
	}
	return claimed, nil
}

// expireTrials expires the trials now, set-based, and returns the ids of
// their Delete jobs, in order.
func (c *change) expireTrials(ctx context.Context, trials []domain.Trial) ([]int64, error) {
	graceEndsAt := c.now.Add(c.s.cfg.GracePeriod)
	events, err := c.expiredEvents(trials, graceEndsAt)
	if err != nil {
		return nil, err
	}
	ids, orgs := make([]int64, len(trials)), make([]int64, len(trials))
	jobs := make([]river.InsertManyParams, len(trials))
	for i, t := range trials {
		ids[i], orgs[i] = t.ID, t.OrganizationID
		jobs[i] = river.InsertManyParams{Args: deleteArgs(t), InsertOpts: c.jobOpts(graceEndsAt)}
	}
	if err := c.q.SetEnterpriseFeaturesOf(ctx, orgs, false); err != nil {
		return nil, err
	}
	if err := c.q.InsertTrialEvents(ctx, events); err != nil {
		return nil, err
	}
	for i, ev := range events {
		if err := c.s.webhooks.Enqueue(ctx, c.tx, ev, trials[i]); err != nil {
			return nil, err
		}
	}
	inserted, err := c.s.jobs.InsertManyTx(ctx, c.tx, jobs)
	if err != nil {
		return nil, fmt.Errorf("enqueueing %d deletions: %w", len(jobs), err)
	}
	jobIDs := make([]int64, len(inserted))
	for i, r := range inserted {
		jobIDs[i] = r.Job.ID
	}
	if err := c.q.ExpireTrials(ctx, ids, jobIDs, c.now, graceEndsAt); err != nil {
		return nil, err
	}
	return jobIDs, nil
}

// recordedJobs are the ids of the jobs the trials record: their reminders
// and their next transition.
func recordedJobs(trials []domain.Trial) []int64 {
	var ids []int64
	for _, t := range trials {
		ids = append(ids, t.ReminderJobIDs...)
		if t.TransitionJobID != nil {
			ids = append(ids, *t.TransitionJobID)
		}
	}
	return ids
}

// expiredEvents marks each trial expired now, in memory, and returns the
// trial.expired event of each, as the change records it.
func (c *change) expiredEvents(trials []domain.Trial, graceEndsAt time.Time) ([]domain.Event, error) {
	events := make([]domain.Event, len(trials))
	for i := range trials {
		t := &trials[i]
		t.ExpiredDate, t.GraceEndsAt, t.State = ptrTime(c.now), ptrTime(graceEndsAt), domain.StateExpired
		t.TransitionJobID, t.ReminderJobIDs = nil, nil
		data, err := eventData(expiredEventData(*t))
		if err != nil {
			return nil, fmt.Errorf("encoding %s event: %w", domain.EventExpired, err)
		}
		events[i] = domain.Event{TrialID: t.ID, Kind: domain.EventExpired, At: c.now, Actor: c.actor.String(), Cause: c.cause, Data: data}
		c.observe(events[i], *t, nil)
		c.seen[len(c.seen)-1].Due = t.ExpirationDate // each trial was due at its own date
	}
	return events, nil
}

// expiredEventData is the data of a trial.expired event.
func expiredEventData(t domain.Trial) map[string]any {
	return map[string]any{"expirationDate": t.ExpirationDate, "graceEndsAt": t.GraceEndsAt}
}

// applyExpire expires t now and schedules its Delete.
func (c *change) applyExpire(ctx context.Context, t *domain.Trial) error {
	if err := c.retireJobs(ctx, t); err != nil {
		return err
	}
	t.ExpiredDate = ptrTime(c.now)
	t.GraceEndsAt = ptrTime(c.now.Add(c.s.cfg.GracePeriod))
	if err := c.setDates(ctx, t); err != nil {
		return err
	}
	if err := c.q.SetEnterpriseFeatures(ctx, t.OrganizationID, false); err != nil {
		return err
	}
	if err := c.record(ctx, *t, domain.EventExpired, expiredEventData(*t)); err != nil {
		return err
	}
	return c.schedule(ctx, *t, nil)
}

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
