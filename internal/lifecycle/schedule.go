package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
	"github.com/trialsd/trialsd/jobs/jobargs"
)

// JobQueue is the part of River the lifecycle uses, always inside its own
// transactions; *river.Client[pgx.Tx] is one.
type JobQueue interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobListTx(ctx context.Context, tx pgx.Tx, params *river.JobListParams) (*river.JobListResult, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobCancelTx(ctx context.Context, tx pgx.Tx, jobID int64) (*rivertype.JobRow, error)
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// pendingStates are the states of a job that has not started. A running job
// is never cancelled: it may be the caller itself, and it will find its
// transition no longer due under the trial's lock anyway.
var pendingStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStateScheduled,
	rivertype.JobStateRetryable, rivertype.JobStatePending,
}

// schedule enqueues the jobs t's state awaits, for its current generation,
// and records their ids: an active trial its reminders and its expiry, an
// expired one its deletion, a deleted one its organization's purge (when
// purgeAt is set).
func (s *Service) schedule(ctx context.Context, tx pgx.Tx, t store.Trial, purgeAt *time.Time) error {
	q := store.New(tx)
	switch t.State {
	case store.StateActive:
		now := s.now()
		var reminders []int64
		for _, before := range s.cfg.ReminderBefore {
			if at := t.ExpirationDate.Add(-before); at.After(now) {
				id, err := s.insert(ctx, tx, jobargs.RemindTrial{V: jobargs.Version, TrialID: t.ID, Generation: t.ScheduleGen, Before: before}, at)
				if err != nil {
					return err
				}
				reminders = append(reminders, id)
			}
		}
		id, err := s.insert(ctx, tx, jobargs.ExpireTrial{V: jobargs.Version, TrialID: t.ID, Generation: t.ScheduleGen}, t.ExpirationDate)
		if err != nil {
			return err
		}
		return q.SetTrialJobs(ctx, t.ID, &id, reminders)
	case store.StateExpired:
		id, err := s.insert(ctx, tx, deleteArgs(t), *t.GraceEndsAt)
		if err != nil {
			return err
		}
		return q.SetTrialJobs(ctx, t.ID, &id, nil)
	case store.StateDeleted:
		if err := q.SetTrialJobs(ctx, t.ID, nil, nil); err != nil {
			return err
		}
		if purgeAt != nil {
			return s.schedulePurge(ctx, tx, t.OrganizationID, *purgeAt)
		}
		return nil
	default:
		return q.SetTrialJobs(ctx, t.ID, nil, nil)
	}
}

// deleteArgs is the Delete job of an expired trial's generation.
func deleteArgs(t store.Trial) jobargs.DeleteTrial {
	return jobargs.DeleteTrial{V: jobargs.Version, TrialID: t.ID, Generation: t.ScheduleGen}
}

// schedulePurge enqueues an organization's purge and records the job.
func (s *Service) schedulePurge(ctx context.Context, tx pgx.Tx, orgID int64, at time.Time) error {
	id, err := s.insert(ctx, tx, jobargs.PurgeOrganization{V: jobargs.Version, OrganizationID: orgID, PurgeAt: at}, at)
	if err != nil {
		return err
	}
	return store.New(tx).SetPurgeJob(ctx, orgID, &id)
}

// insert enqueues one job due at at, in tx, and returns its id (the
// existing job's, when an identical one is already queued).
func (s *Service) insert(ctx context.Context, tx pgx.Tx, args river.JobArgs, at time.Time) (int64, error) {
	res, err := s.jobs.InsertTx(ctx, tx, args, &river.InsertOpts{ScheduledAt: at})
	if err != nil {
		return 0, fmt.Errorf("enqueueing %s: %w", args.Kind(), err)
	}
	return res.Job.ID, nil
}

