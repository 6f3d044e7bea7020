package signup_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/signup"
	"github.com/trialsd/trialsd/internal/testdb"
)

// countingHasher counts the hashes it makes.
type countingHasher struct {
	passwords *accounts.Passwords
	n         atomic.Int64
}

func (h *countingHasher) Hash(ctx context.Context, pw string) (string, error) {
	h.n.Add(1)
	return h.passwords.Hash(ctx, pw)
}

// newService is the sign-up service on a database of its own, with the
// daemon's lifecycle, refusing gmail.com, hashing through hashes.
func newService(t *testing.T, hashes signup.Hasher) *signup.Service {
	t.Helper()
	pool := testdb.New(t)
	cfg := config.Default()
	clk := clock.NewStub(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	s, err := services.NewInsertOnly(services.Deps{Config: cfg, Logger: slog.New(slog.DiscardHandler), Pool: pool, Clock: clk, Passwords: accounts.NewTestPasswords()})
	if err != nil {
		t.Fatal(err)
	}
	return signup.New(signup.Deps{Pool: pool, Clock: clk, Lifecycle: s.Lifecycle, Passwords: hashes, FreeEmailDomains: []string{"gmail.com"}})
}

func form(email, password string) signup.Form {
	yes := true
	name, user := "Wilma", "wilma"
	return signup.Form{Name: &name, Username: &user, Email: &email, Password: &password, PrivacyPolicy: &yes}
}

// A sign-up's password is hashed only after every other check has passed,
// the edge's checks last among them: a refused sign-up, however
// many, costs no hash (each takes 19 MiB and a core).
func TestSignupHashesOnlyWhatPassedTheChecks(t *testing.T) {
	t.Parallel()
	hashes := &countingHasher{passwords: accounts.NewTestPasswords()}
	svc := newService(t, hashes)
	ctx := context.Background()
	bot := signup.EdgeCheck(func(context.Context) error {
		return apperr.InvalidField("turnstileResponse", "Human verification failed")
	})
	person := signup.EdgeCheck(func(context.Context) error { return nil })

	for _, tc := range []struct {
		name  string
		su    signup.EnterpriseSignup
		field string
	}{
		{"a bot", signup.EnterpriseSignup{Form: form("wilma@bedrock.example", "a-long-enough-password"), Edge: bot}, "turnstileResponse"},
		{"a short password", signup.EnterpriseSignup{Form: form("wilma@bedrock.example", "short"), Edge: person}, "password"},
	} {
		tc.su.Trial.Email = tc.su.Form.Email
		if _, err := svc.StartEnterpriseTrial(ctx, tc.su, "test"); apperr.FieldOf(err) != tc.field {
			t.Fatalf("%s: %v, want a 400 on %s", tc.name, err, tc.field)
		}
		if n := hashes.n.Load(); n != 0 {
			t.Fatalf("%s: %d password hashes made for a refused sign-up", tc.name, n)
		}
	}
	su := signup.EnterpriseSignup{Form: form("wilma@bedrock.example", "a-long-enough-password"), Edge: person}
	su.Trial.Email = su.Form.Email
	if _, err := svc.StartEnterpriseTrial(ctx, su, "test"); err != nil || hashes.n.Load() != 1 {
		t.Fatalf("a sign-up that passed: %v, %d hashes; want one", err, hashes.n.Load())
	}
}

// The enterprise sign-up's business-only rule is the service's own: a
// caller of the service, not only the HTTP handler, cannot start a trial
// with a free-mail address, and the Professional sign-up takes one.
func TestEnterpriseSignupRefusesFreeMailForEveryCaller(t *testing.T) {
	t.Parallel()
	svc := newService(t, accounts.NewTestPasswords())
	su := signup.EnterpriseSignup{Form: form("wilma@gmail.com", "a-long-enough-password"), Trial: lifecycle.StartTrialRequest{}}
	su.Trial.Email = su.Form.Email
	_, err := svc.StartEnterpriseTrial(context.Background(), su, "test")
	var e *apperr.Error
	if !errors.As(err, &e) || e.Reason != signup.ReasonFreeEmail {
		t.Fatalf("enterprise sign-up with gmail.com: %v, want the free-mail refusal", err)
	}
	pro := signup.ProSignup{Form: form("wilma@gmail.com", "a-long-enough-password")}
	long := string(make([]byte, 256))
	pro.ProjectName = &long
	if _, err := svc.CreateProUser(context.Background(), pro); apperr.FieldOf(err) != "projectName" {
		t.Fatalf("pro sign-up with a 256-byte project name: %v, want a 400 on projectName", err)
	}
}
