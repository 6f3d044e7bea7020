package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (b *testBundle) orgPublicID(t *testing.T, id int) string {
	t.Helper()
	return b.scalar(t, `SELECT public_id FROM organizations WHERE id = $1`, id)
}

func (b *testBundle) userPublicID(t *testing.T, username string) string {
	t.Helper()
	return b.scalar(t, `SELECT public_id FROM users WHERE username = $1`, username)
}

func enterpriseBody(t *testing.T, overrides map[string]any) string {
	t.Helper()
	body := map[string]any{
		"email": "cto@customer.example", "idempotencyKey": "order-1001",
		"additionalAdmins": []string{}, "thirdPartyIdentifier": []map[string]string{{"id": "sf-42", "label": "salesforce"}},
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

func TestCreateEnterprise(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred := b.addUser(t, "fred")
	b.addUser(t, "wilma")
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	org := b.orgPublicID(t, 1)
	path := "/api/v2/organization/" + org + "/enterprise"
	body := enterpriseBody(t, map[string]any{"additionalAdmins": []string{b.userPublicID(t, "wilma")}})

	// fred is an admin of his trial organization, not a site admin:
	// creating its enterprise would upgrade his own trial.
	r := b.call(t, "POST", path, fred.key, body)
	if r.status != http.StatusForbidden || r.body["name"] != "Forbidden" {
		t.Fatalf("the trial's own user upgrading it: %d %v, want 403", r.status, r.body)
	}
	if state := b.scalar(t, `SELECT state FROM trials WHERE id = 1`); state != "active" {
		t.Fatalf("trial %s after a refused create, want active", state)
	}
	r = b.call(t, "POST", path, b.admin, body)
	if r.status != http.StatusOK || !hex32.MatchString(r.body["enterpriseId"].(string)) || !hex32.MatchString(r.body["userId"].(string)) {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	first := r.body
	if got := b.scalar(t, `SELECT public_id FROM users WHERE email = 'cto@customer.example'`); got != first["userId"] {
		t.Fatalf("answered user %v, created %s", first["userId"], got)
	}
	if roles := b.scalar(t, `SELECT string_agg(u.username || ':' || m.role, ',' ORDER BY u.username) FROM organization_members m JOIN users u ON u.id = m.user_id WHERE m.organization_id = 1 AND u.username <> 'fred'`); !strings.Contains(roles, "wilma:admin") || !strings.Contains(roles, ":admin") {
		t.Fatalf("organization roles %s", roles)
	}
	if state := b.scalar(t, `SELECT state FROM trials WHERE id = 1`); state != "upgraded" {
		t.Fatalf("trial %s, want upgraded", state)
	}

	// Replay: the first answer, nothing new.
	r = b.call(t, "POST", path, b.admin, body)
	if r.status != http.StatusOK || r.body["enterpriseId"] != first["enterpriseId"] || r.body["userId"] != first["userId"] {
		t.Fatalf("replay: %d %v, want %v", r.status, r.body, first)
	}
	if n := b.scalar(t, `SELECT count(*)::text FROM enterprises`); n != "1" {
		t.Fatalf("%s enterprises after a replay", n)
	}
	// The same key with another body.
	r = b.call(t, "POST", path, b.admin, enterpriseBody(t, map[string]any{"email": "cfo@customer.example"}))
	if r.status != http.StatusConflict || r.body["name"] != "IdempotencyKeyConflict" || r.body["requestId"] == "" || r.body["context"] == nil {
		t.Fatalf("key reuse: %d %v", r.status, r.body)
	}
	// With no live trial left, the organization's own admin may create.
	r = b.call(t, "POST", path, fred.key, enterpriseBody(t, map[string]any{"email": "ceo@customer.example", "idempotencyKey": "order-1002"}))
	if r.status != http.StatusOK {
		t.Fatalf("the organization's admin, its trial upgraded: %d %v", r.status, r.body)
	}
	// An existing e-mail is attached only once verified: anyone could have
	// signed up with it.
	unverified := enterpriseBody(t, map[string]any{"email": "wilma@acme.example", "idempotencyKey": "order-1003"})
	r = b.call(t, "POST", path, b.admin, unverified)
	if r.status != http.StatusConflict || r.body["name"] != "EmailNotVerified" {
		t.Fatalf("an unverified user's e-mail: %d %v, want 409 EmailNotVerified", r.status, r.body)
	}
	if n := b.scalar(t, `SELECT count(*)::text FROM organization_members m JOIN users u ON u.id = m.user_id WHERE u.username = 'wilma' AND m.organization_id = 1`); n != "1" {
		t.Fatalf("wilma has %s memberships after a refused create, want only the one from the first", n)
	}
	b.exec(t, `UPDATE users SET email_verified = true WHERE username = 'fred'`)
	r = b.call(t, "POST", path, b.admin, enterpriseBody(t, map[string]any{"email": "fred@acme.example", "idempotencyKey": "order-1004"}))
	if r.status != http.StatusOK || r.body["userId"] != b.userPublicID(t, "fred") {
		t.Fatalf("existing verified user: %d %v", r.status, r.body)
	}
}

func TestCreateEnterpriseErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred, wilma, barney := b.addUser(t, "fred"), b.addUser(t, "wilma"), b.addUser(t, "barney")
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	b.exec(t, `INSERT INTO organization_members (organization_id, user_id, role, created_at) SELECT 1, id, 'member', now() FROM users WHERE username = 'barney'`)
	path := "/api/v2/organization/" + b.orgPublicID(t, 1) + "/enterprise"
	unknown := "/api/v2/organization/" + strings.Repeat("0", 32) + "/enterprise"
	many := make([]string, 101)
	for i := range many {
		many[i] = strings.Repeat("a", 32)
	}
	tests := []struct {
		name       string
		path, key  string
		body       string
		wantStatus int
		wantName   string
		wantField  string
	}{
		{"no credentials", path, "", enterpriseBody(t, nil), 401, "Unauthorized", ""},
		{"not a member of the organization", path, wilma.key, enterpriseBody(t, nil), 404, "OrganizationNotFound", ""},
		{"an unknown organization, for a user", unknown, wilma.key, enterpriseBody(t, nil), 404, "OrganizationNotFound", ""},
		{"a member, not an admin", path, barney.key, enterpriseBody(t, nil), 403, "Forbidden", ""},
		{"the organization's admin, its trial live", path, fred.key, enterpriseBody(t, nil), 403, "Forbidden", ""},
		{"malformed organization id", "/api/v2/organization/ORG/enterprise", b.admin, enterpriseBody(t, nil), 400, "InvalidRequest", "organizationId"},
		{"unknown organization", unknown, b.admin, enterpriseBody(t, nil), 404, "OrganizationNotFound", ""},
		{"no email", path, b.admin, enterpriseBody(t, map[string]any{"email": nil}), 400, "InvalidRequest", "email"},
		{"empty key", path, b.admin, enterpriseBody(t, map[string]any{"idempotencyKey": ""}), 400, "InvalidRequest", "idempotencyKey"},
		{"key too long", path, b.admin, enterpriseBody(t, map[string]any{"idempotencyKey": strings.Repeat("k", 256)}), 400, "InvalidRequest", "idempotencyKey"},
		{"no additionalAdmins", path, b.admin, enterpriseBody(t, map[string]any{"additionalAdmins": nil}), 400, "InvalidRequest", "additionalAdmins"},
		{"malformed admin id", path, b.admin, enterpriseBody(t, map[string]any{"additionalAdmins": []string{"wilma"}}), 400, "InvalidRequest", "additionalAdmins"},
		{"too many admins", path, b.admin, enterpriseBody(t, map[string]any{"additionalAdmins": many}), 400, "InvalidRequest", "additionalAdmins"},
		{"unknown admin", path, b.admin, enterpriseBody(t, map[string]any{"additionalAdmins": []string{strings.Repeat("f", 32)}}), 400, "InvalidRequest", "additionalAdmins"},
		{"third party without label", path, b.admin, enterpriseBody(t, map[string]any{"thirdPartyIdentifier": []map[string]string{{"id": "x"}}}), 400, "InvalidRequest", "thirdPartyIdentifier"},
		{"wrong type", path, b.admin, `{"email": 5}`, 400, "InvalidRequest", "email"},
	}
	for _, tt := range tests {
		r := b.call(t, "POST", tt.path, tt.key, tt.body)
		ctx, _ := r.body["context"].(map[string]any)
		if r.status != tt.wantStatus || r.body["name"] != tt.wantName || r.body["requestId"] == nil || ctx == nil || (tt.wantField != "" && ctx["field"] != tt.wantField) {
			t.Errorf("%s: %d %v, want %d %s (field %q)", tt.name, r.status, r.body, tt.wantStatus, tt.wantName, tt.wantField)
		}
	}
	if n := b.scalar(t, `SELECT (SELECT count(*) FROM enterprises) + (SELECT count(*) FROM idempotency_records)`); n != "0" {
		t.Fatalf("refused requests wrote %s rows", n)
	}
}

// Two deliveries of one request at once: both get the one answer, one
// enterprise is created.
func TestCreateEnterpriseConcurrentReplay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if r := b.post(t, "/v1/api/user/trial", `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	path := "/api/v2/organization/" + b.orgPublicID(t, 1) + "/enterprise"
	var wg sync.WaitGroup
	answers := make([]response, 4)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = b.call(t, "POST", path, b.admin, enterpriseBody(t, nil))
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if a.status != http.StatusOK || a.body["enterpriseId"] != answers[0].body["enterpriseId"] {
			t.Fatalf("answers differ: %v", answers)
		}
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM enterprises`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d enterprises (%v), want 1", n, err)
	}
}

// A start-trial request that changes the user's e-mail address leaves the
// new one unverified, and sends a code to it: the old address's
// verification says nothing of the new one. The same address in another
// case changes nothing.
func TestNewEmailIsUnverifiedUntilActivated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred := b.addUser(t, "fred")
	b.exec(t, `UPDATE users SET email_verified = true WHERE username = 'fred'`)
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{"email":"FRED@acme.example"}`); r.status != http.StatusOK {
		t.Fatalf("start with the same address: %d %v", r.status, r.body)
	}
	if v := b.scalar(t, `SELECT email_verified::text FROM users WHERE username = 'fred'`); v != "true" {
		t.Fatalf("the same address in another case: verified %s, want true", v)
	}
	b.exec(t, `DELETE FROM trials`)
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{"email":"fred@quarry.example"}`); r.status != http.StatusOK {
		t.Fatalf("start with a new address: %d %v", r.status, r.body)
	}
	if v := b.scalar(t, `SELECT email || ' ' || email_verified::text FROM users WHERE username = 'fred'`); v != "fred@quarry.example false" {
		t.Fatalf("after a new address: %s, want it unverified", v)
	}
	if n := b.scalar(t, `SELECT count(*)::text FROM outbox WHERE channel = 'email' AND destination = 'fred@quarry.example' AND event_id LIKE 'activation:%'`); n != "1" {
		t.Fatalf("%s activation e-mails to the new address, want 1", n)
	}
	// Activating with that code verifies it again.
	code := b.scalar(t, `SELECT substring(payload->>'body' from '[0-9]{6}') FROM outbox WHERE destination = 'fred@quarry.example'`)
	if r := b.call(t, "POST", "/v1/api/user/activate", fred.key, `{"code":"`+code+`"}`); r.status != http.StatusOK {
		t.Fatalf("activate: %d %v", r.status, r.body)
	}
	if v := b.scalar(t, `SELECT email_verified::text FROM users WHERE username = 'fred'`); v != "true" {
		t.Fatalf("after activation: verified %s", v)
	}
}

