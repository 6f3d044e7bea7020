package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
)

// JobQueue is the part of River the lifecycle uses, always inside its own
// transactions; *river.Client[pgx.Tx] is one.
type JobQueue interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobListTx(ctx context.Context, tx pgx.Tx, params *river.JobListParams) (*river.JobListResult, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobCancelTx(ctx context.Context, tx pgx.Tx, jobID int64) (*rivertype.JobRow, error)
	JobDeleteManyTx(ctx context.Context, tx pgx.Tx, params *river.JobDeleteManyParams) (*river.JobDeleteManyResult, error)
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobRetryTx(ctx context.Context, tx pgx.Tx, id int64) (*rivertype.JobRow, error)
}

// schedule enqueues the jobs t's state awaits, for its current generation,
// and records their ids: an active trial its reminders and its expiry, an
// expired one its deletion, a deleted one its organization's purge (when
// purgeAt is set).
func (c *change) schedule(ctx context.Context, t domain.Trial, purgeAt *time.Time) error {
	switch t.State {
	case domain.StateActive:
		var reminders []int64
		for _, before := range c.s.cfg.ReminderBefore {
			if at := t.ExpirationDate.Add(-before); at.After(c.now) {
				id, err := c.insert(ctx, jobargs.RemindTrial{V: jobargs.Version, TrialID: t.ID, Generation: t.ScheduleGen, Before: before}, at)
				if err != nil {
					return err
				}
				reminders = append(reminders, id)
			}
		}
		id, err := c.insert(ctx, jobargs.ExpireTrial{V: jobargs.Version, TrialID: t.ID, Generation: t.ScheduleGen}, c.expiryJobAt(t))
		if err != nil {
			return err
		}
		return c.setJobs(ctx, t, &id, reminders)
	case domain.StateExpired:
		id, err := c.insert(ctx, deleteArgs(t), *t.GraceEndsAt)
		if err != nil {
			return err
		}
		return c.setJobs(ctx, t, &id, nil)
	case domain.StateDeleted:
		if err := c.setJobs(ctx, t, nil, nil); err != nil {
			return err
		}
		if purgeAt != nil {
			return c.schedulePurge(ctx, t.OrganizationID, *purgeAt)
		}
		return nil
	default:
		return c.setJobs(ctx, t, nil, nil)
	}
}

// setJobs records t's next transition and its reminders, with the job of
// its first notice still ahead among them.
func (c *change) setJobs(ctx context.Context, t domain.Trial, transition *int64, reminders []int64) error {
	reminders, err := c.scheduleNotice(ctx, t, reminders)
	if err != nil {
		return err
	}
	return c.q.SetTrialJobs(ctx, t.ID, transition, reminders)
}

// ExpiryJobDelay is how long after its expiration date a trial's expiry
// job is due, by real time: lifecycle.expire_backstop while the replicas
// sweep (lifecycle.expire_poll), else nothing. A sweep that keeps up
// expires the trial at its date and deletes the job while it still waits,
// so the job never runs, nor costs River's scheduler a promotion; it
// expires the trial only if no sweep did by then.
func ExpiryJobDelay(cfg config.Lifecycle) time.Duration {
	if cfg.ExpirePoll <= 0 {
		return 0
	}
	return cfg.ExpireBackstop
}

// expiryJobAt is when t's expiry job is due: ExpiryJobDelay after its
// expiration date, or at it on a test clock, whose trials no sweep takes
// (the sweeps go by real time).
func (c *change) expiryJobAt(t domain.Trial) time.Time {
	if c.clock != nil {
		return t.ExpirationDate
	}
	return t.ExpirationDate.Add(ExpiryJobDelay(c.s.cfg))
}

// deleteArgs is the Delete job of an expired trial's generation.
func deleteArgs(t domain.Trial) jobargs.DeleteTrial {
	return jobargs.DeleteTrial{V: jobargs.Version, TrialID: t.ID, Generation: t.ScheduleGen}
}

// schedulePurge enqueues an organization's purge and records the job.
func (c *change) schedulePurge(ctx context.Context, orgID int64, at time.Time) error {
	id, err := c.insert(ctx, jobargs.PurgeOrganization{V: jobargs.Version, OrganizationID: orgID, PurgeAt: at}, at)
	if err != nil {
		return err
	}
	return c.q.SetPurgeJob(ctx, orgID, &id)
}

