package httpapi_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/emails"
)

// Every documented operation against every kind of credential. Routes are
// classed from openapi.yaml itself (public, optional, signature, JWT only,
// admin, user), so a new route is covered as soon as it is documented.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t)
	b := setup(t)
	fred := b.addUser(t, "fred")
	revoked := b.addUser(t, "revoked")
	ctx := context.Background()
	acc := accounts.New(b.pool, clock.NewStub(t0), b.passwords)
	keys, err := acc.ListAPIKeys(ctx, "revoked")
	if err != nil || len(keys) != 1 {
		t.Fatal(err)
	}
	if err := acc.RevokeAPIKey(ctx, "revoked", keys[0].Prefix); err != nil {
		t.Fatal(err)
	}
	// Fred's trial makes organization 1 his, so member-only routes admit him.
	if r := b.call(t, "POST", "/v1/api/user/trial", fred.key, `{}`); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	sub := "2" // fred
	expired := forge(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwt.MapClaims{"sub": sub, "iss": "trialsd", "exp": t0.Add(-time.Hour).Unix(), "ver": 0})
	otherKey := forge(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0000"), jwt.MapClaims{"sub": sub, "iss": "trialsd", "exp": t0.Add(time.Hour).Unix(), "ver": 0})
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"1","iss":"trialsd","exp":9999999999,"ver":0}`)) + "."

	cells := []struct {
		name  string
		creds creds
	}{
		{"no credentials", creds{}},
		{"malformed key", creds{key: "not-a-key"}},
		{"revoked key", creds{key: revoked.key}},
		{"expired JWT", creds{header: expired}},
		{"JWT signed with another key", creds{cookie: otherKey}},
		{"alg none", creds{header: none}},
		{"user key", creds{key: fred.key}},
		{"user JWT", creds{header: fred.jwt}},
		{"admin key", creds{key: b.admin}},
	}
	// A fixed order, admin routes last: their admin cells delete trial 1
	// and organization 1, which the member-only route needs first.
	paths := doc.Paths.InMatchingOrder()
	isAdmin := func(p string) int {
		if strings.HasPrefix(p, "/v1/api/admin/") {
			return 1
		}
		return 0
	}
	slices.SortFunc(paths, func(a, b string) int { return cmp.Or(cmp.Compare(isAdmin(a), isAdmin(b)), cmp.Compare(a, b)) })
	for _, path := range paths {
		item := doc.Paths.Value(path)
		methods := slices.Sorted(maps.Keys(item.Operations()))
		for _, method := range methods {
			op := item.Operations()[method]
			p := strings.NewReplacer("{enterpriseTrialId}", "1", "{organizationId}", "1", "{userId}", "2").Replace(path)
			if strings.HasPrefix(path, "/api/v2/") {
				p = strings.Replace(path, "{organizationId}", strings.Repeat("0", 32), 1)
			}
			public := op.Security != nil && len(*op.Security) == 0
			// optional: anyone, but credentials sent must be valid.
			optional := op.Security != nil && slices.ContainsFunc(*op.Security, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 })
			signed := op.Security != nil && len(*op.Security) == 1 && (*op.Security)[0]["Signature"] != nil
			jwtOnly := op.Security != nil && len(*op.Security) > 0 && (*op.Security)[0]["ApiKeyAuthentication"] == nil && !signed
			admin := strings.HasPrefix(path, "/v1/api/admin/")
			if path == "/v1/openapi.yaml" || path == "/metrics" || path == emails.UnsubscribePath { // public, and not JSON (the unsubscribe link: TestUnsubscribe)
				continue
			}
			for _, c := range cells {
				r := b.as(t, method, p, c.creds, "{}")
				valid := c.name == "user key" || c.name == "user JWT" || c.name == "admin key"
				if c.name == "user key" || c.name == "admin key" {
					valid = !jwtOnly // API keys are ignored where only a JWT counts
				}
				var want string
				switch {
				case public, optional && c.name == "no credentials":
					want = "not 401"
				case signed:
					want = "401" // no signature in any cell
				case !valid:
					want = "401"
				case admin && c.name != "admin key":
					want = "403"
				default:
					want = "not 401/403"
				}
				ok := map[string]bool{
					"401":         r.status == http.StatusUnauthorized,
					"403":         r.status == http.StatusForbidden,
					"not 401":     r.status != http.StatusUnauthorized,
					"not 401/403": r.status != http.StatusUnauthorized && r.status != http.StatusForbidden,
				}[want]
				if !ok || r.status >= 500 {
					t.Errorf("%s %s with %s: %d %v, want %s", method, path, c.name, r.status, r.body, want)
				}
				b.clock.Advance(7 * time.Second) // stay clear of the login and sign-up rate limits
			}
		}
	}
}
