package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// secrets are the settings config.yaml leaves for the operator to supply.
var secrets = map[string]string{"TRIALSD_AUTH_JWT_SECRET": testSecret, "TRIALSD_TURNSTILE_SECRET": testSecret}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// The shipped config.yaml must list every key with exactly the code's default,
// or the documentation operators read would lie.
func TestConfigYAMLMatchesDefaults(t *testing.T) {
	t.Parallel()

	cfg, err := Load([]string{"../../config.yaml"}, env(secrets))
	if err != nil {
		t.Fatalf("Load(config.yaml): %v", err)
	}
	want := Default()
	want.Auth.JWTSecret = testSecret
	want.Turnstile.Secret = testSecret
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config.yaml differs from the defaults in code:\n got %+v\nwant %+v", cfg, want)
	}

	raw, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name := range Keys() {
		leaf := name[strings.LastIndex(name, ".")+1:]
		indent := strings.Repeat("  ", strings.Count(name, "."))
		if !strings.Contains(string(raw), "\n"+indent+leaf+":") {
			t.Errorf("config.yaml does not document %s", name)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Parallel()

	cfg, err := Load(nil, env(map[string]string{
		"TRIALSD_AUTH_JWT_SECRET":           testSecret,
		"TRIALSD_DATABASE_URL":              "postgres://x@db:5432/t",
		"TRIALSD_DATABASE_MAX_CONNS":        "7",
		"TRIALSD_LIFECYCLE_GRACE_PERIOD":    "1h",
		"TRIALSD_LIFECYCLE_REMINDER_BEFORE": "72h, 24h",
		"TRIALSD_HTTP_TRUSTED_PROXIES":      "10.0.0.0/8,192.168.1.0/24",
		"TRIALSD_SIGNUP_RATE_LIMIT":         "5/s",
		"TRIALSD_TURNSTILE_ENABLED":         "false",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Database.URL != "postgres://x@db:5432/t" || cfg.Database.MaxConns != 7 {
		t.Errorf("database = %+v", cfg.Database)
	}
	if cfg.Lifecycle.GracePeriod != time.Hour {
		t.Errorf("grace period = %v", cfg.Lifecycle.GracePeriod)
	}
	if want := []time.Duration{72 * time.Hour, 24 * time.Hour}; !reflect.DeepEqual(cfg.Lifecycle.ReminderBefore, want) {
		t.Errorf("reminder_before = %v, want %v", cfg.Lifecycle.ReminderBefore, want)
	}
	if len(cfg.HTTP.TrustedProxies) != 2 {
		t.Errorf("trusted proxies = %v", cfg.HTTP.TrustedProxies)
	}
	if cfg.Signup.RateLimit != (RateLimit{Events: 5, Per: time.Second}) {
		t.Errorf("rate limit = %v", cfg.Signup.RateLimit)
	}
	if cfg.Turnstile.Enabled {
		t.Error("turnstile.enabled not overridden")
	}
}

func TestLaterFilesOverrideEarlier(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	overlay := filepath.Join(dir, "overlay.yaml")
	if err := os.WriteFile(overlay, []byte("log:\n  level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"../../config.yaml", overlay}, env(secrets))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "debug" || cfg.Log.Format != "json" {
		t.Fatalf("log = %+v, want level from overlay and format from base", cfg.Log)
	}
}

func TestBadValuesNameTheKey(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		env     map[string]string
		file    string
		wantKey string
	}{
		{name: "bad duration", env: map[string]string{"TRIALSD_LIFECYCLE_GRACE_PERIOD": "30 days"}, wantKey: "lifecycle.grace_period"},
		{name: "negative duration", env: map[string]string{"TRIALSD_RIVER_JOB_TIMEOUT": "-1s"}, wantKey: "river.job_timeout"},
		{name: "bad url", env: map[string]string{"TRIALSD_TURNSTILE_VERIFY_URL": "not a url"}, wantKey: "turnstile.verify_url"},
		{name: "relative redirect origin", env: map[string]string{"TRIALSD_HTTP_REDIRECT_ORIGINS": "/here"}, wantKey: "http.redirect_origins"},
		{name: "bad cidr", env: map[string]string{"TRIALSD_HTTP_TRUSTED_PROXIES": "10.0.0.0/99"}, wantKey: "http.trusted_proxies"},
		{name: "bad cron", env: map[string]string{"TRIALSD_LIFECYCLE_RECONCILE_SCHEDULE": "every five minutes"}, wantKey: "lifecycle.reconcile_schedule"},
		{name: "bad int", env: map[string]string{"TRIALSD_DATABASE_MAX_CONNS": "many"}, wantKey: "database.max_conns"},
		{name: "zero workers", env: map[string]string{"TRIALSD_RIVER_MAX_WORKERS": "0"}, wantKey: "river.max_workers"},
		{name: "bad rate", env: map[string]string{"TRIALSD_SIGNUP_RATE_LIMIT": "10 per minute"}, wantKey: "signup.rate_limit"},
		{name: "bad log format", env: map[string]string{"TRIALSD_LOG_FORMAT": "xml"}, wantKey: "log.format"},
		{name: "missing jwt secret", env: map[string]string{"TRIALSD_AUTH_JWT_SECRET": ""}, wantKey: "auth.jwt_secret"},
		{name: "turnstile without secret", env: map[string]string{"TRIALSD_TURNSTILE_ENABLED": "true"}, wantKey: "turnstile.secret"},
		{name: "backstop within a sweep's poll", env: map[string]string{"TRIALSD_LIFECYCLE_EXPIRE_BACKSTOP": "100ms"}, wantKey: "lifecycle.expire_backstop"},
		{name: "rescue shorter than timeout", env: map[string]string{"TRIALSD_RIVER_RESCUE_STUCK_JOBS_AFTER": "10s"}, wantKey: "river.rescue_stuck_jobs_after"},
		{name: "webhook secret not whsec_ base64", env: map[string]string{"TRIALSD_WEBHOOKS_SECRET": "my-shared-secret"}, wantKey: "webhooks.secret"},
		{name: "webhook secret not base64", env: map[string]string{"TRIALSD_WEBHOOKS_SECRET": "whsec_0123456789"}, wantKey: "webhooks.secret"},
		{name: "bad retry schedule", env: map[string]string{"TRIALSD_WEBHOOKS_RETRY_SCHEDULE": "5s,soon"}, wantKey: "webhooks.retry_schedule"},
		{name: "jitter above 1", env: map[string]string{"TRIALSD_WEBHOOKS_RETRY_JITTER": "1.5"}, wantKey: "webhooks.retry_jitter"},
		{name: "smtp relay without a port", env: map[string]string{"TRIALSD_EMAIL_SENDER": "smtp", "TRIALSD_EMAIL_SMTP_ADDR": "mail.example.com"}, wantKey: "email.smtp_addr"},
		{name: "from not an address", env: map[string]string{"TRIALSD_EMAIL_FROM": "trialsd"}, wantKey: "email.from"},
		{name: "unknown smtp tls mode", env: map[string]string{"TRIALSD_EMAIL_SMTP_TLS": "ssl"}, wantKey: "email.smtp_tls"},
		{name: "unknown key in file", file: "lifecycle:\n  grace_periode: 1h\n", wantKey: "lifecycle.grace_periode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			e := map[string]string{"TRIALSD_AUTH_JWT_SECRET": testSecret, "TRIALSD_TURNSTILE_ENABLED": "false"}
			for k, v := range tt.env {
				e[k] = v
			}
			var files []string
			if tt.file != "" {
				f := filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(f, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
			}
			cfg, err := Load(files, env(e))
			if err == nil {
				err = cfg.ValidateForServe()
			}
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("error %q does not name %s", err, tt.wantKey)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	t.Parallel()

	if _, err := Load([]string{"/nonexistent/trialsd.yaml"}, env(nil)); err == nil {
		t.Fatal("want an error for a missing config file")
	}
}

// River's UI follows the console unless http.riverui says otherwise, from
// a file or the environment.
func TestRiverUIFollowsTheConsole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env           map[string]string
		console, want bool
	}{
		{env: map[string]string{}, want: false},
		{env: map[string]string{"TRIALSD_CONSOLE_ENABLED": "true"}, console: true, want: true},
		{env: map[string]string{"TRIALSD_CONSOLE_ENABLED": "true", "TRIALSD_HTTP_RIVERUI": "false"}, console: true, want: false},
		{env: map[string]string{"TRIALSD_HTTP_RIVERUI": "true"}, want: true},
		{env: map[string]string{"TRIALSD_HTTP_RIVERUI": "Auto", "TRIALSD_CONSOLE_ENABLED": "1"}, console: true, want: true},
	} {
		cfg, err := Load(nil, env(tc.env))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if cfg.Console.Enabled != tc.console || cfg.HTTP.RiverUI != tc.want {
			t.Errorf("%v: console %v, riverui %v; want %v, %v", tc.env, cfg.Console.Enabled, cfg.HTTP.RiverUI, tc.console, tc.want)
		}
	}
	if _, err := Load(nil, env(map[string]string{"TRIALSD_HTTP_RIVERUI": "sometimes"})); err == nil || !strings.Contains(err.Error(), "http.riverui") {
		t.Errorf("riverui=sometimes: %v", err)
	}
}

// Every key is named, as `section.key`, on a page of the documentation
// (README.md or docs/), where what it changes is explained; config.yaml
// alone lists it with its default. A new key without a word in the docs
// fails here.
func TestDocsNameEveryKey(t *testing.T) {
	t.Parallel()
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var docs strings.Builder
	for _, p := range append(pages, "../../README.md") {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(raw)
	}
	for name := range Keys() {
		if !strings.Contains(docs.String(), "`"+name+"`") && !strings.Contains(docs.String(), "`"+name+":") {
			t.Errorf("no page of README.md or docs/ names `%s`: say there what it changes", name)
		}
	}
}
