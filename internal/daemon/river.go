package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/robfig/cron/v3"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/jobs/jobargs"
)

// newRiverClient builds the River client from the river.* settings. Without
// work it is insert-only: an API-only replica still enqueues transitions in
// its transactions but never runs them.
func newRiverClient(pool *pgxpool.Pool, cfg config.River, lc config.Lifecycle, clk clock.Clock, logger *slog.Logger, workers *river.Workers, work bool, middleware ...rivertype.Middleware) (*river.Client[pgx.Tx], error) {
	rc := &river.Config{
		Middleware:                  middleware,
		Logger:                      logger.With("component", "river"),
		Workers:                     workers,
		FetchPollInterval:           cfg.FetchPollInterval,
		FetchCooldown:               cfg.FetchCooldown,
		JobTimeout:                  cfg.JobTimeout,
		RescueStuckJobsAfter:        cfg.RescueStuckJobsAfter,
		CompletedJobRetentionPeriod: cfg.CompletedRetention,
		MaxAttempts:                 cfg.MaxAttempts,
	}
	if work {
		rc.Queues = map[string]river.QueueConfig{
			jobargs.QueueLifecycle:   {MaxWorkers: cfg.MaxWorkers},
			jobargs.QueueMaintenance: {MaxWorkers: 1},
			jobargs.QueueOutbox:      {MaxWorkers: 20},
		}
		schedule, err := cron.ParseStandard(lc.ReconcileSchedule)
		if err != nil {
			return nil, fmt.Errorf("parsing lifecycle.reconcile_schedule: %w", err)
		}
		// Only River's elected leader enqueues periodic jobs; the tick in the
		// args makes each job unique per tick even across a leader change.
		tick := func() time.Time { return clk.Now().UTC().Truncate(time.Minute) }
		unique := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
		rc.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(utcSchedule{schedule}, func() (river.JobArgs, *river.InsertOpts) {
				return jobargs.ReconcileTrials{V: jobargs.Version, Tick: tick()}, unique
			}, &river.PeriodicJobOpts{ID: jobargs.KindReconcileTrials}),
			river.NewPeriodicJob(utcSchedule{schedule}, func() (river.JobArgs, *river.InsertOpts) {
				return jobargs.RemoveUnpaidSignups{V: jobargs.Version, Tick: tick()}, unique
			}, &river.PeriodicJobOpts{ID: jobargs.KindRemoveUnpaid}),
		}
	}
	// A stubbed clock drives River's notion of "due" too, so tests can move
	// time; the real clock leaves River on the database's now().
	if tg, ok := clk.(rivertype.TimeGenerator); ok {
		rc.Test.Time = tg
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("creating River client: %w", err)
	}
	return client, nil
}

// utcSchedule evaluates a cron schedule in UTC whatever the caller's zone.
type utcSchedule struct{ cron.Schedule }

// Next returns the next activation after t, in UTC.
func (s utcSchedule) Next(t time.Time) time.Time { return s.Schedule.Next(t.UTC()) }

// jobLogMiddleware puts the job's id and kind into the context of its work,
// so every line the domain logs for it says which job.
type jobLogMiddleware struct {
	river.MiddlewareDefaults
}

// Work adds the job's attributes and works it.
func (jobLogMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	return doInner(logging.With(ctx, "job_id", job.ID, "job_kind", job.Kind))
}
