package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/daemon"
	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/internal/signature"
	"github.com/trialsd/trialsd/internal/testdb"
)

// syncBuffer is a log sink safe for the daemon's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Through sign-ups, logins, keys, tokens, callbacks, webhooks and e-mails,
// nothing secret reaches the log at the production level (info): no
// password, key, token, secret, activation code or whole e-mail address.
// And the lines about a trial say which request or job, and which trial.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	const (
		password      = "correct-horse-battery-staple"
		jwtSecret     = "jwt-secret-jwt-secret-jwt-secret-0"
		webhookSecret = "whsec_bmV2ZXItbG9nZ2VkLW5ldmVyLWxvZ2dlZC0wMDAwMDAwMDA="
		billingSecret = "billing-never-logged"
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)

	pool := testdb.New(t)
	cfg := config.Default()
	cfg.Auth.JWTSecret = jwtSecret
	cfg.Turnstile.Enabled = false
	cfg.Webhooks.Endpoints = []string{receiver.URL}
	cfg.Webhooks.Secret = webhookSecret
	cfg.Webhooks.AllowPrivateNetworks = true
	cfg.Billing.CallbackSecret = billingSecret
	cfg.River.FetchPollInterval = 50 * time.Millisecond
	// The expiry's job, and the logs of its run, are what this waits for.
	cfg.Lifecycle.ExpirePoll = 0
	// Its trials share one company domain.
	cfg.Eligibility.ActivePerDomain, cfg.Eligibility.OnePerAddress = 0, false
	var logs syncBuffer
	logger := slog.New(logging.NewHandler(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	stub := clock.NewStub(t0)
	d, err := daemon.New(cfg, logger, pool, stub, daemon.Options{API: true, Workers: true})
	if err != nil {
		t.Fatal(err)
	}
	_, adminKey, err := d.Services().Accounts.CreateAdmin(context.Background(), "rootadmin", "root@secret-corp.example", password)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	events, cancel := d.River().Subscribe(river.EventKindJobCompleted)
	t.Cleanup(cancel)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })

	post := func(path string, headers map[string]string, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	post("/v1/api-user-create-enterprise-trial", nil, `{"name":"Fred","username":"fredsecret","email":"fred@secret-corp.example","password":"`+password+`","privacyPolicy":true,"turnstileResponse":"x"}`)
	login := post("/v1/api-login", nil, `{"username":"fredsecret","password":"`+password+`"}`)
	token, _ := login["token"].(string)
	if token == "" {
		t.Fatalf("login: %v", login)
	}
	post("/v1/api/user/trial", map[string]string{"x-jwt-token": token}, `{}`)
	post("/v1/api/user/trial", map[string]string{"x-api-key": adminKey, "X-Request-Id": "req-trace-1"}, `{"expirationDate":"`+t0.Format(time.RFC3339)+`"}`)
	post("/v1/api/user/trial", map[string]string{"x-api-key": "ei_" + strings.Repeat("f", 64)}, `{}`)
	post("/v1/api-login", nil, `{"username":"fredsecret","password":"wrong-`+password+`"}`)
	post("/v1/api-create-pro-user", nil, `{"name":"Wilma","username":"wilmasecret","email":"wilma@secret-corp.example","password":"`+password+`","privacyPolicy":true,"turnstileResponse":"x"}`)
	body := `{"id":"evt_1","type":"payment.succeeded","userId":3}`
	post("/v1/billing/callback", map[string]string{signature.Header: signature.Sign([]byte(billingSecret), stub.Now(), []byte(body))}, body)

	// Wait for the admin's due trial to expire and for Wilma's activation
	// e-mail to go through the log sender (it logs before its job completes).
	deadline := time.After(15 * time.Second)
	for expired, mailed := false, false; !expired || !mailed; {
		select {
		case ev := <-events:
			expired = expired || ev.Job.Kind == "trial.expire"
			mailed = strings.Contains(logs.String(), "w***@secret-corp.example")
		case <-deadline:
			t.Fatalf("jobs did not finish; log:\n%s", logs.String())
		}
	}

	out := logs.String()
	code := regexp.MustCompile(`activation code is (\d{6})`).FindStringSubmatch(out)
	for _, secret := range []string{password, adminKey, token, jwtSecret, webhookSecret, billingSecret,
		"fred@secret-corp.example", "wilma@secret-corp.example", "root@secret-corp.example"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	if code != nil {
		t.Errorf("the log holds an activation code at info level")
	}
	if !strings.Contains(out, "w***@secret-corp.example") {
		t.Error("the log sender's line is missing (masked address expected)")
	}
	var sawRequest, sawJob bool
	for _, line := range strings.Split(out, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["msg"] == "trial changed" && rec["request_id"] == "req-trace-1" && rec["trial_id"] != nil &&
			rec["kind"] == "trial.created" && rec["actor"] == "admin:1" && rec["cause"] == "request:req-trace-1" {
			sawRequest = true
		}
		if rec["msg"] == "http request" {
			if _, ok := rec["duration_s"].(float64); !ok || rec["path"] == nil {
				t.Errorf("request line without its path or duration in seconds: %v", rec)
			}
		}
		if rec["msg"] == "trial changed" && rec["job_id"] != nil && rec["trial_id"] != nil && rec["kind"] == "trial.expired" &&
			rec["actor"] == "system" && rec["cause"] != nil && rec["lag_s"] != nil {
			sawJob = true
		}
	}
	if !sawRequest || !sawJob {
		t.Errorf("trial lines without their request (%v) or job (%v) ids:\n%s", sawRequest, sawJob, out)
	}
}
