package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func signupBody(t testing.TB, overrides map[string]any) string {
	t.Helper()
	body := map[string]any{
		"name": "Fred Flintstone", "username": "fred.flintstone", "email": "fred@bedrock.example",
		"password": "yabba-dabba-doo", "privacyPolicy": true, "turnstileResponse": "human",
		"organizationName": "Slate Rock", "companyName": "Slate Rock and Gravel", "jobTitle": "Operator",
		"redirectUrlOrigin": "http://localhost:4800", "redirectUrlQueryParams": "utm_source=test",
		"utmParams": []map[string]string{{"utm_source": "test"}},
	}
	for k, v := range overrides {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	raw, _ := json.Marshal(body)
	return string(raw)
}

func (b *testBundle) counts(t *testing.T) (users, orgs, trials, jobs int) {
	t.Helper()
	err := b.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM organizations),
		(SELECT count(*) FROM trials), (SELECT count(*) FROM river_job)`).Scan(&users, &orgs, &trials, &jobs)
	if err != nil {
		t.Fatal(err)
	}
	return
}

const signupPath = "/v1/api-user-create-enterprise-trial"

func TestEnterpriseTrialSignup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.call(t, "POST", signupPath, "", signupBody(t, nil))
	if r.status != http.StatusOK || r.body["success"] != true {
		t.Fatalf("signup: %d %v", r.status, r.body)
	}
	userID := int64(r.body["userId"].(float64))
	if r.body["redirectUrl"] != "http://localhost:4800/organization/1?utm_source=test" || r.body["id"] != float64(1) {
		t.Fatalf("answer %v", r.body)
	}
	var verified, selfService bool
	var orgName, jobTitle string
	err := b.pool.QueryRow(context.Background(), `
		SELECT u.email_verified, t.self_service, o.name, u.job_title
		FROM users u JOIN trials t ON t.user_id = u.id JOIN organizations o ON o.id = t.organization_id
		WHERE u.id = $1`, userID).Scan(&verified, &selfService, &orgName, &jobTitle)
	if err != nil || verified || !selfService || orgName != "Slate Rock" || jobTitle != "Operator" {
		t.Fatalf("verified=%v selfService=%v org=%q job=%q (%v)", verified, selfService, orgName, jobTitle, err)
	}
	// The new user logs in with the password they chose.
	if r := b.call(t, "POST", "/v1/api-login", "", `{"username":"fred.flintstone","password":"yabba-dabba-doo"}`); r.status != http.StatusOK {
		t.Fatalf("login after signup: %d %v", r.status, r.body)
	}

	// Taken username or e-mail, in any case: 409, and nothing attached.
	users, orgs, trials, jobs := b.counts(t)
	for _, o := range []map[string]any{
		{"username": "FRED.flintstone", "email": "other@bedrock.example"},
		{"username": "barney", "email": "FRED@bedrock.example"},
	} {
		if r := b.call(t, "POST", signupPath, "", signupBody(t, o)); r.status != http.StatusConflict {
			t.Errorf("taken %v: %d %v", o, r.status, r.body)
		}
	}
	if u, o, tr, j := b.counts(t); u != users || o != orgs || tr != trials || j != jobs {
		t.Fatalf("a refused signup wrote rows: %d %d %d %d, were %d %d %d %d", u, o, tr, j, users, orgs, trials, jobs)
	}
}

func TestEnterpriseTrialSignupValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	manyUTM := make([]map[string]string, 51)
	for i := range manyUTM {
		manyUTM[i] = map[string]string{"utm_source": strconv.Itoa(i)}
	}
	tests := []struct {
		name      string
		overrides map[string]any
		want      int
		field     string
	}{
		{"no name", map[string]any{"name": nil}, http.StatusBadRequest, "name"},
		{"no username", map[string]any{"username": nil}, http.StatusBadRequest, "username"},
		{"no email", map[string]any{"email": nil}, http.StatusBadRequest, "email"},
		{"username against the rule", map[string]any{"username": "_fred"}, http.StatusBadRequest, "username"},
		{"username too short", map[string]any{"username": "fre"}, http.StatusBadRequest, "username"},
		{"free mail", map[string]any{"email": "fred@gmail.com"}, http.StatusBadRequest, "e-mail"},
		{"free mail in capitals", map[string]any{"email": "fred@GMAIL.COM"}, http.StatusBadRequest, "e-mail"},
		{"not an address", map[string]any{"email": "fred"}, http.StatusBadRequest, "email"},
		{"privacy policy refused", map[string]any{"privacyPolicy": false}, http.StatusBadRequest, "privacyPolicy"},
		{"privacy policy missing", map[string]any{"privacyPolicy": nil}, http.StatusBadRequest, "privacyPolicy"},
		{"short password", map[string]any{"password": "short"}, http.StatusBadRequest, "password"},
		{"too many utm params", map[string]any{"utmParams": manyUTM}, http.StatusBadRequest, "utmParams"},
		{"wrong type", map[string]any{"privacyPolicy": "yes"}, http.StatusBadRequest, "privacyPolicy"},
		{"turnstile rejected", map[string]any{"turnstileResponse": "bot"}, http.StatusBadRequest, "verification"},
		{"turnstile missing", map[string]any{"turnstileResponse": nil}, http.StatusBadRequest, "verification"},
		{"turnstile unreachable", map[string]any{"turnstileResponse": "cloudflare-down"}, http.StatusServiceUnavailable, "retry"},
		{"expirationDate ignored, bad one still 400", map[string]any{"expirationDate": "never"}, http.StatusBadRequest, "expirationDate"},
	}
	for _, tt := range tests {
		r := b.call(t, "POST", signupPath, "", signupBody(t, tt.overrides))
		if r.status != tt.want || !strings.Contains(r.body["error"].(string), tt.field) {
			t.Errorf("%s: %d %v, want %d mentioning %q", tt.name, r.status, r.body, tt.want, tt.field)
		}
		b.clock.Advance(10 * 1e9) // stay under the per-client limit
	}
	if users, orgs, trials, jobs := b.counts(t); users != 1 || orgs != 0 || trials != 0 || jobs != 0 {
		t.Fatalf("refused signups wrote rows: users=%d orgs=%d trials=%d jobs=%d", users, orgs, trials, jobs)
	}
	rec := httptest.NewRecorder()
	b.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`trialsd_signups_total{kind="enterprise_trial",outcome="rejected_email"} 2`,
		`trialsd_signups_total{kind="enterprise_trial",outcome="turnstile_failed"} 2`,
		`trialsd_signups_total{kind="enterprise_trial",outcome="turnstile_unavailable"} 1`,
		`trialsd_signups_total{kind="enterprise_trial",outcome="invalid"} 12`,
	} {
		if !strings.Contains(rec.Body.String(), line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestSignupRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 10 {
		if r := b.call(t, "POST", signupPath, "", signupBody(t, map[string]any{"username": "user" + strconv.Itoa(i) + "x", "email": "u@acme" + strconv.Itoa(i) + ".example"})); r.status != http.StatusOK {
			t.Fatalf("signup %d: %d %v", i+1, r.status, r.body)
		}
	}
	r := b.call(t, "POST", signupPath, "", signupBody(t, map[string]any{"username": "onetoomany", "email": "x@acme.example"}))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("11th signup: %d %v", r.status, r.header)
	}
}
