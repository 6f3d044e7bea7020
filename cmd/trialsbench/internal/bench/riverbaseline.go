package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/internal/jobargs"
)

// noopArgs is a job that does nothing: what River alone can do is the
// ceiling of any scheduler built on it.
type noopArgs struct{}

// Kind names the job in river_job.
func (noopArgs) Kind() string { return "trialsbench.noop" }

// InsertOpts puts it on the queue the daemon's transitions use.
func (noopArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobargs.QueueLifecycle} }

// RiverReport is scenario 2: River working no-op jobs with the daemon's
// queue settings.
type RiverReport struct {
	Meta
	River riverSettings `json:"river"`
	Jobs  int           `json:"jobs"`
	// Drain is the completions' span (finalized_at), as for the storm's backlog.
	Drain drain `json:"drain"`
	// ExpiryTransitionsPerSecond is the storm's backlog drain of this run
	// (0 when the storm did not run), and Ratio the one over the other.
	ExpiryTransitionsPerSecond float64 `json:"expiryTransitionsPerSecond"`
	Ratio                      float64 `json:"ratio"`
	Target                     float64 `json:"target"`
}

func (r *RiverReport) table() [][2]string {
	return [][2]string{
		{"river settings", r.River.String()},
		{"no-op jobs", fmt.Sprintf("%d pre-inserted: %s over %.2fs", r.Jobs, fmtRate(r.Drain.PerSecond, "jobs/s"), r.Drain.SpanS)},
		{"expiry transitions/s (storm backlog)", fmtRate(r.ExpiryTransitionsPerSecond, "/s")},
		{"ratio transitions/s ÷ no-op jobs/s", fmt.Sprintf("%.3f (target ≥ %.1f)", r.Ratio, r.Target)},
	}
}

func (h *harness) runRiver(ctx context.Context) (_ report, err error) {
	began := time.Now()
	n := h.opts.BurstTrials
	rep := &RiverReport{Meta: Meta{Scenario: ScenarioRiver, At: began}, Jobs: n, Target: 0.5}
	db, cfg, err := h.scenarioDB(ctx, ScenarioRiver, 4)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.Drop(context.WithoutCancel(ctx))) }()
	rep.Database = db.Name
	rep.River = settingsOf(cfg)
	// The pool the daemon would have.
	pool, err := database.Open(ctx, database.PoolConfig{URL: db.URL, MaxConns: cfg.Database.MaxConns})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[noopArgs]) error { return nil }))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:                      slog.New(warnOnly{h.log.Handler()}).With("component", "river"),
		Workers:                     workers,
		Queues:                      map[string]river.QueueConfig{jobargs.QueueLifecycle: {MaxWorkers: cfg.River.MaxWorkers}},
		FetchPollInterval:           cfg.River.FetchPollInterval,
		FetchCooldown:               cfg.River.FetchCooldown,
		JobTimeout:                  cfg.River.JobTimeout,
		RescueStuckJobsAfter:        cfg.River.RescueStuckJobsAfter,
		CompletedJobRetentionPeriod: cfg.River.CompletedRetention,
		MaxAttempts:                 cfg.River.MaxAttempts,
	})
	if err != nil {
		return nil, fmt.Errorf("creating River client: %w", err)
	}
	for done := 0; done < n; {
		batch := make([]river.InsertManyParams, min(10_000, n-done))
		for i := range batch {
			batch[i] = river.InsertManyParams{Args: noopArgs{}}
		}
		if _, err := client.InsertManyFast(ctx, batch); err != nil {
			return nil, fmt.Errorf("inserting no-op jobs: %w", err)
		}
		done += len(batch)
	}
	// Statistics, as the storm's tables get after loading.
	if _, err := db.Pool.Exec(ctx, `ANALYZE river_job`); err != nil {
		return nil, fmt.Errorf("analyzing river_job: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting River: %w", err)
	}
	waitErr := waitUntil(ctx, h.opts.Timeout, 100*time.Millisecond, "every no-op job to complete", jobsDone(db.Pool, noopArgs{}.Kind()))
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return nil, errors.Join(waitErr, fmt.Errorf("stopping River: %w", err))
	}
	if waitErr != nil {
		return nil, waitErr
	}
	rep.Drain, err = drainOf(ctx, db.Pool, `SELECT count(*)::int, min(finalized_at), max(finalized_at)
		FROM river_job WHERE kind = $1 AND state = 'completed'`, noopArgs{}.Kind())
	if err != nil {
		return nil, err
	}
	rep.ElapsedS = round1(time.Since(began).Seconds())
	return rep, nil
}

// withStorm sets the ratio to the storm's backlog drain of the same run.
func (r *RiverReport) withStorm(storm *StormReport) {
	r.ExpiryTransitionsPerSecond = storm.TransitionsPerSecond
	r.Ratio = ratio(r.ExpiryTransitionsPerSecond, r.Drain.PerSecond)
}

// warnOnly quietens River's periodic info lines in the harness's output.
type warnOnly struct{ slog.Handler }

// Enabled passes warnings and errors only.
func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}
