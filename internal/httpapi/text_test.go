package httpapi_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// A NUL character in any string of any body, a body that is not UTF-8,
// nests too deep or holds data after its JSON value: a 400 that names
// where, before anything reaches Postgres (which answered 22021 and 22P05,
// and so 500, on eight routes). Wrong types are named by their wire field.
func TestBodiesPostgresWouldRefuseAre400(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if r := b.post(t, "/v1/api/user/trial", `{}`); r.status != http.StatusOK {
		t.Fatalf("a trial to work on: %d %v", r.status, r.body)
	}
	org := "/api/v2/organization/" + b.orgPublicID(t, 1) + "/enterprise"
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	tests := []struct {
		name, method, path, body string
		field                    string
	}{
		{"login", "POST", "/v1/api-login", `{"username":"fred\u0000","password":"pa55word!"}`, "username"},
		{"enterprise trial sign-up", "POST", "/v1/api-user-create-enterprise-trial", `{"name":"Fred\u0000","username":"fred","email":"fred@bedrock.example","privacyPolicy":true,"turnstileResponse":"human"}`, "name"},
		{"Professional sign-up", "POST", "/v1/api-create-pro-user", `{"name":"Fred","username":"fred","email":"fred@bedrock.example","privacyPolicy":true,"turnstileResponse":"human","projectName":"p\u0000"}`, "projectName"},
		{"activation", "POST", "/v1/api/user/activate", `{"code":"12\u00003"}`, "code"},
		{"start trial", "POST", "/v1/api/user/trial", `{"companyName":"ACME\u0000"}`, "companyName"},
		{"a key inside utmParams", "POST", "/v1/api/user/trial", `{"utmParams":[{"source\u0000":"x"}]}`, "utmParams[0]"},
		{"a value deep in utmParams", "POST", "/v1/api/user/trial", `{"utmParams":[{"a":{"b":["\u0000"]}}]}`, "utmParams[0].a.b[0]"},
		{"extension request", "POST", "/v1/api/organizations/1/trial/request-extension", `{"why":"more\u0000time"}`, "why"},
		{"admin create trial", "POST", "/v1/api/admin/trials", `{"userId":1,"notes":"\u0000"}`, "notes"},
		{"admin update trial", "PUT", "/v1/api/admin/trials/1", `{"notes":"\u0000"}`, "notes"},
		{"v2 create-enterprise", "POST", org, `{"email":"cto\u0000@customer.example","idempotencyKey":"k","additionalAdmins":[]}`, "email"},
		{"not UTF-8", "POST", "/v1/api/user/trial", "{\"notes\":\"\xff\xfe\"}", "body"},
		{"nested too deep", "POST", "/v1/api/organizations/1/trial/request-extension", `{"why":` + deep + `}`, "body"},
		{"data after the JSON value", "POST", "/v1/api/admin/trials", `{"userId":2} xxx`, "body"},
		{"a wrong type, by its wire name", "POST", "/v1/api/admin/trials", `{"userId":1,"notes":5}`, "notes"},
	}
	for _, tc := range tests {
		r := b.call(t, tc.method, tc.path, b.admin, tc.body)
		msg, _ := r.body["error"].(string)
		if r.status != http.StatusBadRequest || !strings.HasPrefix(msg, tc.field+" ") {
			t.Errorf("%s: %d %q, want 400 about %s", tc.name, r.status, msg, tc.field)
		}
		if strings.Contains(msg, "Request") || strings.Contains(msg, "Fields") {
			t.Errorf("%s: the message names a Go type: %q", tc.name, msg)
		}
	}
	// The signed payment callback, once its signature holds.
	r := b.signed(t, `{"id":"evt\u0000","type":"payment.succeeded","userId":1}`)
	if msg, _ := r.body["error"].(string); r.status != http.StatusBadRequest || !strings.HasPrefix(msg, "id ") {
		t.Errorf("payment callback: %d %q, want 400 about id", r.status, msg)
	}
	// Nothing of it was written.
	if n := b.scalar(t, `SELECT (SELECT count(*) FROM trials) + (SELECT count(*) FROM trial_events WHERE kind = 'trial.extension_requested') + (SELECT count(*) FROM payment_events)`); n != "1" {
		t.Errorf("refused bodies wrote rows: %s, want only the first trial", n)
	}
}

