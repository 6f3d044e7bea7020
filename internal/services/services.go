// Package services builds trialsd's domain services in one place. The daemon
// serves and works them, the operator commands call them, and the handler
// tests drive them; wiring them here once keeps all three alike, so an
// operator's `trialsd trials extend` obeys the same rules (and enqueues the
// same jobs) as the API.
package services

import (
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/billing"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/emails"
	"github.com/trialsd/trialsd/internal/enterprise"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/signup"
)

// Deps are what the services are built on.
type Deps struct {
	Config *config.Config
	Logger *slog.Logger
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	// Jobs enqueues, in the services' own transactions, the jobs their
	// changes cause. Whether it also works them is the caller's business.
	Jobs *river.Client[pgx.Tx]
	// Observer hears of every committed lifecycle change (the daemon's
	// metrics); nil for a process that exports none.
	Observer lifecycle.Observer
	// Emails hears of each trial notice sent or failed (the daemon's
	// metrics); nil: nobody.
	Emails outbox.EmailObserver
	// Refusals hears of each trial start the eligibility rules refused
	// (the daemon's metrics); nil: nobody.
	Refusals eligibility.Observer
	// Passwords hashes and checks passwords; nil: the daemon's,
	// accounts.NewPasswords. Tests of what is not about hashing pass
	// accounts.NewTestPasswords.
	Passwords *accounts.Passwords
}

// Services are the domain services of one process, sharing one pool, one
// clock and one job queue.
type Services struct {
	Lifecycle  *lifecycle.Service
	Accounts   *accounts.Service
	Tokens     *accounts.Tokens
	Signup     *signup.Service
	Billing    *billing.Service
	Enterprise *enterprise.Service
	// Webhooks writes lifecycle events and e-mails to the outbox; Outbox
	// delivers what it wrote.
	Webhooks *outbox.Writer
	Outbox   *outbox.Deliverer
	// Endpoints are the webhook endpoints, managed by admins at run time.
	Endpoints *outbox.Endpoints
	// Eligibility are the rules of who may start a trial, with the
	// admins' grants and the pre-flight.
	Eligibility *eligibility.Service
}

// New wires the services on d. It starts nothing and touches no database;
// an error is a setting that cannot work (an unreadable CA file, say).
func New(d Deps) (*Services, error) {
	cfg := d.Config
	pw := d.Passwords
	if pw == nil {
		pw = accounts.NewPasswords()
	}
	mail, err := mailSender(cfg.Email, d.Clock, d.Logger)
	if err != nil {
		return nil, err
	}
	notices, err := lifecycle.NewNotices(cfg.Email, cfg.Lifecycle.GracePeriod, emails.NewUnsubscribes(cfg.Auth.JWTSecret, cfg.Email.PublicURL))
	if err != nil {
		return nil, err
	}
	writer := outbox.NewWriter(d.Jobs, cfg.Email.MaxAttempts)
	codes := signup.NewCodes(d.Clock, writer)
	rules := eligibility.New(eligibility.Deps{
		Pool: d.Pool, Clock: d.Clock, Config: cfg.Eligibility, FreeEmailDomains: cfg.Signup.FreeEmailDomains,
		JWTSecret: cfg.Auth.JWTSecret, Logger: d.Logger, Observer: d.Refusals,
	})
	lc := lifecycle.New(lifecycle.Deps{
		Pool: d.Pool, Jobs: d.Jobs, Clock: d.Clock, Config: cfg.Lifecycle, Logger: d.Logger,
		Webhooks: writer, Activation: codes, Observer: d.Observer, TestClocks: cfg.TestClocks, Notices: notices,
		Eligibility: rules,
	})
	signups := signup.New(signup.Deps{
		Pool: d.Pool, Clock: d.Clock, Codes: codes, Lifecycle: lc, Passwords: pw,
		FreeEmailDomains: cfg.Signup.FreeEmailDomains, Logger: d.Logger,
	})
	return &Services{
		Lifecycle: lc,
		Accounts:  accounts.New(d.Pool, d.Clock, pw),
		Tokens:    accounts.NewTokens(d.Pool, d.Clock, cfg.Auth, pw),
		Signup:    signups,
		Billing: billing.New(billing.Deps{
			Pool: d.Pool, Lifecycle: lc, Signup: signups, Clock: d.Clock, Logger: d.Logger,
			CallbackSecret: cfg.Billing.CallbackSecret,
		}),
		Enterprise: enterprise.New(d.Pool, lc, d.Clock),
		Webhooks:   writer,
		Outbox: outbox.NewDeliverer(outbox.DelivererDeps{
			Pool: d.Pool, Clock: d.Clock, Writer: writer, Mail: mail,
			Config: cfg.Webhooks, Logger: d.Logger, Emails: d.Emails,
		}),
		Endpoints:   outbox.NewEndpoints(d.Pool, d.Clock, cfg.Webhooks, writer),
		Eligibility: rules,
	}, nil
}

// NewInsertOnly wires the services on d with a River client of its own that
// only inserts (d.Jobs is ignored): for a process that acts on trials (an
// operator command, a test of the handlers) while the daemon's workers run
// the jobs it causes.
func NewInsertOnly(d Deps) (*Services, error) {
	jobs, err := newRiverClient(d.Pool, RiverConfig(d.Config.River, d.Clock, d.Logger))
	if err != nil {
		return nil, err
	}
	d.Jobs = jobs
	return New(d)
}

// RiverConfig is River's config from the river.* settings, with no workers,
// queues or periodic jobs: all an insert-only client needs, and what a
// working client adds its work to, so both insert jobs alike.
func RiverConfig(cfg config.River, clk clock.Clock, logger *slog.Logger) *river.Config {
	rc := &river.Config{
		Logger:                      logger.With("component", "river"),
		FetchPollInterval:           cfg.FetchPollInterval,
		FetchCooldown:               cfg.FetchCooldown,
		JobTimeout:                  cfg.JobTimeout,
		RescueStuckJobsAfter:        cfg.RescueStuckJobsAfter,
		CompletedJobRetentionPeriod: cfg.CompletedRetention,
		MaxAttempts:                 cfg.MaxAttempts,
		PollOnly:                    cfg.PollOnly,
	}
	// A stubbed clock drives River's notion of "due" too, so tests can move
	// time; the real clock leaves River on the database's now().
	if tg, ok := clk.(rivertype.TimeGenerator); ok {
		rc.Test.Time = tg
	}
	return rc
}

// newRiverClient is River's client on pool, configured by rc.
func newRiverClient(pool *pgxpool.Pool, rc *river.Config) (*river.Client[pgx.Tx], error) {
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("creating River client: %w", err)
	}
	return client, nil
}

// mailSender is the e-mail sender email.sender names.
func mailSender(cfg config.Email, clk clock.Clock, logger *slog.Logger) (outbox.Sender, error) {
	if cfg.Sender == "smtp" {
		return outbox.NewSMTPSender(cfg, clk)
	}
	return outbox.LogSender{Logger: logger}, nil
}
