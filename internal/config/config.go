// Package config loads trialsd's settings from YAML files and TRIALSD_*
// environment variables, and refuses to start on a value it cannot use.
//
// Every key is declared once in keys.go with its default; that single table
// drives viper's defaults (without which viper ignores the environment when
// unmarshalling), the environment binding and the validation messages.
package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// Config is the validated configuration of one trialsd process.
type Config struct {
	Database  Database
	HTTP      HTTP
	Lifecycle Lifecycle
	River     River
	Signup    Signup
	// Eligibility holds the rules of who may start a trial.
	Eligibility Eligibility
	Turnstile   Turnstile
	// TestClocks configures simulated time for rehearsing trials.
	TestClocks TestClocks
	Auth       Auth
	Billing    Billing
	Webhooks   Webhooks
	Outbox     Outbox
	Email      Email
	Log        Log
	Metrics    Metrics
	Console    Console
}

// Outbox configures what is kept of messages sent (webhooks, e-mails).
type Outbox struct {
	// DeliveredRetention is how long a delivered message, with its payload
	// and attempt log, is kept before the hourly sweep deletes it; 0
	// keeps them for ever. Longer than any event may be written again
	// (the outbox sends an event once per endpoint only while it holds
	// its row).
	DeliveredRetention time.Duration
}

// The modes of email.smtp_tls.
const (
	// SMTPOpportunisticTLS upgrades with STARTTLS when the relay offers it.
	SMTPOpportunisticTLS = "opportunistic"
	// SMTPStartTLS refuses a relay that does not offer STARTTLS.
	SMTPStartTLS = "starttls"
	// SMTPImplicitTLS speaks TLS from the first byte (port 465).
	SMTPImplicitTLS = "implicit"
	// SMTPNoTLS never encrypts: a relay on loopback, such as Mailpit.
	SMTPNoTLS = "none"
)

// Email configures how e-mails (activation codes) are sent.
type Email struct {
	// Sender is "log" (development: e-mails are logged) or "smtp".
	Sender       string
	From         string
	SMTPAddr     string
	SMTPUsername string
	SMTPPassword string
	// SMTPTLS is how the link to the relay is encrypted: one of the
	// SMTP*TLS modes.
	SMTPTLS string
	// SMTPCAFile, when set, is a PEM file of the certificates that sign
	// the relay's (a private CA), trusted instead of the system's.
	SMTPCAFile string
	// SMTPTimeout bounds one delivery's connection and conversation.
	SMTPTimeout time.Duration
	// MaxAttempts is how many times an e-mail is tried, with River's
	// backoff, before it is marked failed.
	MaxAttempts int
	// Notices are the lifecycle e-mails a trial's people get.
	Notices Notices
	// TemplatesDir holds templates that replace the embedded ones, by
	// file name; empty: the embedded ones.
	TemplatesDir string
	Links        EmailLinks
	// PublicURL is where the e-mails' readers reach the API: the base of
	// the unsubscribe links.
	PublicURL string
}

// The recipients of email.notices.recipients.
const (
	RecipientUser   = "user"
	RecipientAdmins = "admins"
)

// Notices say which lifecycle e-mails are sent, when, and to whom. A
// false or empty field switches its message off.
type Notices struct {
	Welcome, Expired, Deleted, Upgraded bool
	// EndingBefore are the reminders before the expiry; DeletionBefore
	// the warnings before the grace period's deletion.
	EndingBefore, DeletionBefore []time.Duration
	// ToUser and ToAdmins: the trial's user, its organization's admins.
	ToUser, ToAdmins bool
}

// EmailLinks are what the e-mails point their readers to.
type EmailLinks struct {
	UpgradeURL, ExportURL string
	// Support is the address the e-mails give for questions.
	Support string
}

// Database says where Postgres is and how many connections to hold.
type Database struct {
	URL      string
	MaxConns int32
	// MigrateURL, when set, is where migrations run instead of URL: a
	// direct connection to Postgres when URL goes through a pooler in
	// transaction mode, which cannot carry the session-level advisory lock
	// that keeps replicas from migrating at once.
	MigrateURL string
}

// MigrationURL is the URL migrations (and the creation of a missing
// database) connect to: MigrateURL, or URL when none is set.
func (d Database) MigrationURL() string {
	if d.MigrateURL != "" {
		return d.MigrateURL
	}
	return d.URL
}

