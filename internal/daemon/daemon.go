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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/billing"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/internal/enterprise"
	"github.com/trialsd/trialsd/internal/httpapi"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/metrics"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/signup"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/turnstile"
	"github.com/trialsd/trialsd/jobs"
)

// Options choose what this process runs.
type Options struct {
	// API serves HTTP; Workers runs River jobs. A process may do both.
	API, Workers bool
}

// Daemon is a wired trialsd.
type Daemon struct {
	cfg       *config.Config
	logger    *slog.Logger
	pool      *pgxpool.Pool
	opts      Options
	River     *river.Client[pgx.Tx]
	Lifecycle *lifecycle.Service
	Accounts  *accounts.Service
	Tokens    *accounts.Tokens
	Outbox    *outbox.Deliverer
	Metrics   *metrics.Metrics
	handler   http.Handler

	clock       clock.Clock
	stopRefresh context.CancelFunc
	refreshDone sync.WaitGroup

	riverUI *riverui.Handler

	// listening receives the API listener's address once it accepts requests.
	listening chan string
}

// New wires a daemon on pool. It starts nothing.
func New(cfg *config.Config, logger *slog.Logger, pool *pgxpool.Pool, clk clock.Clock, opts Options) (*Daemon, error) {
	workers := river.NewWorkers()
	m := metrics.New()
	m.WatchTransactionAborts(func() (int64, int64) {
		a := store.AbortsSoFar()
		return a.Deadlocks, a.SerializationFailures
	})
	client, err := newRiverClient(pool, cfg.River, cfg.Lifecycle, clk, logger, workers, opts.Workers, m.JobMiddleware(), &jobLogMiddleware{})
	if err != nil {
		return nil, err
	}
	writer := outbox.NewWriter(cfg.Webhooks.Endpoints, client, cfg.Webhooks.MaxAttempts)
	tokens := accounts.NewTokens(pool, clk, cfg.Auth)
	codes := signup.NewCodes(clk, writer)
	d := &Daemon{
		cfg: cfg, logger: logger, pool: pool, opts: opts,
		listening: make(chan string, 1),
		River:     client,
		Lifecycle: lifecycle.New(lifecycle.Deps{
			Pool: pool, Jobs: client, Clock: clk, Config: cfg.Lifecycle, Logger: logger,
			Webhooks: writer, Activation: codes,
		}),
		Accounts: accounts.New(pool, clk),
		Tokens:   tokens,
		Outbox:   outbox.NewDeliverer(pool, &http.Client{Timeout: cfg.Webhooks.Timeout}, cfg.Webhooks.Secret, clk, writer, mailSender(cfg.Email, clk, logger)),
		Metrics:  m,
		clock:    clk,
	}
	signups := signup.New(signup.Deps{Pool: pool, Clock: clk, Codes: codes, Lifecycle: d.Lifecycle, Logger: logger})
	// Workers are added after the client exists because they need the
	// service, which needs the client to enqueue; River reads the bundle
	// when it starts working.
	jobs.Register(workers, jobs.Deps{
		Lifecycle: d.Lifecycle, Signup: signups, Outbox: d.Outbox, Clock: clk, Observer: d.Metrics,
		PendingPaymentTTL: cfg.Billing.PendingPaymentTTL,
	})

	if cfg.HTTP.RiverUI {
		d.riverUI, err = riverui.NewHandler(&riverui.HandlerOpts{
			Endpoints: riverui.NewEndpoints(client, nil),
			Logger:    logger.With("component", "riverui"),
			Prefix:    "/riverui",
		})
		if err != nil {
			return nil, fmt.Errorf("creating River UI: %w", err)
		}
	}
	var metricsOnAPI http.Handler
	if cfg.HTTP.MetricsAddr == "" {
		metricsOnAPI = d.Metrics.Handler()
	}
	d.handler = httpapi.NewServer(httpapi.Deps{
		Logger: logger, Config: cfg, Accounts: d.Accounts, Tokens: d.Tokens, Lifecycle: d.Lifecycle,
		Limits:    httpapi.NewLimits(cfg.Signup.RateLimit, clk),
		Turnstile: turnstile.New(&http.Client{Timeout: 10 * time.Second}, cfg.Turnstile),
		Billing: billing.New(billing.Deps{
			Pool: pool, Lifecycle: d.Lifecycle, Signup: signups, Clock: clk, Logger: logger,
			CallbackSecret: cfg.Billing.CallbackSecret,
		}),
		Enterprise: enterprise.New(pool, d.Lifecycle, clk),
		Signup:     signups,
		Ready:      d.Ready, Metrics: metricsOnAPI, Observer: m,
		RiverUI: riverUIHandler(d.riverUI),
	})
	return d, nil
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

// Start starts the workers (if enabled), the River UI (if enabled) and the
// metrics refresher.
func (d *Daemon) Start(ctx context.Context) error {
	if d.riverUI != nil {
		if err := d.riverUI.Start(ctx); err != nil {
			return fmt.Errorf("starting River UI: %w", err)
		}
	}
	if d.opts.Workers {
		if err := d.River.Start(ctx); err != nil {
			return fmt.Errorf("starting River: %w", err)
		}
	}
	refreshCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stopRefresh = cancel
	d.refreshDone.Add(1)
	go func() {
		defer d.refreshDone.Done()
		d.Metrics.RunRefresher(refreshCtx, d.cfg.Metrics.RefreshInterval, d.MetricSources(), d.logger)
	}()
	return nil
}

// Stop lets running jobs finish within river.shutdown_timeout, then cancels
// the rest (River retries them later), and stops the refresher.
func (d *Daemon) Stop(ctx context.Context) error {
	var err error
	if d.opts.Workers {
		stopCtx, cancel := context.WithTimeout(ctx, d.cfg.River.ShutdownTimeout)
		err = d.River.Stop(stopCtx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			d.logger.WarnContext(ctx, "jobs still running at shutdown timeout; cancelling them, River will retry them")
			hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err = d.River.StopAndCancel(hardCtx)
			cancel()
		}
		if err != nil {
			err = fmt.Errorf("stopping River: %w", err)
		}
	}
	if d.stopRefresh != nil {
		d.stopRefresh()
		d.refreshDone.Wait()
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
		err = serve(d.cfg.HTTP.MetricsAddr, d.Metrics.Handler(), "metrics")
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

// mailSender is the e-mail sender email.sender names.
func mailSender(cfg config.Email, clk clock.Clock, logger *slog.Logger) outbox.Sender {
	if cfg.Sender == "smtp" {
		return outbox.SMTPSender{Addr: cfg.SMTPAddr, From: cfg.From, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword, Clock: clk.Now}
	}
	return outbox.LogSender{Logger: logger}
}

// QueueStats reads the state of River's queues for the job gauges.
func (d *Daemon) QueueStats(ctx context.Context) (metrics.QueueStats, error) {
	q := store.New(d.pool)
	stats := metrics.QueueStats{Jobs: map[[2]string]int64{}, OldestAvailable: map[string]time.Duration{}}
	counts, err := q.UnfinishedJobCounts(ctx)
	if err != nil {
		return stats, err
	}
	for _, c := range counts {
		stats.Jobs[[2]string{c.Queue, c.State}] = c.N
	}
	now := d.clock.Now()
	oldest, err := q.OldestAvailableJobs(ctx)
	if err != nil {
		return stats, err
	}
	for queue, at := range oldest {
		stats.OldestAvailable[queue] = now.Sub(at)
	}
	stats.Leader, err = q.RiverLeaderElected(ctx, now)
	return stats, err
}

// MetricSources are the database reads behind the daemon's gauges.
func (d *Daemon) MetricSources() metrics.Sources {
	return metrics.Sources{TrialStates: d.Lifecycle.CountByState, Queues: d.QueueStats, Ready: d.Ready}
}

// riverUIHandler is nil when the UI is off, so no route is registered.
func riverUIHandler(h *riverui.Handler) http.Handler {
	if h == nil {
		return nil
	}
	return h
}
