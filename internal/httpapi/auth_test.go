package httpapi_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/store"
)

type person struct {
	id  int64
	key string
	jwt string
}

// addUser creates a user with a password and an API key, and logs them in.
func (b *testBundle) addUser(t *testing.T, username string) person {
	t.Helper()
	ctx := context.Background()
	hash, err := b.passwords.Hash(ctx, "pa55word!")
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.New(b.pool).InsertUser(ctx, store.InsertUserParams{
		Username: username, Email: username + "@acme.example", PasswordHash: &hash, Now: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	key, err := accounts.New(b.pool, clock.NewStub(t0), b.passwords).CreateAPIKey(ctx, username, "")
	if err != nil {
		t.Fatal(err)
	}
	r := b.call(t, "POST", "/v1/api-login", "", `{"username":"`+username+`","password":"pa55word!"}`)
	if r.status != http.StatusOK {
		t.Fatalf("login %s: %d %v", username, r.status, r.body)
	}
	return person{id: u.ID, key: key, jwt: r.body["token"].(string)}
}

type creds struct {
	key, cookie, header string
}

func (b *testBundle) as(t *testing.T, method, path string, c creds, body string) response {
	t.Helper()
	req, _ := http.NewRequest(method, b.server.URL+path, strings.NewReader(body))
	if c.key != "" {
		req.Header.Set("x-api-key", c.key)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "jwt", Value: c.cookie})
	}
	if c.header != "" {
		req.Header.Set("x-jwt-token", c.header)
	}
	return b.do(t, req)
}

func TestLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred := b.addUser(t, "fred")
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO users (username, email, created_at, updated_at) VALUES ('nopass', 'nopass@acme.example', $1, $1)`, t0); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("POST", b.server.URL+"/v1/api-login", strings.NewReader(`{"username":"FRED@acme.example","password":"pa55word!"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "jwt" {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusOK || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" || cookie.MaxAge != 86400 {
		t.Fatalf("login by e-mail: %d, cookie %+v", resp.StatusCode, cookie)
	}
	if cookie.Secure {
		t.Error("cookie marked Secure over plain HTTP: the browser would drop it")
	}

	tests := []struct {
		name, body string
		want       int
	}{
		{"wrong password", `{"username":"fred","password":"nope"}`, http.StatusUnauthorized},
		{"unknown user", `{"username":"ghost","password":"pa55word!"}`, http.StatusUnauthorized},
		{"no password set, empty given", `{"username":"nopass","password":""}`, http.StatusUnauthorized},
		{"no password set, some given", `{"username":"nopass","password":"pa55word!"}`, http.StatusUnauthorized},
		{"missing username", `{"password":"x"}`, http.StatusBadRequest},
		{"missing password", `{"username":"fred"}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		if r := b.call(t, "POST", "/v1/api-login", "", tt.body); r.status != tt.want || r.body["success"] != false {
			t.Errorf("%s: %d %v, want %d", tt.name, r.status, r.body, tt.want)
		}
	}
	if fred.jwt == "" {
		t.Fatal("no token")
	}
}

func forge(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCredentialRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred, wilma := b.addUser(t, "fred"), b.addUser(t, "wilma")
	fredTrials := "/v1/api/users/" + strconv.FormatInt(fred.id, 10) + "/trials"
	sub := strconv.FormatInt(fred.id, 10)
	valid := jwt.MapClaims{"sub": sub, "iss": "trialsd", "exp": t0.Add(time.Hour).Unix(), "ver": 0}
	noneToken := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+sub+`","iss":"trialsd","exp":9999999999,"ver":0}`)) + "."

	tests := []struct {
		name   string
		method string
		path   string
		creds  creds
		want   int
	}{
		{"api key on any-credential route", "POST", "/v1/api/user/trial", creds{key: fred.key}, http.StatusOK},
		{"jwt cookie on JWT-only route", "GET", fredTrials, creds{cookie: fred.jwt}, http.StatusOK},
		{"jwt header on JWT-only route", "GET", fredTrials, creds{header: fred.jwt}, http.StatusOK},
		{"api key alone on JWT-only route", "GET", fredTrials, creds{key: fred.key}, http.StatusUnauthorized},
		{"api key of another user ignored on JWT-only route", "GET", fredTrials, creds{header: fred.jwt, key: wilma.key}, http.StatusOK},
		{"another user's trials", "GET", fredTrials, creds{header: wilma.jwt}, http.StatusForbidden},
		{"admin lists anyone's trials... with a JWT only", "GET", fredTrials, creds{key: b.admin}, http.StatusUnauthorized},
		{"jwt and key of one user", "POST", "/v1/api/organizations/1/trial/request-extension", creds{header: fred.jwt, key: fred.key}, http.StatusOK},
		{"jwt and key of different users", "POST", "/v1/api/user/trial", creds{header: fred.jwt, key: wilma.key}, http.StatusUnauthorized},
		{"cookie and header of different users", "POST", "/v1/api/user/trial", creds{cookie: fred.jwt, header: wilma.jwt}, http.StatusUnauthorized},
		{"valid key, bad jwt", "POST", "/v1/api/user/trial", creds{key: fred.key, header: "garbage"}, http.StatusUnauthorized},
		{"alg none", "GET", fredTrials, creds{header: noneToken}, http.StatusUnauthorized},
		{"signed with another key", "GET", fredTrials, creds{header: forge(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), valid)}, http.StatusUnauthorized},
		{"HS512 with our key", "GET", fredTrials, creds{header: forge(t, jwt.SigningMethodHS512, []byte(jwtSecret), valid)}, http.StatusUnauthorized},
		{"another issuer", "GET", fredTrials, creds{header: forge(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{"sub": sub, "iss": "evil", "exp": t0.Add(time.Hour).Unix(), "ver": 0})}, http.StatusUnauthorized},
		{"no expiry", "GET", fredTrials, creds{header: forge(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{"sub": sub, "iss": "trialsd", "ver": 0})}, http.StatusUnauthorized},
		{"our own forgery is accepted", "GET", fredTrials, creds{header: forge(t, jwt.SigningMethodHS256, []byte(jwtSecret), valid)}, http.StatusOK},
	}
	for _, tt := range tests { // in order: the extension request needs fred's trial
		if r := b.as(t, tt.method, tt.path, tt.creds, "{}"); r.status != tt.want {
			t.Errorf("%s: %d %v, want %d", tt.name, r.status, r.body, tt.want)
		}
	}

	// An expired token, and a revoked one.
	b.clock.Advance(25 * time.Hour)
	if r := b.as(t, "GET", fredTrials, creds{header: fred.jwt}, ""); r.status != http.StatusUnauthorized {
		t.Errorf("expired token: %d", r.status)
	}
	b.clock.Set(t0)
	if _, err := accounts.New(b.pool, b.clock, b.passwords).RevokeTokens(context.Background(), "fred"); err != nil {
		t.Fatal(err)
	}
	if r := b.as(t, "GET", fredTrials, creds{header: fred.jwt}, ""); r.status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", r.status)
	}
}

func TestListUserTrials(t *testing.T) {
	t.Parallel()
	b := setup(t, manyTrials)
	fred := b.addUser(t, "fred")
	path := "/v1/api/users/" + strconv.FormatInt(fred.id, 10) + "/trials"
	if r := b.as(t, "GET", path, creds{header: fred.jwt}, ""); r.status != http.StatusOK || len(r.body["trials"].([]any)) != 0 {
		t.Fatalf("no trials yet: %d %v", r.status, r.body)
	}
	for _, body := range []string{`{"userId":` + strconv.FormatInt(fred.id, 10) + `}`, `{"userId":` + strconv.FormatInt(fred.id, 10) + `, "notes":"second"}`} {
		if r := b.call(t, "POST", "/v1/api/admin/trials", b.admin, body); r.status != http.StatusOK || r.body["id"] == nil {
			t.Fatalf("adminCreateTrial: %d %v", r.status, r.body)
		}
	}
	r := b.as(t, "GET", path, creds{header: fred.jwt}, "")
	trials := r.body["trials"].([]any)
	if len(trials) != 2 || trials[0].(map[string]any)["notes"] != "second" || trials[0].(map[string]any)["userId"] != float64(fred.id) {
		t.Fatalf("trials %v, want two of fred's, newest first", trials)
	}
	for _, tt := range []struct {
		body string
		key  string
		want int
	}{
		{`{}`, b.admin, http.StatusBadRequest},
		{`{"userId": 999}`, b.admin, http.StatusNotFound},
		{`{"userId": 1}`, fred.key, http.StatusForbidden},
	} {
		if r := b.call(t, "POST", "/v1/api/admin/trials", tt.key, tt.body); r.status != tt.want {
			t.Errorf("adminCreateTrial %s: %d, want %d", tt.body, r.status, tt.want)
		}
	}
}

