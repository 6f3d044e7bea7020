package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
)

// Expire is the trial's own expiry job: at its expiration date an active
// trial becomes expired, its organization loses enterprise features, and
// its Delete is scheduled for the end of the grace period. It runs under
// the trial's row lock and checks that the transition is still due, so
// running it twice, late, or after the trial was rescheduled, upgraded,
// purged or expired by a sweep (ExpireDue) does nothing (Skipped, or
// AlreadyApplied). Run before the date, it returns a *NotDueError.
//
// The job is the durable half of expiry: it exists for every active trial
// from the transaction that set its date, so a trial expires even when no
// sweep runs.
func (s *Service) Expire(ctx context.Context, trialID, generation int64, cause string) (Result, error) {
	return s.transition(ctx, step{
		trialID: trialID, generation: generation, from: domain.StateActive, to: domain.StateExpired, cause: cause,
		due:   func(t domain.Trial) time.Time { return t.ExpirationDate },
		apply: func(ctx context.Context, c *change, t *domain.Trial) error { return c.expire(ctx, t) },
	})
}

// Sweep is what one ExpireDue did: the trials it expired, each with when
// it was due and when the sweep applied it, and whether it took as many
// as it may (lifecycle.expire_batch), so that more may be due.
type Sweep struct {
	Expired []Claim
	Full    bool
}

// ExpireDue is the fast half of expiry: in one transaction it expires up
// to lifecycle.expire_batch active trials due by now, longest due first,
// set-based, each with its own trial.expired event and Delete job, and
// deletes their pending expiry jobs through River (their work is done). A
// trial another transaction holds is passed over (FOR UPDATE SKIP LOCKED),
// so replicas sweeping at once share the due trials and never wait on one
// another. A job River had already started when the sweep committed finds
// its trial expired and completes as AlreadyApplied. Test clocks' trials
// are left to their jobs: they are due by their clock.
func (s *Service) ExpireDue(ctx context.Context) (Sweep, error) {
	var sw Sweep
	err := s.inChange(ctx, domain.System, domain.SweepCause, func(c *change) error {
		sw = Sweep{}
		trials, err := c.q.ClaimDueActiveTrials(ctx, c.now, s.cfg.ExpireBatch)
		if err != nil || len(trials) == 0 {
			return err
		}
		done := recordedJobs(trials)
		if _, err := c.expireTrials(ctx, trials); err != nil {
			return err
		}
		// Last, so the job rows are held only while the commit nears:
		// River's scheduler waits for the rows it would make available.
		if err := c.deleteDoneJobs(ctx, done); err != nil {
			return err
		}
		sw.Full = len(trials) == s.cfg.ExpireBatch
		for _, t := range trials {
			sw.Expired = append(sw.Expired, Claim{Due: t.ExpirationDate, At: c.now})
		}
		return nil
	})
	if err != nil {
		return Sweep{}, fmt.Errorf("sweeping due expiries: %w", err)
	}
	return sw, nil
}

// expire expires t now, as its own job or an operator's move of its date
// into the past does: its pending jobs are retired, and it goes through
// expireTrials as a set of one.
func (c *change) expire(ctx context.Context, t *domain.Trial) error {
	if err := c.retireJobs(ctx, t); err != nil {
		return err
	}
	trials := []domain.Trial{*t}
	jobIDs, err := c.expireTrials(ctx, trials)
	if err != nil {
		return err
	}
	*t = trials[0]
	t.TransitionJobID = &jobIDs[0]
	return nil
}

// expireTrials expires the trials now, set-based, and returns the ids of
// their Delete jobs, in order. Each trial's first notice of its expiry
// (email.notices) is scheduled with its Delete, as a job on the e-mail
// queue: the e-mails are written and sent off the expiry's path.
func (c *change) expireTrials(ctx context.Context, trials []domain.Trial) ([]int64, error) {
	graceEndsAt := c.now.Add(c.s.cfg.GracePeriod)
	events, err := c.expiredEvents(trials, graceEndsAt)
	if err != nil {
		return nil, err
	}
	ids, orgs := make([]int64, len(trials)), make([]int64, len(trials))
	jobs := make([]river.InsertManyParams, len(trials), 2*len(trials))
	noticeOf := make([]int, len(trials)) // index in jobs, 0: none
	for i, t := range trials {
		ids[i], orgs[i] = t.ID, t.OrganizationID
		jobs[i] = river.InsertManyParams{Args: deleteArgs(t), InsertOpts: c.jobOpts(graceEndsAt)}
		if args, at, ok := c.noticeJob(t, nil); ok {
			noticeOf[i] = len(jobs)
			jobs = append(jobs, river.InsertManyParams{Args: args, InsertOpts: c.jobOpts(at)})
		}
	}
	if err := c.q.SetEnterpriseFeaturesOf(ctx, orgs, false); err != nil {
		return nil, err
	}
	if err := c.q.InsertTrialEvents(ctx, events); err != nil {
		return nil, err
	}
	if err := c.s.webhooks.EnqueueAll(ctx, c.tx, events, trials); err != nil {
		return nil, err
	}
	inserted, err := c.s.jobs.InsertManyTx(ctx, c.tx, jobs)
	if err != nil {
		return nil, fmt.Errorf("enqueueing %d deletions and notices: %w", len(jobs), err)
	}
	jobIDs, noticeIDs := make([]int64, len(trials)), make([]int64, len(trials))
	for i := range trials {
		jobIDs[i] = inserted[i].Job.ID
		trials[i].ReminderJobIDs = nil
		if noticeOf[i] > 0 {
			noticeIDs[i] = inserted[noticeOf[i]].Job.ID
			trials[i].ReminderJobIDs = []int64{noticeIDs[i]}
		}
	}
	err = c.q.ExpireTrials(ctx, store.ExpiredTrials{IDs: ids, JobIDs: jobIDs, NoticeJobIDs: noticeIDs, At: c.now, GraceEndsAt: graceEndsAt})
	if err != nil {
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