// HTTP configures the API listener and its timeouts.
type HTTP struct {
	Addr        string
	MetricsAddr string
	// PprofAddr, when set, serves Go's profiler on a listener of its own,
	// never on the API's: profiles show internals and cost CPU on demand.
	PprofAddr         string
	TrustedProxies    []netip.Prefix
	RedirectOrigins   []string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	// RiverUI serves River's web UI at /riverui/, to admins only. Its key
	// http.riverui is true, false or auto (the default): auto follows
	// console.enabled, so the console's operators find River's jobs too.
	RiverUI bool
	// riverUIAuto is set while http.riverui is auto, until console.enabled
	// (parsed after it) decides.
	riverUIAuto bool
}

// Console configures the operator console, the admins' web UI at /console/.
type Console struct {
	// Enabled serves it; off, /console/ answers 404.
	Enabled bool
}

// Lifecycle holds the durations of the trial state machine.
type Lifecycle struct {
	TrialLength       time.Duration
	GracePeriod       time.Duration
	PurgeAfter        time.Duration
	ReminderBefore    []time.Duration
	ReconcileSchedule string
	// ReconcileHorizon is how far ahead the reconciler looks for transitions
	// without a job; it must exceed the interval between two sweeps.
	ReconcileHorizon time.Duration
	// ExpireBatch bounds how many due trials one expiry sweep claims and
	// expires in its transaction: one commit per expiry would cap a storm
	// at the commit rate.
	ExpireBatch int
	// ExpirePoll is how often each replica sweeps for due trials
	// (lifecycle.ExpireDue); a sweep that came back full goes again at
	// once. It bounds the expiry lag while a sweep keeps up. 0 turns
	// sweeping off: each trial then waits for its own expiry job.
	ExpirePoll time.Duration
	// ExpireBackstop is how long after its expiration date a trial's own
	// expiry job is due while the replicas sweep: a sweep that keeps up
	// expires the trial at its date and deletes the job long before it is
	// due, so the job runs only for a trial no sweep took in time, and
	// costs River nothing more until then.
	ExpireBackstop time.Duration
}

// River tunes the job queue that runs every transition.
type River struct {
	MaxWorkers int
	// ExpiryWorkers is how many expiry jobs run at once, on their own
	// queue. The sweeps do a storm's work and delete the jobs they did it
	// for; the jobs left are the backstop, one trial each.
	ExpiryWorkers int
	// OutboxWorkers is how many webhook deliveries run at once; each
	// endpoint takes at most webhooks.endpoint_concurrency of them.
	OutboxWorkers int
	// EmailWorkers is how many e-mails are sent at once, on their own
	// queue, which no webhook receiver can hold up.
	EmailWorkers int
	// TestClockWorkers is how many test-clock jobs (advances and the jobs
	// of the clocks' trials) run at once, on their own queue: rehearsals
	// take at most these workers and never the lifecycle queue's.
	TestClockWorkers     int
	FetchPollInterval    time.Duration
	FetchCooldown        time.Duration
	JobTimeout           time.Duration
	RescueStuckJobsAfter time.Duration
	CompletedRetention   time.Duration
	MaxAttempts          int
	ShutdownTimeout      time.Duration
	// PollOnly keeps River from LISTENing for new jobs and leader changes
	// and has it poll instead (every FetchPollInterval; a new leader within
	// seconds): LISTEN is session state, which a pooler in transaction mode
	// does not keep.
	PollOnly bool
}

// Signup configures the public sign-up endpoints.
type Signup struct {
	FreeEmailDomains []string
	RateLimit        RateLimit
}