func TestRequestExtension(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fred, wilma := b.addUser(t, "fred"), b.addUser(t, "wilma")
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	path := "/v1/api/organizations/1/trial/request-extension"
	if r := b.call(t, "POST", path, fred.key, `{"reason":"pilot needs two more weeks"}`); r.status != http.StatusOK {
		t.Fatalf("member: %d %v", r.status, r.body)
	}
	if r := b.call(t, "POST", path, wilma.key, `{}`); r.status != http.StatusForbidden {
		t.Fatalf("non-member: %d", r.status)
	}
	if r := b.call(t, "POST", "/v1/api/organizations/99/trial/request-extension", b.admin, `{}`); r.status != http.StatusNotFound {
		t.Fatalf("unknown organization: %d", r.status)
	}
	r := b.call(t, "GET", "/v1/api/admin/trials/1/events", b.admin, "")
	events := r.body["events"].([]any)
	last := events[len(events)-1].(map[string]any)
	data, _ := last["data"].(map[string]any)
	request, _ := data["request"].(map[string]any)
	if last["kind"] != "trial.extension_requested" || request["reason"] != "pilot needs two more weeks" {
		t.Fatalf("last event %v", last)
	}
	t0Trial := b.call(t, "GET", "/v1/api/admin/trials/1", b.admin, "").body["trial"].(map[string]any)
	if t0Trial["expirationDate"] != "2026-07-15T09:30:00.000Z" {
		t.Fatalf("an extension request changed the date: %v", t0Trial["expirationDate"])
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addUser(t, "fred") // one login
	from := func(ip, user string) int {
		req, _ := http.NewRequest("POST", b.server.URL+"/v1/api-login", strings.NewReader(`{"username":"`+user+`","password":"wrong"}`))
		req.Header.Set("X-Forwarded-For", ip)
		return b.do(t, req).status
	}
	// Per client: the 11th attempt within a minute from one address.
	for i := range 10 {
		if s := from("198.51.100.1", "user"+strconv.Itoa(i)); s != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, s)
		}
	}
	req, _ := http.NewRequest("POST", b.server.URL+"/v1/api-login", strings.NewReader(`{"username":"x","password":"y"}`))
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	r := b.do(t, req)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("11th attempt: %d %v", r.status, r.header)
	}
	// Per account: one name from many addresses (fred logged in once already).
	for i := range 9 {
		if s := from("203.0.113."+strconv.Itoa(i+1), "fred"); s != http.StatusUnauthorized {
			t.Fatalf("account attempt %d: %d", i+2, s)
		}
	}
	if s := from("203.0.113.200", "FRED"); s != http.StatusTooManyRequests {
		t.Fatalf("11th attempt on one account: %d, want 429", s)
	}
	// A minute later it is allowed again.
	b.clock.Advance(time.Minute)
	if s := from("198.51.100.1", "fred"); s != http.StatusUnauthorized {
		t.Fatalf("after a minute: %d", s)
	}
}

