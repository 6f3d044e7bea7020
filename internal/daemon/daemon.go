// Package daemon wires trialsd together: the pool, River, the domain
// services, the workers and the HTTP API, and runs them until told to stop.
// The serve command and the end-to-end tests build the daemon the same way.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"riverqueue.com/riverui"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/internal/httpapi"
	"github.com/trialsd/trialsd/internal/jobs"
	"github.com/trialsd/trialsd/internal/metrics"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/turnstile"
)

// Options choose what this process runs.
type Options struct {
	// API serves HTTP; Workers runs River jobs. A process may do both.
	API, Workers bool
}

// Daemon is a wired trialsd. What it wired stays inside: a process that only
// needs the domain services builds them with package services, not a daemon.
type Daemon struct {
	cfg      *config.Config
	logger   *slog.Logger
	pool     *pgxpool.Pool
	clock    clock.Clock
	opts     Options
	river    *river.Client[pgx.Tx]
	services *services.Services
	metrics  *metrics.Metrics
	// figures are the database reads behind the metrics' gauges.
	figures metrics.Database
	riverUI *riverui.Handler
	handler http.Handler

	// stopRefresh and stopSweeps stop the metrics refresher and the
	// expiry sweeps, and wait for them; nil while they do not run.
	stopRefresh, stopSweeps func()

	// listening receives the API listener's address once it accepts requests.
	listening chan string
}

// New wires a daemon on pool. It starts nothing.
func New(cfg *config.Config, logger *slog.Logger, pool *pgxpool.Pool, clk clock.Clock, opts Options) (*Daemon, error) {
	d := &Daemon{cfg: cfg, logger: logger, pool: pool, clock: clk, opts: opts, listening: make(chan string, 1)}
	d.metrics = newMetrics()
	workers := river.NewWorkers()
	client, err := newRiverClient(pool, riverSetup{
		cfg: cfg, clock: clk, logger: logger, workers: workers, work: opts.Workers,
		middleware: []rivertype.Middleware{d.metrics.JobMiddleware(), &jobLogMiddleware{}},
	})
	if err != nil {
		return nil, err
	}
	d.river = client
	if d.services, err = services.New(services.Deps{Config: cfg, Logger: logger, Pool: pool, Clock: clk, Jobs: client, Observer: d.metrics, Emails: d.metrics, Refusals: d.metrics}); err != nil {
		return nil, err
	}
	d.metrics.SetWorkersEnabled(opts.Workers)
	d.figures = metrics.NewDatabase(pool, clk)
	d.metrics.ReadTrialsFrom(d.figures.TrialFigures, logger)
	// Workers are added after the client exists because they need the
	// services, which need the client to enqueue; River reads the bundle
	// when it starts working.
	jobs.Register(workers, jobs.Deps{
		Lifecycle: d.services.Lifecycle, Signup: d.services.Signup, Outbox: d.services.Outbox,
		Clock: clk, Observer: d.metrics, PendingPaymentTTL: cfg.Billing.PendingPaymentTTL,
		OutboxRetention: cfg.Outbox.DeliveredRetention, Eligibility: d.services.Eligibility,
	})
	if d.riverUI, err = newRiverUI(cfg.HTTP, client, logger); err != nil {
		return nil, err
	}
	d.handler = d.newHandler()
	return d, nil
}

// newMetrics is the daemon's registry, with the store's transaction aborts
// watched.
func newMetrics() *metrics.Metrics {
	m := metrics.New()
	m.WatchStoreAborts()
	return m
}

// newRiverUI is River's web UI on client, or nil while http.riverui is off.
func newRiverUI(cfg config.HTTP, client *river.Client[pgx.Tx], logger *slog.Logger) (*riverui.Handler, error) {
	if !cfg.RiverUI {
		return nil, nil
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    logger.With("component", "riverui"),
		Prefix:    "/riverui",
	})
	if err != nil {
		return nil, fmt.Errorf("creating River UI: %w", err)
	}
	return h, nil
}

// newHandler is the HTTP API over the daemon's services. The metrics are
// served on the API only when they have no listener of their own.
func (d *Daemon) newHandler() http.Handler {
	limits := httpapi.NewLimits(d.cfg.Signup.RateLimit, d.cfg.Eligibility.PreflightRateLimit, d.clock)
	human := turnstile.New(&http.Client{Timeout: d.cfg.Turnstile.Timeout}, d.cfg.Turnstile)
	var metricsOnAPI http.Handler
	if d.cfg.HTTP.MetricsAddr == "" {
		metricsOnAPI = d.metrics.Handler()
	}
	s := d.services
	return httpapi.NewServer(httpapi.Deps{
		Logger: d.logger, Config: d.cfg,
		Accounts: s.Accounts, Tokens: s.Tokens, Lifecycle: s.Lifecycle, Eligibility: s.Eligibility,
		Billing: s.Billing, Enterprise: s.Enterprise, Signup: s.Signup, WebhookEndpoints: s.Endpoints,
		Limits: limits, Turnstile: human,
		Ready: d.Ready, Metrics: metricsOnAPI, Observer: d.metrics,
		RiverUI: riverUIHandler(d.riverUI), Clock: d.clock,
	})
}

// Listening delivers the API's address once Run accepts requests on it.
func (d *Daemon) Listening() <-chan string { return d.listening }

// Handler is the HTTP API.
func (d *Daemon) Handler() http.Handler { return d.handler }