// Extension requests cannot be multiplied into the history and the
// webhooks: a body over 16 KiB is refused, and requests are limited per
// user and per organization. An outsider is refused before the
// organization's budget is counted, so none can spend it.
func TestExtensionRequestsAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred, barney, stranger := b.addUser(t, "fred"), b.addUser(t, "barney"), b.addUser(t, "stranger")
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	b.exec(t, `INSERT INTO organization_members (organization_id, user_id, role, created_at) SELECT 1, id, 'member', now() FROM users WHERE username = 'barney'`)
	path := "/v1/api/organizations/1/trial/request-extension"
	big := `{"why":"` + strings.Repeat("x", 16<<10) + `"}`
	if r := b.call(t, "POST", path, fred.key, big); r.status != http.StatusBadRequest {
		t.Fatalf("a 16 KiB reason: %d %v, want 400", r.status, r.body)
	}
	// A stranger is refused, and limited as a user, never counted
	// against the organization.
	for i := range 20 {
		want := http.StatusForbidden
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		if r := b.call(t, "POST", path, stranger.key, `{"why":"let me"}`); r.status != want {
			t.Fatalf("the stranger's request %d: %d %v, want %d", i+1, r.status, r.body, want)
		}
	}
	// fred's first was refused for its size, yet counted, for him and for
	// the organization: eight more pass, barney's first is the tenth.
	for i := range 8 {
		if r := b.call(t, "POST", path, fred.key, `{"why":"more time"}`); r.status != http.StatusOK {
			t.Fatalf("fred's request %d: %d %v", i+2, r.status, r.body)
		}
	}
	if r := b.call(t, "POST", path, barney.key, `{"why":"me too"}`); r.status != http.StatusOK {
		t.Fatalf("barney's first: %d %v", r.status, r.body)
	}
	for _, who := range []person{barney, fred} {
		if r := b.call(t, "POST", path, who.key, `{"why":"again"}`); r.status != http.StatusTooManyRequests {
			t.Fatalf("the organization's eleventh request: %d, want 429", r.status)
		}
	}
	if n := b.scalar(t, `SELECT count(*)::text FROM trial_events WHERE kind = 'trial.extension_requested'`); n != "9" {
		t.Fatalf("%s extension events, want the 9 accepted", n)
	}
}

// utmParams is capped on every path that takes it, not the sign-ups alone;
// and the dates inside events' data are in the API's format, like every
// other date it writes.
func TestUTMCapAndEventDates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"a":1},`, 51), ",") + "]"
	for _, path := range []string{"/v1/api/user/trial", "/v1/api/admin/trials"} {
		r := b.post(t, path, `{"userId":1,"utmParams":`+many+`}`)
		if msg, _ := r.body["error"].(string); r.status != http.StatusBadRequest || !strings.HasPrefix(msg, "utmParams ") {
			t.Errorf("%s with 51 utmParams: %d %q, want 400", path, r.status, msg)
		}
	}
	if r := b.post(t, "/v1/api/user/trial", `{"expirationDate":"2026-07-11T09:30:00Z"}`); r.status != http.StatusOK {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	if r := b.call(t, "PUT", "/v1/api/admin/trials/1", b.admin, `{"expirationDate":"2026-07-20T12:00:00+02:00"}`); r.status != http.StatusOK {
		t.Fatalf("extend: %d %v", r.status, r.body)
	}
	if r := b.call(t, "DELETE", "/v1/api/admin/trials/1", b.admin, ""); r.status != http.StatusOK {
		t.Fatalf("delete: %d %v", r.status, r.body)
	}
	r := b.call(t, "GET", "/v1/api/admin/trials/1/events", b.admin, "")
	dates := 0
	for _, e := range r.body["events"].([]any) {
		ev := e.(map[string]any)
		for k, v := range ev["data"].(map[string]any) {
			s, ok := v.(string)
			if !ok || !strings.Contains(s, ":") {
				continue
			}
			dates++
			if !apiDate.MatchString(s) {
				t.Errorf("%s data %s = %q, not in the API's date format", ev["kind"], k, s)
			}
		}
	}
	if dates < 3 {
		t.Fatalf("%d dates in the events' data, want from, to and purgeAt at least", dates)
	}
}

var apiDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