// Each limit counts its own purpose, per account however it is named: ten
// logins as "ACTIVATE:<id>" leave that user's activation attempts alone,
// and an account's login budget is one, by username and by e-mail alike.
func TestRateLimitKeysDoNotCollide(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wilma := b.addUser(t, "wilma") // one login
	from := func(ip, login string) int {
		req, _ := http.NewRequest("POST", b.server.URL+"/v1/api-login", strings.NewReader(`{"username":"`+login+`","password":"wrong"}`))
		req.Header.Set("X-Forwarded-For", ip)
		return b.do(t, req).status
	}
	for i := range 10 {
		if s := from("198.51.100."+strconv.Itoa(i+1), "ACTIVATE:"+strconv.FormatInt(wilma.id, 10)); s != http.StatusUnauthorized {
			t.Fatalf("login %d as ACTIVATE:%d: %d", i+1, wilma.id, s)
		}
	}
	if r := b.call(t, "POST", "/v1/api/user/activate", wilma.key, `{"code":"000000"}`); r.status != http.StatusBadRequest {
		t.Fatalf("wilma's first activation attempt: %d %v, want 400 (a wrong code), not 429", r.status, r.body)
	}
	// Five wrong logins by username and four by e-mail are nine on one
	// account: with the first, the tenth; the next is refused, by either name.
	for i := range 9 {
		login := "wilma"
		if i >= 5 {
			login = "Wilma@ACME.example"
		}
		if s := from("203.0.113."+strconv.Itoa(i+1), login); s != http.StatusUnauthorized {
			t.Fatalf("account attempt %d as %s: %d", i+2, login, s)
		}
	}
	if s := from("203.0.113.100", "wilma@acme.example"); s != http.StatusTooManyRequests {
		t.Fatalf("the eleventh attempt on one account, by e-mail: %d, want 429", s)
	}
	if s := from("203.0.113.101", "wilma"); s != http.StatusTooManyRequests {
		t.Fatalf("the twelfth attempt on one account, by username: %d, want 429", s)
	}
}

// Anyone may fail an admin's logins on purpose, but not lock the admin out
// of the client they log in from: ten wrong passwords from an outside
// address, by username and e-mail in turn, exhaust the account's budget
// for clients it has not logged in from, while the admin's own client,
// with the right password, still gets in. A client the account never
// logged in from waits, as the lockout is for.
func TestLoginLockoutSparesKnownClients(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.addUser(t, "barney") // logged in once, from 127.0.0.1
	login := func(ip, name, password string) int {
		req, _ := http.NewRequest("POST", b.server.URL+"/v1/api-login",
			strings.NewReader(`{"username":"`+name+`","password":"`+password+`"}`))
		if ip != "" {
			req.Header.Set("X-Forwarded-For", ip)
		}
		return b.do(t, req).status
	}
	for i := range 10 {
		name := "barney"
		if i%2 == 1 {
			name = "barney@acme.example"
		}
		// The account's budget is ten a minute, and barney's own login
		// spent one: the tenth attempt is refused already.
		if s := login("198.51.100.66", name, "guess"+strconv.Itoa(i)); s != http.StatusUnauthorized && (i < 9 || s != http.StatusTooManyRequests) {
			t.Fatalf("wrong password %d: %d", i+1, s)
		}
	}
	if s := login("203.0.113.9", "barney", "guess"); s != http.StatusTooManyRequests {
		t.Errorf("another unknown client after the attack: %d, want 429", s)
	}
	if s := login("", "barney", "pa55word!"); s != http.StatusOK {
		t.Errorf("the admin's own client with the right password: %d, want 200", s)
	}
	if s := login("203.0.113.10", "barney", "pa55word!"); s != http.StatusTooManyRequests {
		t.Errorf("a new client with the right password during the lockout: %d, want 429", s)
	}
}

// A login name longer than any account's is refused before it is looked
// up or becomes a rate limit's key: 1 MiB names from many addresses cost
// neither memory nor buckets.
func TestLoginNamesAreCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	long := strings.Repeat("a", 1<<20-100)
	for i := range 20 {
		req, _ := http.NewRequest("POST", b.server.URL+"/v1/api-login", strings.NewReader(`{"username":"`+long+`","password":"x"}`))
		req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(i+1))
		if r := b.do(t, req); r.status != http.StatusBadRequest {
			t.Fatalf("a 1 MiB name: %d %v, want 400", r.status, r.body)
		}
	}
	if n := b.limits.LoginPerAccount.Len(); n != 0 {
		t.Errorf("%d per-account buckets after 1 MiB names, want none", n)
	}
}
