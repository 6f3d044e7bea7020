package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/billing"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/enterprise"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/signup"
	"github.com/trialsd/trialsd/internal/store"
)

// The growth counters hear every source of a start and every path of a
// conversion, including those made in another service's transaction (the
// sign-up, the payment callback, v2 create-enterprise), and the trial
// gauges read the database when scraped.
func TestGrowthCountersBySourceAndPath(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	s := b.daemon.Services()
	var orgs []int64
	for i := range 2 {
		name := fmt.Sprintf("signup%d", i)
		st, err := s.Signup.StartEnterpriseTrial(ctx, signUp(name), "request:s")
		must(t, err)
		orgs = append(orgs, st.OrganizationID)
	}
	b.clock.Advance(3 * time.Hour)
	raw := fmt.Sprintf(`{"id":"evt_9","type":"payment.succeeded","organizationId":%d}`, orgs[0])
	_, err := s.Billing.Apply(ctx, billing.Event{ID: "evt_9", Type: billing.TypePaymentSucceeded, OrganizationID: &orgs[0]}, json.RawMessage(raw))
	must(t, err)
	org, err := store.New(b.pool).OrganizationByID(ctx, orgs[1])
	must(t, err)
	_, err = s.Enterprise.Create(ctx, domain.User{ID: 1, IsAdmin: true}, org.PublicID,
		enterprise.Request{Email: "newcomer@acme.example", IdempotencyKey: "k1", AdditionalAdmins: []string{}}, "request:e")
	must(t, err)

	m := b.scrape(t)
	for _, line := range []string{
		`trialsd_trials_started_total{source="enterprise_signup"} 2`,
		`trialsd_trials_started_total{source="admin"} 0`,
		`trialsd_trials_converted_total{from_state="active",path="payment"} 1`,
		`trialsd_trials_converted_total{from_state="active",path="enterprise"} 1`,
		`trialsd_trial_time_to_convert_seconds_bucket{path="payment",le="21600"} 1`,
		`trialsd_trials{state="upgraded"} 2`,
		`trialsd_trials{state="purged"} 0`,
		`trialsd_trials_ending{within="30d"} 0`,
		`trialsd_workers_enabled 1`,
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("/metrics lacks %q in:\n%s", line, grepLines(m, "trialsd_trials"))
		}
	}
}

// signUp is an enterprise sign-up of name at acme.example, without a
// password.
func signUp(name string) signup.EnterpriseSignup {
	email, yes := name+"@acme.example", true
	return signup.EnterpriseSignup{
		Form:  signup.Form{Name: &name, Username: &name, Email: &email, PrivacyPolicy: &yes},
		Trial: lifecycle.StartTrialRequest{Email: &email},
	}
}