// reschedule starts a new schedule generation for t and enqueues the jobs
// its current state awaits, all in the caller's transaction.
func (s *Service) reschedule(ctx context.Context, tx pgx.Tx, q *store.Queries, t *store.Trial, purgeAt *time.Time) error {
	if err := s.cancelSchedule(ctx, tx, q, t); err != nil {
		return err
	}
	return s.schedule(ctx, tx, *t, purgeAt)
}

// cancelSchedule retires t's pending jobs before an operation replaces them:
// a new generation makes them stale, and they are cancelled so they do not
// linger in the queue.
func (s *Service) cancelSchedule(ctx context.Context, tx pgx.Tx, q *store.Queries, t *store.Trial) error {
	gen, err := q.BumpScheduleGen(ctx, t.ID)
	if err != nil {
		return err
	}
	t.ScheduleGen = gen
	return s.retireJobs(ctx, tx, q, t)
}

// retireJobs cancels what is still pending of t's recorded jobs and forgets
// them, before a transition records the jobs of the next state.
func (s *Service) retireJobs(ctx context.Context, tx pgx.Tx, q *store.Queries, t *store.Trial) error {
	ids := t.ReminderJobIDs
	if t.TransitionJobID != nil {
		ids = append(ids, *t.TransitionJobID)
	}
	if err := s.cancelJobs(ctx, tx, ids); err != nil {
		return err
	}
	t.TransitionJobID, t.ReminderJobIDs = nil, nil
	return q.SetTrialJobs(ctx, t.ID, nil, nil)
}

// cancelJobs cancels those of the jobs that have not started. A running job
// is left alone: it may be the caller itself, and it will find its
// transition no longer due under the trial's lock anyway.
func (s *Service) cancelJobs(ctx context.Context, tx pgx.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	res, err := s.jobs.JobListTx(ctx, tx, river.NewJobListParams().IDs(ids...).States(pendingStates...).First(len(ids)))
	if err != nil {
		return fmt.Errorf("listing pending jobs %v: %w", ids, err)
	}
	for _, j := range res.Jobs {
		if _, err := s.jobs.JobCancelTx(ctx, tx, j.ID); err != nil {
			return fmt.Errorf("cancelling job %d (%s): %w", j.ID, j.Kind, err)
		}
	}
	return nil
}

// setDates writes t's lifecycle dates and refreshes t.State from the row.
func setDates(ctx context.Context, q *store.Queries, t *store.Trial) error {
	state, err := q.SetTrialDates(ctx, t.ID, store.TrialDates{
		ExpirationDate: t.ExpirationDate, ExpiredDate: t.ExpiredDate, DeletedDate: t.DeletedDate,
		UpgradedDate: t.UpgradedDate, GraceEndsAt: t.GraceEndsAt,
	})
	if err != nil {
		return err
	}
	t.State = state
	return nil
}

// record appends one event to t's history and hands it to the webhook
// outbox, in tx: the event and its deliveries commit with the transition.
func (s *Service) record(ctx context.Context, tx pgx.Tx, t store.Trial, kind string, at time.Time, actor, cause string, data map[string]any) error {
	raw, err := eventData(data)
	if err != nil {
		return fmt.Errorf("encoding %s event: %w", kind, err)
	}
	id, err := store.New(tx).InsertTrialEvent(ctx, store.TrialEvent{TrialID: t.ID, Kind: kind, At: at, Actor: actor, Cause: cause, Data: raw})
	if err != nil {
		return err
	}
	return s.webhooks.Enqueue(ctx, tx, outbox.Event{ID: id, Kind: kind, At: at, Actor: actor, Cause: cause, Data: raw}, t)
}

// lockTrial locks a trial for an API operation: unknown is 404.
func lockTrial(ctx context.Context, q *store.Queries, id int64) (store.Trial, error) {
	t, err := q.TrialByIDForUpdate(ctx, id)
	if err != nil {
		return store.Trial{}, notFoundAs(err, "Trial %d not found", id)
	}
	return t, nil
}

func ptrTime(t time.Time) *time.Time { return &t }

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
