package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/spf13/cast"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// key is one configuration setting: its name, its default as it would be
// written in YAML, and how to store a value of it into a Config.
type key struct {
	name  string
	def   any
	parse func(c *Config, raw any) error
}

// defaultFreeEmailDomains are refused for enterprise trials unless the
// operator replaces the list.
var defaultFreeEmailDomains = []string{
	"gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com",
	"hotmail.com", "hotmail.co.uk", "outlook.com", "live.com", "msn.com",
	"aol.com", "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com",
	"gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "mail.ru", "yandex.com",
	"yandex.ru", "zoho.com", "qq.com", "163.com", "126.com",
}

// The River defaults differ from River's own (100 workers, 100 ms cooldown,
// 1 s poll), which cap a queue's throughput and let expiry lag up to a
// second behind; docs/performance.md ("River's own defaults") has the
// figures, side by side.
var keys = []key{
	{"database.url", "postgres://postgres@127.0.0.1:5432/trialsd?sslmode=disable", str(func(c *Config) *string { return &c.Database.URL })},
	{"database.max_conns", 20, func(c *Config, raw any) error {
		n, err := positiveInt(raw)
		c.Database.MaxConns = int32(n)
		return err
	}},
	{"database.migrate_url", "", str(func(c *Config) *string { return &c.Database.MigrateURL })},

	{"http.addr", "127.0.0.1:4800", str(func(c *Config) *string { return &c.HTTP.Addr })},
	{"http.metrics_addr", "", str(func(c *Config) *string { return &c.HTTP.MetricsAddr })},
	{"http.pprof_addr", "", str(func(c *Config) *string { return &c.HTTP.PprofAddr })},
	{"http.trusted_proxies", []string{}, func(c *Config, raw any) error {
		c.HTTP.TrustedProxies = nil
		for _, s := range list(raw) {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("%q is not a CIDR: %w", s, err)
			}
			c.HTTP.TrustedProxies = append(c.HTTP.TrustedProxies, p)
		}
		return nil
	}},
	{"http.redirect_origins", []string{"https://studio.edgeimpulse.com"}, urls(func(c *Config) *[]string { return &c.HTTP.RedirectOrigins }, "/")},
	{"http.read_header_timeout", "5s", dur(func(c *Config) *time.Duration { return &c.HTTP.ReadHeaderTimeout })},
	{"http.read_timeout", "15s", dur(func(c *Config) *time.Duration { return &c.HTTP.ReadTimeout })},
	{"http.write_timeout", "30s", dur(func(c *Config) *time.Duration { return &c.HTTP.WriteTimeout })},
	{"http.idle_timeout", "60s", dur(func(c *Config) *time.Duration { return &c.HTTP.IdleTimeout })},
	{"http.shutdown_timeout", "20s", dur(func(c *Config) *time.Duration { return &c.HTTP.ShutdownTimeout })},
	{"http.riverui", "auto", func(c *Config, raw any) (err error) {
		if s, ok := raw.(string); ok && strings.EqualFold(strings.TrimSpace(s), "auto") {
			c.HTTP.RiverUI, c.HTTP.riverUIAuto = false, true
			return nil
		}
		c.HTTP.riverUIAuto = false
		if c.HTTP.RiverUI, err = cast.ToBoolE(raw); err != nil {
			return fmt.Errorf("must be true, false or auto: %w", err)
		}
		return nil
	}},
	// After http.riverui, whose auto it settles.
	{"console.enabled", false, func(c *Config, raw any) (err error) {
		c.Console.Enabled, err = cast.ToBoolE(raw)
		if c.HTTP.riverUIAuto {
			c.HTTP.RiverUI = c.Console.Enabled
		}
		return err
	}},

	{"lifecycle.trial_length", "336h", dur(func(c *Config) *time.Duration { return &c.Lifecycle.TrialLength })},
	{"lifecycle.grace_period", "720h", dur(func(c *Config) *time.Duration { return &c.Lifecycle.GracePeriod })},
	{"lifecycle.purge_after", "720h", dur(func(c *Config) *time.Duration { return &c.Lifecycle.PurgeAfter })},
	{"lifecycle.reminder_before", []string{"72h"}, durs(func(c *Config) *[]time.Duration { return &c.Lifecycle.ReminderBefore })},
	{"lifecycle.reconcile_schedule", "*/5 * * * *", func(c *Config, raw any) error {
		s := cast.ToString(raw)
		if _, err := cron.ParseStandard(s); err != nil {
			return fmt.Errorf("%q is not a cron expression: %w", s, err)
		}
		c.Lifecycle.ReconcileSchedule = s
		return nil
	}},
	{"lifecycle.reconcile_horizon", "1h", dur(func(c *Config) *time.Duration { return &c.Lifecycle.ReconcileHorizon })},
	{"lifecycle.expire_batch", 200, func(c *Config, raw any) (err error) {
		c.Lifecycle.ExpireBatch, err = positiveInt(raw)
		return err
	}},
	{"lifecycle.expire_poll", "100ms", durOrOff(func(c *Config) *time.Duration { return &c.Lifecycle.ExpirePoll })},
	{"lifecycle.expire_backstop", "30s", dur(func(c *Config) *time.Duration { return &c.Lifecycle.ExpireBackstop })},

	{"river.max_workers", 200, func(c *Config, raw any) (err error) {
		c.River.MaxWorkers, err = positiveInt(raw)
		return err
	}},
	{"river.expiry_workers", 4, func(c *Config, raw any) (err error) {
		c.River.ExpiryWorkers, err = positiveInt(raw)
		return err
	}},
	{"river.outbox_workers", 50, func(c *Config, raw any) (err error) {
		c.River.OutboxWorkers, err = positiveInt(raw)
		return err
	}},
	{"river.email_workers", 10, func(c *Config, raw any) (err error) {
		c.River.EmailWorkers, err = positiveInt(raw)
		return err
	}},
	{"river.test_clock_workers", 4, func(c *Config, raw any) (err error) {
		c.River.TestClockWorkers, err = positiveInt(raw)
		return err
	}},
	{"river.fetch_poll_interval", "250ms", dur(func(c *Config) *time.Duration { return &c.River.FetchPollInterval })},
	{"river.fetch_cooldown", "20ms", dur(func(c *Config) *time.Duration { return &c.River.FetchCooldown })},
	{"river.job_timeout", "30s", dur(func(c *Config) *time.Duration { return &c.River.JobTimeout })},
	{"river.rescue_stuck_jobs_after", "1m", dur(func(c *Config) *time.Duration { return &c.River.RescueStuckJobsAfter })},
	{"river.completed_retention", "24h", dur(func(c *Config) *time.Duration { return &c.River.CompletedRetention })},
	{"river.max_attempts", 25, func(c *Config, raw any) (err error) {
		c.River.MaxAttempts, err = positiveInt(raw)
		return err
	}},
	{"river.shutdown_timeout", "30s", dur(func(c *Config) *time.Duration { return &c.River.ShutdownTimeout })},
	{"river.poll_only", false, boolean(func(c *Config) *bool { return &c.River.PollOnly })},

	{"signup.free_email_domains", defaultFreeEmailDomains, func(c *Config, raw any) error {
		c.Signup.FreeEmailDomains = nil
		for _, s := range list(raw) {
			c.Signup.FreeEmailDomains = append(c.Signup.FreeEmailDomains, strings.ToLower(s))
		}
		return nil
	}},
	{"signup.rate_limit", "10/m", func(c *Config, raw any) (err error) {
		c.Signup.RateLimit, err = parseRateLimit(cast.ToString(raw))
		return err
	}},

	{"eligibility.one_per_address", true, boolean(func(c *Config) *bool { return &c.Eligibility.OnePerAddress })},
	{"eligibility.active_per_domain", 1, limit(func(c *Config) *int { return &c.Eligibility.ActivePerDomain })},
	{"eligibility.trials_per_domain", 3, limit(func(c *Config) *int { return &c.Eligibility.TrialsPerDomain })},
	{"eligibility.domain_window", "8760h", dur(func(c *Config) *time.Duration { return &c.Eligibility.DomainWindow })},
	{"eligibility.exempt_domains", []string{}, domains(func(c *Config) *[]string { return &c.Eligibility.ExemptDomains })},
	{"eligibility.block_disposable", true, boolean(func(c *Config) *bool { return &c.Eligibility.BlockDisposable })},
	{"eligibility.disposable_add", []string{}, domains(func(c *Config) *[]string { return &c.Eligibility.DisposableAdd })},
	{"eligibility.disposable_remove", []string{}, domains(func(c *Config) *[]string { return &c.Eligibility.DisposableRemove })},
	{"eligibility.history_retention", "26280h", dur(func(c *Config) *time.Duration { return &c.Eligibility.HistoryRetention })},
	{"eligibility.history_key", "", str(func(c *Config) *string { return &c.Eligibility.HistoryKey })},
	{"eligibility.preflight_rate_limit", "30/m", func(c *Config, raw any) (err error) {
		c.Eligibility.PreflightRateLimit, err = parseRateLimit(cast.ToString(raw))
		return err
	}},

	{"turnstile.enabled", true, boolean(func(c *Config) *bool { return &c.Turnstile.Enabled })},
	{"turnstile.secret", "", str(func(c *Config) *string { return &c.Turnstile.Secret })},
	{"turnstile.verify_url", "https://challenges.cloudflare.com/turnstile/v0/siteverify", absoluteURL(func(c *Config) *string { return &c.Turnstile.VerifyURL })},
	{"turnstile.timeout", "10s", dur(func(c *Config) *time.Duration { return &c.Turnstile.Timeout })},

	{"test_clocks.enabled", false, boolean(func(c *Config) *bool { return &c.TestClocks.Enabled })},
	{"test_clocks.retention", "720h", dur(func(c *Config) *time.Duration { return &c.TestClocks.Retention })},
	{"test_clocks.max_trials", 100, func(c *Config, raw any) (err error) {
		c.TestClocks.MaxTrials, err = positiveInt(raw)
		return err
	}},
	{"test_clocks.max_advance", "17520h", dur(func(c *Config) *time.Duration { return &c.TestClocks.MaxAdvance })},

	{"auth.jwt_secret", "", str(func(c *Config) *string { return &c.Auth.JWTSecret })},
	{"auth.jwt_ttl", "24h", dur(func(c *Config) *time.Duration { return &c.Auth.JWTTTL })},
	{"auth.jwt_issuer", "trialsd", str(func(c *Config) *string { return &c.Auth.JWTIssuer })},

	{"billing.callback_secret", "", str(func(c *Config) *string { return &c.Billing.CallbackSecret })},
	{"billing.pending_payment_ttl", "168h", dur(func(c *Config) *time.Duration { return &c.Billing.PendingPaymentTTL })},

	{"webhooks.endpoints", []string{}, urls(func(c *Config) *[]string { return &c.Webhooks.Endpoints }, "")},
	{"webhooks.secret", "", func(c *Config, raw any) error {
		s := strings.TrimSpace(cast.ToString(raw))
		c.Webhooks.Secret = s
		if s == "" {
			return nil
		}
		// The Standard Webhooks library's own reading of a secret: what it
		// refuses, no receiver could verify with.
		if _, err := standardwebhooks.NewWebhook(s); err != nil || !strings.HasPrefix(s, "whsec_") {
			return errors.New("must be whsec_ followed by base64 (trialsd webhooks endpoints add prints one)")
		}
		return nil
	}},
	{"webhooks.retry_schedule", []string{"5s", "5m", "30m", "2h", "5h", "10h", "10h"}, func(c *Config, raw any) error {
		c.Webhooks.RetrySchedule = nil
		for _, s := range list(raw) {
			d, err := parsePositiveDuration(s)
			if err != nil {
				return err
			}
			c.Webhooks.RetrySchedule = append(c.Webhooks.RetrySchedule, d)
		}
		return nil
	}},
	{"webhooks.retry_jitter", 0.1, func(c *Config, raw any) error {
		f, err := cast.ToFloat64E(raw)
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("%v is not a fraction between 0 and 1", raw)
		}
		c.Webhooks.RetryJitter = f
		return nil
	}},
	{"webhooks.retry_after_max", "1h", dur(func(c *Config) *time.Duration { return &c.Webhooks.RetryAfterMax })},
	{"webhooks.disable_after", "120h", dur(func(c *Config) *time.Duration { return &c.Webhooks.DisableAfter })},
	{"webhooks.rotation_overlap", "24h", dur(func(c *Config) *time.Duration { return &c.Webhooks.RotationOverlap })},
	{"webhooks.allow_private_networks", false, boolean(func(c *Config) *bool { return &c.Webhooks.AllowPrivateNetworks })},
	{"webhooks.timeout", "15s", dur(func(c *Config) *time.Duration { return &c.Webhooks.Timeout })},
	{"webhooks.endpoint_concurrency", 4, func(c *Config, raw any) (err error) {
		c.Webhooks.EndpointConcurrency, err = positiveInt(raw)
		return err
	}},

	{"outbox.delivered_retention", "720h", durOrOff(func(c *Config) *time.Duration { return &c.Outbox.DeliveredRetention })},

	{"email.sender", "log", oneOf(func(c *Config) *string { return &c.Email.Sender }, "log", "smtp")},
	{"email.from", "trialsd <no-reply@localhost>", str(func(c *Config) *string { return &c.Email.From })},
	{"email.smtp_addr", "", str(func(c *Config) *string { return &c.Email.SMTPAddr })},
	{"email.smtp_username", "", str(func(c *Config) *string { return &c.Email.SMTPUsername })},
	{"email.smtp_password", "", str(func(c *Config) *string { return &c.Email.SMTPPassword })},
	{"email.smtp_tls", SMTPOpportunisticTLS, oneOf(func(c *Config) *string { return &c.Email.SMTPTLS },
		SMTPOpportunisticTLS, SMTPStartTLS, SMTPImplicitTLS, SMTPNoTLS)},
	{"email.smtp_ca_file", "", str(func(c *Config) *string { return &c.Email.SMTPCAFile })},
	{"email.smtp_timeout", "30s", dur(func(c *Config) *time.Duration { return &c.Email.SMTPTimeout })},
	{"email.max_attempts", 12, func(c *Config, raw any) (err error) {
		c.Email.MaxAttempts, err = positiveInt(raw)
		return err
	}},
	{"email.notices.welcome", true, boolean(func(c *Config) *bool { return &c.Email.Notices.Welcome })},
	{"email.notices.ending_before", []string{"168h", "24h"}, durs(func(c *Config) *[]time.Duration { return &c.Email.Notices.EndingBefore })},
	{"email.notices.expired", true, boolean(func(c *Config) *bool { return &c.Email.Notices.Expired })},
	{"email.notices.deletion_before", []string{"168h", "24h"}, durs(func(c *Config) *[]time.Duration { return &c.Email.Notices.DeletionBefore })},
	{"email.notices.deleted", true, boolean(func(c *Config) *bool { return &c.Email.Notices.Deleted })},
	{"email.notices.upgraded", true, boolean(func(c *Config) *bool { return &c.Email.Notices.Upgraded })},
	{"email.notices.recipients", []string{RecipientUser, RecipientAdmins}, func(c *Config, raw any) error {
		c.Email.Notices.ToUser, c.Email.Notices.ToAdmins = false, false
		for _, s := range list(raw) {
			switch strings.ToLower(s) {
			case RecipientUser:
				c.Email.Notices.ToUser = true
			case RecipientAdmins:
				c.Email.Notices.ToAdmins = true
			default:
				return fmt.Errorf("%q is not %s or %s", s, RecipientUser, RecipientAdmins)
			}
		}
		return nil
	}},
	{"email.public_url", "http://127.0.0.1:4800", absoluteURL(func(c *Config) *string { return &c.Email.PublicURL })},
	{"email.templates_dir", "", str(func(c *Config) *string { return &c.Email.TemplatesDir })},
	{"email.links.upgrade_url", "https://studio.edgeimpulse.com/upgrade", absoluteURL(func(c *Config) *string { return &c.Email.Links.UpgradeURL })},
	{"email.links.export_url", "https://studio.edgeimpulse.com/export", absoluteURL(func(c *Config) *string { return &c.Email.Links.ExportURL })},
	{"email.links.support", "support@localhost", str(func(c *Config) *string { return &c.Email.Links.Support })},

	{"log.format", "json", oneOf(func(c *Config) *string { return &c.Log.Format }, "json", "text")},
	{"log.level", "info", oneOf(func(c *Config) *string { return &c.Log.Level }, "debug", "info", "warn", "error")},

	{"metrics.refresh_interval", "15s", dur(func(c *Config) *time.Duration { return &c.Metrics.RefreshInterval })},
}

