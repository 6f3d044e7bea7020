package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

var sixDigits = regexp.MustCompile(`\b(\d{6})\b`)

// lastEmailCode reads the newest activation e-mail written to the outbox,
// as the user would read it, and returns its code.
func (b *testBundle) lastEmailCode(t *testing.T, to string) string {
	t.Helper()
	var payload []byte
	err := b.pool.QueryRow(context.Background(), `
		SELECT payload FROM outbox WHERE channel = 'email' AND destination = $1 ORDER BY id DESC LIMIT 1`, to).Scan(&payload)
	if err != nil {
		t.Fatalf("no e-mail to %s: %v", to, err)
	}
	var m struct{ Body string }
	_ = json.Unmarshal(payload, &m)
	code := sixDigits.FindStringSubmatch(m.Body)
	if code == nil {
		t.Fatalf("no code in %q", m.Body)
	}
	return code[1]
}

func TestProUserSignupAndActivation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := signupBody(t, map[string]any{"email": "jan@gmail.com", "username": "janjongboom", "projectName": "Keyword spotting", "organizationName": nil})
	r := b.call(t, "POST", "/v1/api-create-pro-user", "", body)
	if r.status != http.StatusOK || r.body["success"] != true {
		t.Fatalf("pro signup (free mail is fine here): %d %v", r.status, r.body)
	}
	userID := int64(r.body["id"].(float64))
	projectID := b.scalar(t, `SELECT id::text FROM projects WHERE owner_user_id = $1 AND name = 'Keyword spotting'`, userID)
	if r.body["redirectUrl"] != "http://localhost:4800/studio/"+projectID+"?utm_source=test" {
		t.Fatalf("redirectUrl %v", r.body["redirectUrl"])
	}
	if got := b.scalar(t, `SELECT plan || ':' || plan_state || ':' || email_verified FROM users WHERE id = $1`, userID); got != "professional:pending_payment:false" {
		t.Fatalf("user %s", got)
	}
	if r := b.call(t, "POST", "/v1/api-create-pro-user", "", body); r.status != http.StatusConflict {
		t.Fatalf("same user again: %d", r.status)
	}

	login := b.call(t, "POST", "/v1/api-login", "", `{"username":"janjongboom","password":"yabba-dabba-doo"}`)
	jwt := login.body["token"].(string)
	code := b.lastEmailCode(t, "jan@gmail.com")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if r := b.as(t, "POST", "/v1/api/user/activate", creds{header: jwt}, `{"code":"`+wrong+`"}`); r.status != http.StatusBadRequest {
		t.Fatalf("wrong code: %d %v", r.status, r.body)
	}
	// A new code replaces the old one.
	if r := b.as(t, "POST", "/v1/api/user/request-activation", creds{header: jwt}, ``); r.status != http.StatusOK {
		t.Fatalf("request activation: %d %v", r.status, r.body)
	}
	newCode := b.lastEmailCode(t, "jan@gmail.com")
	if newCode != code {
		if r := b.as(t, "POST", "/v1/api/user/activate", creds{header: jwt}, `{"code":"`+code+`"}`); r.status != http.StatusBadRequest {
			t.Fatalf("replaced code still works: %d", r.status)
		}
	}
	if r := b.as(t, "POST", "/v1/api/user/activate", creds{header: jwt}, `{"code":"`+newCode+`"}`); r.status != http.StatusOK {
		t.Fatalf("right code: %d %v", r.status, r.body)
	}
	if got := b.scalar(t, `SELECT email_verified::text FROM users WHERE id = $1`, userID); got != "true" {
		t.Fatal("e-mail not verified")
	}
	if r := b.as(t, "POST", "/v1/api/user/activate", creds{header: jwt}, `{"code":"`+newCode+`"}`); r.status != http.StatusOK {
		t.Fatalf("activating twice: %d", r.status)
	}
	if b.scalar(t, `SELECT count(*)::text FROM users WHERE activation_code_hash IS NOT NULL`) != "0" {
		t.Fatal("code hash kept after activation")
	}
}

func TestActivationAttemptsAreLimited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred := b.addUser(t, "fred")
	last := 0
	for i := range 12 {
		last = b.as(t, "POST", "/v1/api/user/activate", creds{key: fred.key}, `{"code":"`+strconv.Itoa(100000+i)+`"}`).status
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("12th guess: %d, want 429", last)
	}
}
