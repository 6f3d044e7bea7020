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
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/internal/services"
)

// riverSetup is what the daemon's River client is built from, besides the
// pool: the settings, the clock and logger it shares with the services, and
// the work it may do.
type riverSetup struct {
	cfg    *config.Config
	clock  clock.Clock
	logger *slog.Logger
	// workers are the job kinds the client knows; it refuses to insert
	// others.
	workers *river.Workers
	// work adds the queues and periodic jobs: this process runs jobs.
	// Without it the client is insert-only: an API-only replica still
	// enqueues transitions in its transactions but never runs them.
	work       bool
	middleware []rivertype.Middleware
}

// newRiverClient builds the River client from the river.* settings, on the
// same base as the services' insert-only client so both insert alike.
func newRiverClient(pool *pgxpool.Pool, s riverSetup) (*river.Client[pgx.Tx], error) {
	rc := services.RiverConfig(s.cfg.River, s.clock, s.logger)
	rc.Middleware = s.middleware
	rc.Workers = s.workers
	if s.work {
		periodic, err := periodicJobs(s.cfg.Lifecycle.ReconcileSchedule, s.clock)
		if err != nil {
			return nil, err
		}
		rc.Queues = map[string]river.QueueConfig{
			jobargs.QueueLifecycle:   {MaxWorkers: s.cfg.River.MaxWorkers},
			jobargs.QueueExpiry:      {MaxWorkers: s.cfg.River.ExpiryWorkers},
			jobargs.QueueTestClock:   {MaxWorkers: s.cfg.River.TestClockWorkers},
			jobargs.QueueMaintenance: {MaxWorkers: 1},
			jobargs.QueueOutbox:      {MaxWorkers: s.cfg.River.OutboxWorkers},
			jobargs.QueueEmail:       {MaxWorkers: s.cfg.River.EmailWorkers},
		}
		rc.PeriodicJobs = periodic
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("creating River client: %w", err)
	}
	return client, nil
}

// pruneSchedule is when delivered outbox messages past their retention
// are deleted.
var pruneSchedule = cron.Every(time.Hour)

// periodicJobs are the sweeps on lifecycle.reconcile_schedule, and the
// hourly ones of the outbox and of the eligibility history. Only River's elected leader enqueues periodic jobs;
// the tick in the args makes each job unique per tick even across a leader
// change.
func periodicJobs(reconcileSchedule string, clk clock.Clock) ([]*river.PeriodicJob, error) {
	schedule, err := cron.ParseStandard(reconcileSchedule)
	if err != nil {
		return nil, fmt.Errorf("parsing lifecycle.reconcile_schedule: %w", err)
	}
	tick := func() time.Time { return clk.Now().UTC().Truncate(time.Minute) }
	unique := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(utcSchedule{schedule}, func() (river.JobArgs, *river.InsertOpts) {
			return jobargs.ReconcileTrials{V: jobargs.Version, Tick: tick()}, unique
		}, &river.PeriodicJobOpts{ID: jobargs.KindReconcileTrials}),
		river.NewPeriodicJob(utcSchedule{schedule}, func() (river.JobArgs, *river.InsertOpts) {
			return jobargs.RemoveUnpaidSignups{V: jobargs.Version, Tick: tick()}, unique
		}, &river.PeriodicJobOpts{ID: jobargs.KindRemoveUnpaid}),
		river.NewPeriodicJob(utcSchedule{pruneSchedule}, func() (river.JobArgs, *river.InsertOpts) {
			return jobargs.PruneOutbox{V: jobargs.Version, Tick: tick()}, unique
		}, &river.PeriodicJobOpts{ID: jobargs.KindPruneOutbox}),
		river.NewPeriodicJob(utcSchedule{pruneSchedule}, func() (river.JobArgs, *river.InsertOpts) {
			return jobargs.PruneEligibility{V: jobargs.Version, Tick: tick()}, unique
		}, &river.PeriodicJobOpts{ID: jobargs.KindPruneEligibility}),
	}, nil
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