// Eligibility configures who may start a trial: the rules every trial start
// is checked against, in the transaction that creates the trial.
type Eligibility struct {
	// OnePerAddress gives each normalized e-mail address one trial, for as
	// long as the history keeps it (HistoryRetention after the purge).
	OnePerAddress bool
	// ActivePerDomain is how many trials one company domain may have
	// active at a time; TrialsPerDomain how many it may start within
	// DomainWindow. 0: no limit.
	ActivePerDomain int
	TrialsPerDomain int
	DomainWindow    time.Duration
	// ExemptDomains have no domain limit (large customers); an admin can
	// set a domain's own limits at run time instead.
	ExemptDomains []string
	// BlockDisposable refuses addresses at the vendored list of
	// disposable e-mail domains, with DisposableAdd added to it and
	// DisposableRemove taken out.
	BlockDisposable  bool
	DisposableAdd    []string
	DisposableRemove []string
	// HistoryRetention is how long a purged trial's tombstone is kept.
	HistoryRetention time.Duration
	// HistoryKey keys the hash of the addresses in the history; empty: a
	// key derived from auth.jwt_secret (rotating that secret then forgets
	// the history of addresses, not of domains).
	HistoryKey string
	// PreflightRateLimit limits the anonymous eligibility pre-flight per
	// client address.
	PreflightRateLimit RateLimit
}

// RateLimit is a number of events allowed per period, e.g. "10/m".
type RateLimit struct {
	Events int
	Per    time.Duration
}

// String renders the limit the way it is written in config.
func (r RateLimit) String() string {
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return fmt.Sprintf("%d/%s", r.Events, unit)
}

// Turnstile configures server-side verification of Cloudflare Turnstile tokens.
type Turnstile struct {
	Enabled   bool
	Secret    string
	VerifyURL string
	// Timeout bounds one siteverify call, so a slow Cloudflare answers a
	// sign-up with 503 instead of holding its request open.
	Timeout time.Duration
}

// TestClocks configures test clocks: simulated time on which an admin
// rehearses a trial's whole life in seconds with the real jobs.
type TestClocks struct {
	// Enabled serves the test-clock routes and accepts testClockId; off in
	// production, where they answer 404.
	Enabled bool
	// Retention is how long (real time) a clock lives before it is deleted
	// with everything on it.
	Retention time.Duration
	// MaxTrials bounds the trials on one clock.
	MaxTrials int
	// MaxAdvance bounds how far one advance moves a clock.
	MaxAdvance time.Duration
}

// Auth configures login tokens.
type Auth struct {
	JWTSecret string
	JWTTTL    time.Duration
	JWTIssuer string
}

// Billing configures the payment provider's callback.
type Billing struct {
	CallbackSecret    string
	PendingPaymentTTL time.Duration
}

// Webhooks configures delivery of lifecycle events (docs/webhooks.md).
type Webhooks struct {
	// Endpoints are mirrored into the endpoint table at start, read-only,
	// and sign with Secret; the others are managed through the admin API.
	Endpoints []string
	Secret    string
	// RetrySchedule is the wait before each attempt after the first: a
	// delivery gets len(RetrySchedule)+1 attempts. Each wait grows by up to
	// RetryJitter of itself, so failed deliveries do not return in step.
	RetrySchedule []time.Duration
	RetryJitter   float64
	// RetryAfterMax caps how long a 429 or 503 answer's Retry-After makes a
	// delivery wait.
	RetryAfterMax time.Duration
	// DisableAfter disables an endpoint whose every attempt has failed for
	// this long.
	DisableAfter time.Duration
	// RotationOverlap is how long a rotated-out secret keeps signing.
	RotationOverlap time.Duration
	// AllowPrivateNetworks lets endpoints use plain http and loopback,
	// private, link-local and metadata addresses: tests and development.
	AllowPrivateNetworks bool
	Timeout              time.Duration
	// EndpointConcurrency is how many attempts to one endpoint may be in
	// flight from one process (one while the endpoint fails): a slow
	// endpoint then holds at most that many of the outbox queue's workers.
	EndpointConcurrency int
}

// Log configures log/slog output.
type Log struct {
	Format string
	Level  string
}

// Metrics configures how the database-backed gauges are refreshed.
type Metrics struct {
	// RefreshInterval is how often the job gauges, the trials' look-ahead
	// gauges and readiness are read; the look-ahead counts cost Postgres
	// time in proportion to the active trials.
	RefreshInterval time.Duration
}

