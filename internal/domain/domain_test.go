package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
)

// Events record who acted as the contract writes it; the operator at the
// command line is recorded as the system, with an admin's rights.
func TestActorString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		actor domain.Actor
		want  string
	}{
		{domain.Actor{UserID: 7}, "user:7"},
		{domain.Actor{UserID: 7, Admin: true}, "admin:7"},
		{domain.System, "system"},
		{domain.Operator, "system"},
	} {
		if got := tc.actor.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.actor, got, tc.want)
		}
	}
	if !domain.Operator.Admin || domain.System.Admin {
		t.Errorf("Operator must act as an admin and System must not: %+v %+v", domain.Operator, domain.System)
	}
}

func TestStateLive(t *testing.T) {
	t.Parallel()
	live := map[domain.State]bool{domain.StateActive: true, domain.StateExpired: true}
	for _, s := range domain.States {
		if s.Live() != live[s] {
			t.Errorf("%s.Live() = %v, want %v", s, s.Live(), live[s])
		}
	}
}

// One e-mail rule: a bare address, exactly as sent.
func TestCheckEmail(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"ada@acme.example": true, "Ada <ada@acme.example>": false, " ada@acme.example": false,
		"ada@": false, "": false, "a.b+c@acme.example": true,
	} {
		err := domain.CheckEmail("email", in)
		if (err == nil) != ok {
			t.Errorf("CheckEmail(%q) = %v, want ok %v", in, err, ok)
		}
		var e *apperr.Error
		if err != nil && (!errors.As(err, &e) || e.Field != "email" || e.Code != apperr.Invalid) {
			t.Errorf("CheckEmail(%q) = %v: not an invalid email field", in, err)
		}
	}
	if d := domain.EmailDomain("ada@Acme.Example"); d != "acme.example" {
		t.Errorf("EmailDomain = %q", d)
	}
}

func TestTrialDetailsValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", domain.MaxFieldLength+1)
	bad := "maybe"
	yes := "yes"
	for _, tc := range []struct {
		name    string
		details domain.TrialDetails
		field   string
	}{
		{"empty", domain.TrialDetails{}, ""},
		{"an accepted answer", domain.TrialDetails{UserHasMLModelsInProduction: &yes}, ""},
		{"a long country", domain.TrialDetails{Country: &long}, "country"},
		{"an unknown answer", domain.TrialDetails{UserHasMLModelsInProduction: &bad}, "userHasMLModelsInProduction"},
		{"too many utmParams", domain.TrialDetails{UTMParams: make([]json.RawMessage, domain.MaxUTMParams+1)}, "utmParams"},
	} {
		err := tc.details.Validate()
		var e *apperr.Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v, want nil", tc.name, err)
		case tc.field != "" && (!errors.As(err, &e) || e.Field != tc.field):
			t.Errorf("%s: %v, want an error on %s", tc.name, err, tc.field)
		}
	}
}

func TestParseCause(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]domain.Cause{
		domain.JobCause(42): {JobID: 42}, domain.RequestCause("req-1"): {RequestID: "req-1"},
		domain.PaymentCause("evt_9"): {PaymentEventID: "evt_9"}, domain.CommandCause("trials-extend"): {Command: "trials-extend"},
		domain.SweepCause: {}, domain.ReconcileCause: {}, domain.TestClockDeleteCause: {}, "job:x": {},
	} {
		if got := domain.ParseCause(in); got != want {
			t.Errorf("domain.ParseCause(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// An operator may move, upgrade or delete a live trial, restore a deleted
// one, and do nothing to an upgraded one.
func TestStateActions(t *testing.T) {
	t.Parallel()
	for s, want := range map[domain.State]string{
		domain.StateActive: "[expiration upgrade delete]", domain.StateExpired: "[expiration upgrade delete]",
		domain.StateDeleted: "[restore]", domain.StateUpgraded: "[]",
	} {
		if got := fmt.Sprint(s.Actions()); got != want {
			t.Errorf("%s.Actions() = %s, want %s", s, got, want)
		}
	}
}