// Ready reports why the daemon cannot serve, or nil.
func (d *Daemon) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := d.pool.Ping(ctx); err != nil {
		return errors.New("database unreachable")
	}
	pending, err := database.Pending(ctx, d.pool)
	if err != nil {
		return errors.New("cannot read migration state")
	}
	if pending {
		return errors.New("database migrations pending (run trialsd migrate up)")
	}
	return nil
}

// Start mirrors webhooks.endpoints into the endpoint table, adds the
// trials from before the eligibility history to it, then starts the
// workers (if enabled), the River UI (if enabled) and the metrics
// refresher.
func (d *Daemon) Start(ctx context.Context) error {
	if err := d.services.Endpoints.SyncConfig(ctx); err != nil {
		return err
	}
	if n, err := d.services.Eligibility.Backfill(ctx); err != nil {
		return err
	} else if n > 0 {
		d.logger.InfoContext(ctx, "eligibility history backfilled", "trials", n)
	}
	if d.riverUI != nil {
		if err := d.riverUI.Start(ctx); err != nil {
			return fmt.Errorf("starting River UI: %w", err)
		}
	}
	if d.opts.Workers {
		if err := d.river.Start(ctx); err != nil {
			return fmt.Errorf("starting River: %w", err)
		}
	}
	if d.opts.Workers && d.cfg.Lifecycle.ExpirePoll > 0 {
		sweeper := jobs.ExpirySweeper{
			Lifecycle: d.services.Lifecycle, Observer: d.metrics, Every: d.cfg.Lifecycle.ExpirePoll,
			Logger: d.logger.With("component", "expiry_sweep"),
		}
		d.stopSweeps = background(ctx, sweeper.Run)
	}
	d.stopRefresh = background(ctx, func(ctx context.Context) {
		d.metrics.RunRefresher(ctx, d.cfg.Metrics.RefreshInterval, d.MetricSources(), d.logger)
	})
	return nil
}

// background runs fn in a goroutine of its own, outliving ctx's
// cancellation, until the stop it returns is called; stop waits for fn to
// return.
func background(ctx context.Context, fn func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Stop ends the expiry sweeps (one under way rolls back: its trials keep
// their jobs), lets running jobs finish within river.shutdown_timeout, then
// cancels the rest (River retries them later), and stops the refresher.
func (d *Daemon) Stop(ctx context.Context) error {
	var err error
	if d.stopSweeps != nil {
		d.stopSweeps()
	}
	if d.opts.Workers {
		stopCtx, cancel := context.WithTimeout(ctx, d.cfg.River.ShutdownTimeout)
		err = d.river.Stop(stopCtx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			d.logger.WarnContext(ctx, "jobs still running at shutdown timeout; cancelling them, River will retry them")
			hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err = d.river.StopAndCancel(hardCtx)
			cancel()
		}
		if err != nil {
			err = fmt.Errorf("stopping River: %w", err)
		}
	}
	if d.stopRefresh != nil {
		d.stopRefresh()
	}
	return err
}

// Run serves until ctx is cancelled (SIGINT/SIGTERM), then shuts down
// gracefully: the listeners stop taking requests, in-flight requests get
// http.shutdown_timeout, running jobs get river.shutdown_timeout.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Start(ctx); err != nil {
		return err
	}
	var servers []*http.Server
	var apiAddr string
	errc := make(chan error, 3)
	serve := func(addr string, h http.Handler, name string) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listening for %s on %s: %w", name, addr, err)
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: d.cfg.HTTP.ReadHeaderTimeout,
			ReadTimeout:       d.cfg.HTTP.ReadTimeout,
			WriteTimeout:      d.cfg.HTTP.WriteTimeout,
			IdleTimeout:       d.cfg.HTTP.IdleTimeout,
			ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn),
		}
		servers = append(servers, srv)
		d.logger.InfoContext(ctx, "listening", "listener", name, "addr", ln.Addr().String())
		if name == "api" {
			apiAddr = ln.Addr().String()
		}
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serving %s: %w", name, err)
			}
		}()
		return nil
	}
	var err error
	if d.opts.API {
		err = serve(d.cfg.HTTP.Addr, d.handler, "api")
	}
	if err == nil && d.cfg.HTTP.MetricsAddr != "" {
		err = serve(d.cfg.HTTP.MetricsAddr, d.metrics.Handler(), "metrics")
	}
	if err == nil && d.cfg.HTTP.PprofAddr != "" {
		err = serve(d.cfg.HTTP.PprofAddr, pprofHandler(), "pprof")
	}
	if err == nil {
		// Only once every listener is bound: whoever waits for the API's
		// address may then reach the metrics and profiler ones too.
		if apiAddr != "" {
			d.listening <- apiAddr
		}
		d.logger.InfoContext(ctx, "trialsd ready", "api", d.opts.API, "workers", d.opts.Workers)
		select {
		case <-ctx.Done():
			d.logger.InfoContext(ctx, "shutting down")
		case err = <-errc:
		}
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if sErr := srv.Shutdown(shutdownCtx); sErr != nil {
			err = errors.Join(err, fmt.Errorf("shutting down HTTP: %w", sErr))
		}
	}
	return errors.Join(err, d.Stop(context.WithoutCancel(ctx)))
}

// MetricSources are the database reads behind the daemon's refreshed gauges.
func (d *Daemon) MetricSources() metrics.Sources {
	return metrics.Sources{Queues: d.figures.QueueStats, Upcoming: d.figures.Upcoming, Ready: d.Ready}
}

// riverUIHandler is nil when the UI is off, so no route is registered.
func riverUIHandler(h *riverui.Handler) http.Handler {
	if h == nil {
		return nil
	}
	return h
}
