package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/turnstile"
)

// countingHasher counts the hashes it makes.
type countingHasher struct {
	passwords *accounts.Passwords
	n         atomic.Int64
}

func (h *countingHasher) HashPassword(ctx context.Context, pw string) (string, error) {
	h.n.Add(1)
	return h.passwords.Hash(ctx, pw)
}

// A sign-up's password is hashed only after every other check, Turnstile
// last among them, has passed: a refused sign-up, however many, costs no
// hash (each takes 19 MiB and a core).
func TestSignupHashesOnlyWhatPassedTurnstile(t *testing.T) {
	t.Parallel()
	hashes := &countingHasher{passwords: accounts.NewTestPasswords()}
	siteverify := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("response") == "human" {
			_, _ = w.Write([]byte(`{"success":true}`))
			return
		}
		_, _ = w.Write([]byte(`{"success":false,"error-codes":["invalid-input-response"]}`))
	}))
	t.Cleanup(siteverify.Close)
	cfg := config.Default()
	cfg.Turnstile = config.Turnstile{Enabled: true, Secret: "s", VerifyURL: siteverify.URL}
	v := turnstile.New(&http.Client{Timeout: 5 * time.Second}, cfg.Turnstile)
	str := func(s string) *string { return &s }
	yes := true
	fields := func(token, password string) signupFields {
		return signupFields{Username: str("wilma"), Password: str(password), PrivacyPolicy: &yes, TurnstileResponse: str(token)}
	}
	checks := signupChecks{name: str("Wilma"), email: str("wilma@bedrock.example"), hasher: hashes}
	r := httptest.NewRequest("POST", "/v1/api-create-pro-user", strings.NewReader("{}"))

	for _, tc := range []struct {
		name, token, password string
		field                 string
	}{
		{"a bad Turnstile token", "bot", "a-long-enough-password", "turnstileResponse"},
		{"a short password", "human", "short", "password"},
	} {
		_, err := checkSignup(r, fields(tc.token, tc.password), checks, v, cfg)
		var e *apperr.Error
		if !errors.As(err, &e) || e.Field != tc.field {
			t.Fatalf("%s: %v, want a 400 on %s", tc.name, err, tc.field)
		}
		if n := hashes.n.Load(); n != 0 {
			t.Fatalf("%s: %d password hashes made for a refused sign-up", tc.name, n)
		}
	}
	hash, err := checkSignup(r, fields("human", "a-long-enough-password"), checks, v, cfg)
	if err != nil || hash == nil || hashes.n.Load() != 1 {
		t.Fatalf("a sign-up that passed: hash %v, %v, %d hashes; want one", hash, err, hashes.n.Load())
	}
}
