package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/billing"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/signature"
)

func (b *testBundle) callback(t *testing.T, body, sig string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", b.server.URL+"/v1/billing/callback", strings.NewReader(body))
	if sig != "" {
		req.Header.Set(signature.Header, sig)
	}
	return b.do(t, req)
}

func (b *testBundle) signed(t *testing.T, body string) response {
	t.Helper()
	return b.callback(t, body, signature.Sign([]byte(billingSecret), b.clock.Now(), []byte(body)))
}

func (b *testBundle) scalar(t testing.TB, sql string, args ...any) string {
	t.Helper()
	var v string
	if err := b.pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (b *testBundle) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func TestBillingCallbackActivatesPlan(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO users (username, email, plan, plan_state, created_at, updated_at)
		VALUES ('prouser', 'pro@acme.example', 'professional', 'pending_payment', $1, $1)`, t0); err != nil {
		t.Fatal(err)
	}
	body := `{"id":"evt_pay_1","type":"payment.succeeded","userId":2}`
	if r := b.signed(t, body); r.status != http.StatusOK || r.body["success"] != true {
		t.Fatalf("callback: %d %v", r.status, r.body)
	}
	if got := b.scalar(t, `SELECT plan_state FROM users WHERE id = 2`); got != "active" {
		t.Fatalf("plan_state %s, want active", got)
	}
	// The same event again is harmless.
	if r := b.signed(t, body); r.status != http.StatusOK {
		t.Fatalf("repeat: %d %v", r.status, r.body)
	}
	if n := b.scalar(t, `SELECT count(*)::text FROM payment_events`); n != "1" {
		t.Fatalf("%s payment events recorded, want 1", n)
	}
}

func TestBillingCallbackUpgradesOrganization(t *testing.T) {
	t.Parallel()
	b := setup(t, manyTrials)
	if r := b.post(t, "/v1/api/user/trial", `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	if r := b.signed(t, `{"id":"evt_org_1","type":"payment.succeeded","organizationId":1}`); r.status != http.StatusOK {
		t.Fatalf("callback: %d %v", r.status, r.body)
	}
	trial := b.call(t, "GET", "/v1/api/admin/trials/1", b.admin, "").body["trial"].(map[string]any)
	if trial["upgradedDate"] == nil {
		t.Fatalf("trial not upgraded: %v", trial)
	}
	if cause := b.scalar(t, `SELECT cause FROM trial_events WHERE kind = 'trial.upgraded'`); cause != "payment:evt_org_1" {
		t.Fatalf("upgrade cause %q", cause)
	}
	// A payment for a deleted trial changes nothing and is not retried.
	if r := b.post(t, "/v1/api/user/trial", `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	if r := b.call(t, "DELETE", "/v1/api/admin/trials/2", b.admin, ""); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	if r := b.signed(t, `{"id":"evt_org_2","type":"payment.succeeded","organizationId":2}`); r.status != http.StatusOK {
		t.Fatalf("payment for a deleted trial: %d %v", r.status, r.body)
	}
	if state := b.scalar(t, `SELECT state FROM trials WHERE id = 2`); state != "deleted" {
		t.Fatalf("deleted trial is now %s", state)
	}
}

func TestBillingCallbackRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"id":"evt_x","type":"payment.succeeded","userId":1}`
	stale := signature.Sign([]byte(billingSecret), b.clock.Now().Add(-6*time.Minute), []byte(body))
	tests := []struct {
		name, body, sig string
		want            int
	}{
		{"no signature", body, "", http.StatusUnauthorized},
		{"malformed", body, "v1=abc", http.StatusUnauthorized},
		{"other secret", body, signature.Sign([]byte("nope"), b.clock.Now(), []byte(body)), http.StatusUnauthorized},
		{"body changed after signing", strings.Replace(body, `"userId":1`, `"userId":2`, 1), signature.Sign([]byte(billingSecret), b.clock.Now(), []byte(body)), http.StatusUnauthorized},
		{"stale", body, stale, http.StatusUnauthorized},
		{"both user and organization", `{"id":"evt_y","type":"payment.succeeded","userId":1,"organizationId":1}`, "", http.StatusBadRequest},
		{"no id", `{"type":"payment.succeeded","userId":1}`, "", http.StatusBadRequest},
		{"not json", `payment`, "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		sig := tt.sig
		if sig == "" && tt.want == http.StatusBadRequest {
			sig = signature.Sign([]byte(billingSecret), b.clock.Now(), []byte(tt.body))
		}
		if r := b.callback(t, tt.body, sig); r.status != tt.want || r.body["success"] != false {
			t.Errorf("%s: %d %v, want %d", tt.name, r.status, r.body, tt.want)
		}
	}
	if n := b.scalar(t, `SELECT count(*)::text FROM payment_events`); n != "0" {
		t.Fatalf("refused callbacks recorded %s events", n)
	}
	// An event of a type we do not act on is recorded and acknowledged.
	if r := b.signed(t, `{"id":"evt_z","type":"invoice.created"}`); r.status != http.StatusOK {
		t.Fatalf("unknown type: %d %v", r.status, r.body)
	}

	unconfigured := billing.New(billing.Deps{Pool: b.pool, Clock: clock.NewStub(t0), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, err := unconfigured.HandleCallback(context.Background(), "", []byte(body)); apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("without a secret: %v, want unavailable", err)
	}
}