// insert enqueues one job due at at, in the change's transaction, and
// returns its id (the existing job's, when an identical one is queued).
func (c *change) insert(ctx context.Context, args river.JobArgs, at time.Time) (int64, error) {
	res, err := c.s.jobs.InsertTx(ctx, c.tx, args, c.jobOpts(at))
	if err != nil {
		return 0, fmt.Errorf("enqueueing %s: %w", args.Kind(), err)
	}
	return res.Job.ID, nil
}

// reschedule starts a new schedule generation for t and enqueues the jobs
// its current state awaits.
func (c *change) reschedule(ctx context.Context, t *domain.Trial, purgeAt *time.Time) error {
	if err := c.cancelSchedule(ctx, t); err != nil {
		return err
	}
	return c.schedule(ctx, *t, purgeAt)
}

// cancelSchedule retires t's pending jobs before an operation replaces them:
// a new generation makes them stale, and they are cancelled so they do not
// linger in the queue.
func (c *change) cancelSchedule(ctx context.Context, t *domain.Trial) error {
	gen, err := c.q.BumpScheduleGen(ctx, t.ID)
	if err != nil {
		return err
	}
	t.ScheduleGen = gen
	return c.retireJobs(ctx, t)
}

// retireJobs cancels what is still pending of t's recorded jobs and forgets
// them, before a transition records the jobs of the next state.
func (c *change) retireJobs(ctx context.Context, t *domain.Trial) error {
	if err := c.cancelJobs(ctx, recordedJobs([]domain.Trial{*t})); err != nil {
		return err
	}
	t.TransitionJobID, t.ReminderJobIDs = nil, nil
	return c.q.SetTrialJobs(ctx, t.ID, nil, nil)
}

// cancelJobs cancels those of the jobs that have not started. A running job
// is left alone: it may be the caller itself, and it will find its
// transition no longer due under the trial's lock anyway.
func (c *change) cancelJobs(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	res, err := c.s.jobs.JobListTx(ctx, c.tx, river.NewJobListParams().IDs(ids...).States(store.PendingJobStates...).First(len(ids)))
	if err != nil {
		return fmt.Errorf("listing pending jobs %v: %w", ids, err)
	}
	for _, j := range res.Jobs {
		if _, err := c.s.jobs.JobCancelTx(ctx, c.tx, j.ID); err != nil {
			return fmt.Errorf("cancelling job %d (%s): %w", j.ID, j.Kind, err)
		}
	}
	return nil
}

// maxDeleteMany is the most jobs River deletes in one JobDeleteMany.
const maxDeleteMany = 10_000

// deleteDoneJobs deletes those of the jobs ids still pending, jobs of
// trials whose work a sweep did, in one statement through River per maxDeleteMany. Running them
// would only find their transition applied, at the cost of River's fetch
// and completion updates each. They are deleted rather than cancelled
// because cancelled says the work will not happen, and here it has. River
// deletes only what no one holds: a job it has started, or is making
// available, is left to run and completes as AlreadyApplied.
func (c *change) deleteDoneJobs(ctx context.Context, ids []int64) error {
	for len(ids) > 0 {
		n := min(len(ids), maxDeleteMany)
		params := river.NewJobDeleteManyParams().IDs(ids[:n]...).States(store.PendingJobStates...).First(n)
		if _, err := c.s.jobs.JobDeleteManyTx(ctx, c.tx, params); err != nil {
			return fmt.Errorf("deleting %d jobs done by a sweep: %w", n, err)
		}
		ids = ids[n:]
	}
	return nil
}

// eventData encodes an event's data with its dates as the API writes every
// date (wire.Format: UTC, three-digit milliseconds), so the history and the
// webhooks read like the rest of the API whatever zone the process is in.
func eventData(data map[string]any) ([]byte, error) {
	out := make(map[string]any, len(data))
	for k, v := range data {
		switch d := v.(type) {
		case time.Time:
			out[k] = wire.Format(d)
		case *time.Time:
			out[k] = wire.FormatNullable(d)
		default:
			out[k] = v
		}
	}
	return json.Marshal(out)
}