func str(field func(*Config) *string) func(*Config, any) error {
	return func(c *Config, raw any) error {
		s, err := cast.ToStringE(raw)
		*field(c) = strings.TrimSpace(s)
		return err
	}
}

// urls parses a list of absolute URLs, trimming trailing characters in trim
// (origins are compared without their trailing slash).
func urls(field func(*Config) *[]string, trim string) func(*Config, any) error {
	return func(c *Config, raw any) error {
		var out []string
		for _, s := range list(raw) {
			u, err := parseAbsoluteURL(s)
			if err != nil {
				return err
			}
			out = append(out, strings.TrimRight(u, trim))
		}
		*field(c) = out
		return nil
	}
}

func oneOf(field func(*Config) *string, allowed ...string) func(*Config, any) error {
	return func(c *Config, raw any) error {
		s := strings.ToLower(strings.TrimSpace(cast.ToString(raw)))
		for _, a := range allowed {
			if s == a {
				*field(c) = s
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
	}
}

// absoluteURL parses an absolute URL.
func absoluteURL(field func(*Config) *string) func(*Config, any) error {
	return func(c *Config, raw any) (err error) {
		*field(c), err = parseAbsoluteURL(strings.TrimSpace(cast.ToString(raw)))
		return err
	}
}

// durs parses a list of positive durations; an empty list is none.
func durs(field func(*Config) *[]time.Duration) func(*Config, any) error {
	return func(c *Config, raw any) error {
		*field(c) = nil
		for _, s := range list(raw) {
			d, err := parsePositiveDuration(s)
			if err != nil {
				return err
			}
			*field(c) = append(*field(c), d)
		}
		return nil
	}
}

// boolean parses true or false.
func boolean(field func(*Config) *bool) func(*Config, any) error {
	return func(c *Config, raw any) (err error) {
		*field(c), err = cast.ToBoolE(raw)
		return err
	}
}

func dur(field func(*Config) *time.Duration) func(*Config, any) error {
	return func(c *Config, raw any) (err error) {
		*field(c), err = parsePositiveDuration(cast.ToString(raw))
		return err
	}
}

// durOrOff is dur for a key whose 0 turns its feature off.
func durOrOff(field func(*Config) *time.Duration) func(*Config, any) error {
	return func(c *Config, raw any) error {
		d, err := time.ParseDuration(strings.TrimSpace(cast.ToString(raw)))
		if err == nil && d == 0 {
			*field(c) = 0
			return nil
		}
		return dur(field)(c, raw)
	}
}

func parsePositiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a Go duration such as 90s or 336h: %w", s, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return d, nil
}

// limit parses a count whose 0 means no limit.
func limit(field func(*Config) *int) func(*Config, any) error {
	return func(c *Config, raw any) error {
		n, err := cast.ToIntE(raw)
		if err != nil || n < 0 {
			return fmt.Errorf("%v is not a whole number from 0 (no limit) up", raw)
		}
		*field(c) = n
		return nil
	}
}

// domains parses a list of e-mail domains, lower-cased; a domain is at
// least one dot and no @.
func domains(field func(*Config) *[]string) func(*Config, any) error {
	return func(c *Config, raw any) error {
		*field(c) = nil
		for _, s := range list(raw) {
			d := strings.ToLower(strings.TrimSuffix(s, "."))
			if !strings.Contains(d, ".") || strings.ContainsAny(d, "@ /") {
				return fmt.Errorf("%q is not a domain such as example.com", s)
			}
			*field(c) = append(*field(c), d)
		}
		return nil
	}
}

func positiveInt(raw any) (int, error) {
	n, err := cast.ToIntE(raw)
	if err != nil {
		return 0, fmt.Errorf("%v is not a whole number", raw)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%d must be positive", n)
	}
	return n, nil
}

// list accepts a YAML list or a comma-separated string (the environment's form).
func list(raw any) []string {
	var items []string
	if s, ok := raw.(string); ok {
		items = strings.Split(s, ",")
	} else {
		items = cast.ToStringSlice(raw)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func parseRateLimit(s string) (RateLimit, error) {
	count, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return RateLimit{}, fmt.Errorf("%q is not of the form N/s, N/m or N/h", s)
	}
	n, err := strconv.Atoi(count)
	if err != nil || n <= 0 {
		return RateLimit{}, errors.New("the count before / must be a positive whole number")
	}
	per, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if !ok {
		return RateLimit{}, fmt.Errorf("unit %q is not s, m or h", unit)
	}
	return RateLimit{Events: n, Per: per}, nil
}
