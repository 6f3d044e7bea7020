package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/httpapi"
	"github.com/trialsd/trialsd/internal/metrics"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/testdb"
	"github.com/trialsd/trialsd/internal/turnstile"
)

var t0 = time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)

const (
	jwtSecret     = "test-secret-test-secret-test-secret"
	billingSecret = "billing-secret"
)

type testBundle struct {
	server  *httptest.Server
	pool    *pgxpool.Pool
	clock   *clock.Stub
	tokens  *accounts.Tokens
	metrics *metrics.Metrics
	admin   string
	ready   error
	// passwords are argon2id's cheapest: these tests are about the API,
	// not about hashing (internal/accounts holds the daemon's parameters).
	passwords *accounts.Passwords
	// services are the ones behind the handler, for a test to run what the
	// daemon's workers would (a webhook delivery).
	services *services.Services
	// limits are the handler's rate limits.
	limits httpapi.Limits
}

// newServer serves the real handler over pool, with a stubbed clock, a
// trusted proxy on 127.0.0.0/8 (so tests can set X-Forwarded-For) and the
// services the daemon wires, on an insert-only River client. The handler's
// own dependencies are listed here rather than taken from the daemon, which
// imports this package.
func newServer(t testing.TB, pool *pgxpool.Pool, b *testBundle, opts ...func(*config.Config)) *httptest.Server {
	t.Helper()
	b.clock = clock.NewStub(t0)
	b.metrics = metrics.New()
	b.passwords = accounts.NewTestPasswords()
	cfg := config.Default()
	cfg.HTTP.RedirectOrigins = []string{"https://studio.edgeimpulse.com", "http://localhost:4800"}
	cfg.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cfg.Auth.JWTSecret = jwtSecret
	cfg.Billing.CallbackSecret = billingSecret
	cfg.TestClocks.Enabled = true
	cfg.Console.Enabled = true
	cfg.Webhooks.AllowPrivateNetworks = true
	cfg.Webhooks.RetrySchedule = []time.Duration{time.Second}
	cfg.Turnstile = config.Turnstile{Enabled: true, Secret: "ts-secret", VerifyURL: fakeSiteverify(t), Timeout: 2 * time.Second}
	for _, o := range opts {
		o(cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := services.NewInsertOnly(services.Deps{Config: cfg, Logger: logger, Pool: pool, Clock: b.clock, Passwords: b.passwords, Refusals: b.metrics})
	if err != nil {
		t.Fatal(err)
	}
	b.tokens, b.services = s.Tokens, s
	b.limits = httpapi.NewLimits(cfg.Signup.RateLimit, cfg.Eligibility.PreflightRateLimit, b.clock)
	h := httpapi.NewServer(httpapi.Deps{
		Turnstile: turnstile.New(&http.Client{Timeout: cfg.Turnstile.Timeout}, cfg.Turnstile),
		Logger:    logger, Config: cfg,
		Accounts: s.Accounts,
		Tokens:   s.Tokens,
		Limits:   b.limits,

		Lifecycle:        s.Lifecycle,
		Eligibility:      s.Eligibility,
		Billing:          s.Billing,
		Enterprise:       s.Enterprise,
		Signup:           s.Signup,
		WebhookEndpoints: s.Endpoints,
		Ready:            func(context.Context) error { return b.ready },
		Observer:         b.metrics,
		Metrics:          b.metrics.Handler(),
		// River's UI stands in as a handler that answers JSON: these tests
		// are about the doors in front of it (internal/daemon serves the
		// real one).
		RiverUI: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"data":[]}`))
		}),
	})
	srv := httptest.NewServer(conformsToSpec(t, h))
	t.Cleanup(srv.Close)
	return srv
}

// fakeSiteverify stands in for Cloudflare: the token "human" passes,
// "cloudflare-down" gets a 503, any other is rejected. It returns its URL.
func fakeSiteverify(t testing.TB) string {
	t.Helper()
	siteverify := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		switch r.PostForm.Get("response") {
		case "human":
			w.Write([]byte(`{"success":true}`))
		case "cloudflare-down":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.Write([]byte(`{"success":false,"error-codes":["invalid-input-response"]}`))
		}
	}))
	t.Cleanup(siteverify.Close)
	return siteverify.URL
}

// setup is newServer on a database of the test's own, with an admin
// (admin@acme.example) and its API key; opts adjust the config.
func setup(t testing.TB, opts ...func(*config.Config)) *testBundle {
	t.Helper()
	b := &testBundle{pool: testdb.New(t)}
	b.server = newServer(t, b.pool, b, opts...)
	_, key, err := accounts.New(b.pool, clock.NewStub(t0), b.passwords).CreateAdmin(context.Background(), "admin", "admin@acme.example", "")
	if err != nil {
		t.Fatal(err)
	}
	b.admin = key
	return b
}

// manyTrials turns the eligibility rules off, for a test of what admins
// do with several trials of one user (eligibility_test.go has the rules).
func manyTrials(cfg *config.Config) {
	e := &cfg.Eligibility
	e.OnePerAddress, e.ActivePerDomain, e.TrialsPerDomain = false, 0, 0
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func (b *testBundle) do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("body %q is not JSON: %v", raw, err)
	}
	return r
}

func (b *testBundle) post(t testing.TB, path, body string) response {
	t.Helper()
	return b.call(t, "POST", path, b.admin, body)
}

func TestStartTrialValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)

	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantInErr  string
	}{
		{"not json", `{"email":`, http.StatusBadRequest, "not valid JSON"},
		{"wrong type names the field", `{"notes": 42}`, http.StatusBadRequest, "notes"},
		{"bad date names the field", `{"expirationDate": "tomorrow"}`, http.StatusBadRequest, "expirationDate"},
		{"date too far ahead", `{"expirationDate": "9999-01-01T00:00:00Z"}`, http.StatusBadRequest, "expirationDate"},
		{"bad enum", `{"userHasMLModelsInProduction": "perhaps"}`, http.StatusBadRequest, "userHasMLModelsInProduction"},
		{"bad query params", `{"redirectUrlQueryParams": "a=%zz"}`, http.StatusBadRequest, "redirectUrlQueryParams"},
		{"utmParams must be an array", `{"utmParams": "x"}`, http.StatusBadRequest, "utmParams"},
	}
	for _, tt := range tests {
		r := b.post(t, "/v1/api/user/trial", tt.body)
		if r.status != tt.wantStatus || r.body["success"] != false || !strings.Contains(r.body["error"].(string), tt.wantInErr) {
			t.Errorf("%s: %d %v, want %d mentioning %q", tt.name, r.status, r.body, tt.wantStatus, tt.wantInErr)
		}
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM trials").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d trials written by refused requests (%v)", n, err)
	}
}

func TestStartTrialAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, manyTrials)

	// An offset date is normalised to UTC and truncated to milliseconds;
	// unknown fields are ignored; an allowed origin and the query are kept.
	r := b.post(t, "/v1/api/user/trial", `{
		"expirationDate": "2026-07-20T12:00:00.123456+02:00",
		"redirectUrlOrigin": "http://localhost:4800",
		"redirectUrlQueryParams": "utm_source=x&utm_medium=y",
		"somethingNew": {"nested": true},
		"utmParams": [{"utm_source": "x"}]
	}`)
	if r.status != http.StatusOK || r.body["success"] != true {
		t.Fatalf("%d %v", r.status, r.body)
	}
	if got := r.body["redirectUrl"]; got != "http://localhost:4800/organization/1?utm_source=x&utm_medium=y" {
		t.Errorf("redirectUrl = %v", got)
	}
	got := b.call(t, "GET", "/v1/api/admin/trials/1", b.admin, "").body["trial"].(map[string]any)
	if got["expirationDate"] != "2026-07-20T10:00:00.123Z" {
		t.Errorf("expirationDate = %v, want it in UTC with 3 fractional digits", got["expirationDate"])
	}

	// An origin that is not allowed falls back to the first configured one.
	r = b.post(t, "/v1/api/user/trial", `{"redirectUrlOrigin": "https://evil.example"}`)
	if r.body["redirectUrl"] != "https://studio.edgeimpulse.com/organization/2" {
		t.Errorf("redirectUrl = %v, want the first allowed origin", r.body["redirectUrl"])
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := `{"notes":"` + strings.Repeat("x", 1<<20) + `"}`

	r := b.post(t, "/v1/api/user/trial", big)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("declared large body: %d %v, want 413", r.status, r.body)
	}
	// Without Content-Length the limit applies while reading.
	req, _ := http.NewRequest("POST", b.server.URL+"/v1/api/user/trial", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("x-api-key", b.admin)
	if r := b.do(t, req); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("streamed large body: %d %v, want 413", r.status, r.body)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t)

	req, _ := http.NewRequest("GET", b.server.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "client-id-123")
	if got := b.do(t, req).header.Get("X-Request-Id"); got != "client-id-123" {
		t.Errorf("sane client id not echoed: %q", got)
	}
	req, _ = http.NewRequest("GET", b.server.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "bad id\twith <html>")
	if got := b.do(t, req).header.Get("X-Request-Id"); len(got) != 32 {
		t.Errorf("insane client id not replaced: %q", got)
	}
	req, _ = http.NewRequest("GET", b.server.URL+"/v1/api/admin/trials/1", nil)
	req.Header.Set("x-api-key", "nope")
	if got := b.do(t, req).header.Get("X-Request-Id"); got == "" {
		t.Error("error answer has no X-Request-Id")
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.ready = errors.New("database unreachable")
	req, _ := http.NewRequest("GET", b.server.URL+"/readyz", nil)
	r := b.do(t, req)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("readyz while not ready: %d %v", r.status, r.header)
	}
	req, _ = http.NewRequest("GET", b.server.URL+"/healthz", nil)
	if r := b.do(t, req); r.status != http.StatusOK {
		t.Fatalf("healthz must not depend on the database: %d", r.status)
	}
}

// With Postgres unreachable the API answers 503 with Retry-After, quickly,
// and reveals nothing of the connection error.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := &testBundle{pool: pool}
	b.server = newServer(t, pool, b)
	b.admin = "ei_" + strings.Repeat("a", 64)

	r := b.post(t, "/v1/api/user/trial", `{}`)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("%d %v %v, want 503 with Retry-After", r.status, r.header, r.body)
	}
	if msg := r.body["error"].(string); strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "dial") {
		t.Fatalf("error leaks connection details: %q", msg)
	}
}

func (b *testBundle) call(t testing.TB, method, path, key, body string) response {
	t.Helper()
	req, _ := http.NewRequest(method, b.server.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	return b.do(t, req)
}

func TestAdminTrialOperations(t *testing.T) {
	t.Parallel()
	b := setup(t, manyTrials)
	if r := b.post(t, "/v1/api/user/trial", `{"expirationDate":"2026-07-11T09:30:00Z"}`); r.status != http.StatusOK {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	if r := b.post(t, "/v1/api/user/trial", `{}`); r.status != http.StatusOK {
		t.Fatalf("create second: %d %v", r.status, r.body)
	}

	steps := []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/v1/api/admin/trials/1", `{"expirationDate":"2026-07-21T09:30:00+02:00","notes":"extended for the pilot"}`, http.StatusOK},
		{"PUT", "/v1/api/admin/trials/1", `{"expirationDate":"soon"}`, http.StatusBadRequest},
		{"PUT", "/v1/api/admin/trials/99", `{"notes":"x"}`, http.StatusNotFound},
		{"POST", "/v1/api/admin/trials/1/upgrade", ``, http.StatusOK},
		{"POST", "/v1/api/admin/trials/1/upgrade", ``, http.StatusOK},
		{"PUT", "/v1/api/admin/trials/1", `{"expirationDate":"2026-08-01T00:00:00Z"}`, http.StatusConflict},
		{"DELETE", "/v1/api/admin/trials/1", ``, http.StatusConflict},
		{"DELETE", "/v1/api/admin/trials/2", ``, http.StatusOK},
		{"DELETE", "/v1/api/admin/trials/2", ``, http.StatusConflict},
		{"POST", "/v1/api/admin/trials/2/upgrade", ``, http.StatusConflict},
		{"POST", "/v1/api/admin/organizations/2/restore", ``, http.StatusOK},
		{"POST", "/v1/api/admin/organizations/2/restore", ``, http.StatusConflict},
		{"DELETE", "/v1/api/admin/organizations/2?fullDeletion=maybe", ``, http.StatusBadRequest},
		{"DELETE", "/v1/api/admin/organizations/2?fullDeletion=true", ``, http.StatusOK},
		{"DELETE", "/v1/api/admin/organizations/99", ``, http.StatusNotFound},
		{"POST", "/v1/api/admin/organizations/99/restore", ``, http.StatusNotFound},
	}
	for _, s := range steps {
		r := b.call(t, s.method, s.path, b.admin, s.body)
		if r.status != s.want || (r.status == http.StatusOK) != (r.body["success"] == true) {
			t.Fatalf("%s %s %s: %d %v, want %d", s.method, s.path, s.body, r.status, r.body, s.want)
		}
	}

	r := b.call(t, "GET", "/v1/api/admin/trials/1", b.admin, "")
	trial := r.body["trial"].(map[string]any)
	if trial["expirationDate"] != "2026-07-21T07:30:00.000Z" || trial["notes"] != "extended for the pilot" || trial["upgradedDate"] == nil {
		t.Fatalf("trial after update and upgrade: %v", trial)
	}
	r = b.call(t, "GET", "/v1/api/admin/trials/1/events", b.admin, "")
	events := r.body["events"].([]any)
	var kinds []string
	for _, e := range events {
		ev := e.(map[string]any)
		kinds = append(kinds, ev["kind"].(string))
		if !strings.HasPrefix(ev["cause"].(string), "request:") || ev["actor"] != "admin:1" || len(ev["at"].(string)) != len("2026-07-01T09:30:00.000Z") {
			t.Errorf("event %v: want an admin request as actor and cause, a contract date", ev)
		}
	}
	if want := []string{"trial.created", "trial.extended", "trial.upgraded"}; strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("history %v, want %v", kinds, want)
	}
	if r := b.call(t, "GET", "/v1/api/admin/trials/99/events", b.admin, ""); r.status != http.StatusNotFound {
		t.Fatalf("events of an unknown trial: %d", r.status)
	}
}

func TestAdminRoutesRefuseNonAdmins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO users (username, email, created_at, updated_at) VALUES ('fred', 'fred@acme.example', $1, $1)`, t0); err != nil {
		t.Fatal(err)
	}
	key, err := accounts.New(b.pool, clock.NewStub(t0), b.passwords).CreateAPIKey(context.Background(), "fred", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range []struct{ method, path string }{
		{"GET", "/v1/api/admin/trials/1"},
		{"PUT", "/v1/api/admin/trials/1"},
		{"DELETE", "/v1/api/admin/trials/1"},
		{"POST", "/v1/api/admin/trials/1/upgrade"},
		{"GET", "/v1/api/admin/trials/1/events"},
		{"DELETE", "/v1/api/admin/organizations/1"},
		{"POST", "/v1/api/admin/organizations/1/restore"},
		{"GET", "/v1/api/admin/trials/upcoming"},
	} {
		if r := b.call(t, route.method, route.path, key, "{}"); r.status != http.StatusForbidden {
			t.Errorf("non-admin %s %s: %d, want 403", route.method, route.path, r.status)
		}
		if r := b.call(t, route.method, route.path, "", "{}"); r.status != http.StatusUnauthorized {
			t.Errorf("anonymous %s %s: %d, want 401", route.method, route.path, r.status)
		}
	}
}

func TestAdminUpcoming(t *testing.T) {
	t.Parallel()
	b := setup(t, manyTrials)
	for _, body := range []string{`{"expirationDate":"2026-07-01T11:40:00Z"}`, `{"expirationDate":"2026-07-01T11:50:00Z"}`, `{"expirationDate":"2026-07-09T00:00:00Z"}`} {
		if r := b.post(t, "/v1/api/user/trial", body); r.status != http.StatusOK {
			t.Fatal(r.body)
		}
	}
	r := b.call(t, "GET", "/v1/api/admin/trials/upcoming?within=3h", b.admin, "")
	up, _ := r.body["upcoming"].([]any)
	if r.status != http.StatusOK || len(up) != 1 {
		t.Fatalf("upcoming: %d %v", r.status, r.body)
	}
	first := up[0].(map[string]any)
	if first["hour"] != "2026-07-01T11:00:00.000Z" || first["kind"] != "trial.expire" || first["count"] != float64(2) {
		t.Fatalf("bucket %v", first)
	}
	week := b.call(t, "GET", "/v1/api/admin/trials/upcoming?within=7d", b.admin, "")
	hours := b.call(t, "GET", "/v1/api/admin/trials/upcoming?within=168h", b.admin, "")
	if week.status != http.StatusOK || fmt.Sprint(week.body) != fmt.Sprint(hours.body) || len(week.body["upcoming"].([]any)) <= len(up) {
		t.Fatalf("within=7d: %d %v, want 168h's %v", week.status, week.body, hours.body)
	}
	if r := b.call(t, "GET", "/v1/api/admin/trials/upcoming?within=soon", b.admin, ""); r.status != http.StatusBadRequest {
		t.Fatalf("bad within: %d", r.status)
	}
	if r := b.call(t, "GET", "/v1/api/admin/trials/upcoming", b.admin, ""); r.status != http.StatusOK {
		t.Fatalf("default window: %d", r.status)
	}
}