// Load reads the files in order (later ones override earlier ones), then the
// environment through getenv, and validates the result. An error names the
// key at fault.
func Load(files []string, getenv func(string) string) (*Config, error) {
	v := viper.New()
	for _, k := range keys {
		v.SetDefault(k.name, k.def)
	}
	for i, f := range files {
		v.SetConfigFile(f)
		read := v.MergeInConfig
		if i == 0 {
			read = v.ReadInConfig
		}
		if err := read(); err != nil {
			return nil, fmt.Errorf("reading config file %s: %w", f, err)
		}
	}
	if err := checkUnknownKeys(v); err != nil {
		return nil, err
	}
	// Explicit lookups rather than viper.AutomaticEnv, so the environment is
	// injectable and tests do not depend on the process's variables.
	for _, k := range keys {
		if val := getenv(EnvName(k.name)); val != "" {
			v.Set(k.name, val)
		}
	}

	cfg := &Config{}
	for _, k := range keys {
		if err := k.parse(cfg, v.Get(k.name)); err != nil {
			return nil, fmt.Errorf("config key %s (env %s): %w", k.name, EnvName(k.name), err)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ValidateForServe checks what only a running daemon needs: the secrets.
// Operator commands (migrate, users, apikeys) run without them.
func (c *Config) ValidateForServe() error {
	checks := []check{
		{"auth.jwt_secret", len(c.Auth.JWTSecret) < 32, "must be set to at least 32 characters"},
		{"turnstile.secret", c.Turnstile.Enabled && c.Turnstile.Secret == "", "must be set while turnstile.enabled is true"},
	}
	return firstFailure(checks)
}

type check struct {
	key string
	bad bool
	msg string
}

func firstFailure(checks []check) error {
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("config key %s (env %s): %s", ch.key, EnvName(ch.key), ch.msg)
		}
	}
	return nil
}

// Default returns the configuration with every default and no secrets. It
// does not validate: a daemon needs at least auth.jwt_secret set.
func Default() *Config {
	cfg := &Config{}
	for _, k := range keys {
		if err := k.parse(cfg, k.def); err != nil {
			panic(fmt.Sprintf("default of %s does not parse: %v", k.name, err))
		}
	}
	return cfg
}

// EnvName is the environment variable that overrides a key.
func EnvName(key string) string {
	return "TRIALSD_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys lists every configuration key with its default as written in YAML.
func Keys() map[string]any {
	m := make(map[string]any, len(keys))
	for _, k := range keys {
		m[k.name] = k.def
	}
	return m
}

// checkUnknownKeys rejects misspelt keys in files, which would otherwise be
// silently ignored and leave the default in force.
func checkUnknownKeys(v *viper.Viper) error {
	known := Keys()
	for _, k := range v.AllKeys() {
		if _, ok := known[k]; !ok {
			return fmt.Errorf("config key %s is not a trialsd setting", k)
		}
	}
	return nil
}

// validate checks what every command needs to be coherent.
func (c *Config) validate() error {
	checks := []check{
		{"webhooks.secret", len(c.Webhooks.Endpoints) > 0 && c.Webhooks.Secret == "", "must be set when webhooks.endpoints is not empty"},
		{"email.smtp_addr", c.Email.Sender == "smtp" && !isHostPort(c.Email.SMTPAddr), "must be host:port when email.sender is smtp"},
		{"email.from", !isAddress(c.Email.From), "must be an e-mail address, optionally with a name: trialsd <no-reply@example.com>"},
		{"http.redirect_origins", len(c.HTTP.RedirectOrigins) == 0, "must list at least one origin"},
		{"lifecycle.expire_backstop", c.Lifecycle.ExpirePoll > 0 && c.Lifecycle.ExpireBackstop <= c.Lifecycle.ExpirePoll, "must be longer than lifecycle.expire_poll, or the expiry jobs race the sweeps they back up"},
		{"river.rescue_stuck_jobs_after", c.River.RescueStuckJobsAfter <= c.River.JobTimeout, "must be longer than river.job_timeout, or running jobs are rescued while alive"},
		{"eligibility.history_retention", c.Eligibility.HistoryRetention < c.Eligibility.DomainWindow, "must be at least eligibility.domain_window, or the window forgets trials it counts"},
	}
	return firstFailure(checks)
}

// isHostPort says s is host:port with a port from 1 to 65535.
func isHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n <= 65535
}

// isAddress says s is an RFC 5322 address.
func isAddress(s string) bool {
	_, err := mail.ParseAddress(s)
	return err == nil
}

func parseAbsoluteURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", s)
	}
	return s, nil
}