// A request answered once is answered the same when repeated, also after
// its organization was deleted; an omitted thirdPartyIdentifier and an
// empty one are the same request.
func TestCreateEnterpriseReplays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if r := b.post(t, "/v1/api/user/trial", `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	path := "/api/v2/organization/" + b.orgPublicID(t, 1) + "/enterprise"
	first := b.call(t, "POST", path, b.admin, enterpriseBody(t, map[string]any{"thirdPartyIdentifier": nil}))
	if first.status != http.StatusOK {
		t.Fatalf("create: %d %v", first.status, first.body)
	}
	same := b.call(t, "POST", path, b.admin, enterpriseBody(t, map[string]any{"thirdPartyIdentifier": []map[string]string{}}))
	if same.status != http.StatusOK || same.body["enterpriseId"] != first.body["enterpriseId"] {
		t.Fatalf("the same request with thirdPartyIdentifier []: %d %v, want the first answer", same.status, same.body)
	}
	if r := b.call(t, "DELETE", "/v1/api/admin/organizations/1", b.admin, ""); r.status != http.StatusOK {
		t.Fatalf("delete the organization: %d %v", r.status, r.body)
	}
	again := b.call(t, "POST", path, b.admin, enterpriseBody(t, map[string]any{"thirdPartyIdentifier": nil}))
	if again.status != http.StatusOK || again.body["enterpriseId"] != first.body["enterpriseId"] {
		t.Fatalf("a replay after the organization was deleted: %d %v, want the first answer", again.status, again.body)
	}
	other := b.call(t, "POST", path, b.admin, enterpriseBody(t, map[string]any{"idempotencyKey": "order-2"}))
	if other.status != http.StatusNotFound || other.body["name"] != "OrganizationNotFound" {
		t.Fatalf("a new request for the deleted organization: %d %v, want 404", other.status, other.body)
	}
	if n := b.scalar(t, `SELECT count(*)::text FROM enterprises`); n != "1" {
		t.Fatalf("%s enterprises, want 1", n)
	}
}
