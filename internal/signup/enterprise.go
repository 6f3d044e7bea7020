package signup

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/store"
)

// newUser is the account a public sign-up creates.
type newUser struct {
	Username, Email, Name string
	// PasswordHash is nil for a user who will log in another way.
	PasswordHash          *string
	JobTitle, CompanyName *string
}

// params are the user's columns on plan, in state, created now.
func (u newUser) params(plan domain.Plan, state domain.PlanState, now time.Time) store.InsertUserParams {
	return store.InsertUserParams{
		Username: u.Username, Email: u.Email, Name: u.Name, PasswordHash: u.PasswordHash,
		JobTitle: u.JobTitle, CompanyName: u.CompanyName, Plan: plan, PlanState: state, Now: now,
	}
}

// EnterpriseSignup is the public enterprise-trial sign-up, as decoded.
type EnterpriseSignup struct {
	// Form's Email is the trial request's.
	Form                  Form
	Trial                 lifecycle.StartTrialRequest
	JobTitle, CompanyName *string
	// Edge is the edge's checks (EdgeCheck); nil when the caller vouches
	// for the sign-up (a test, an operator's tool).
	Edge EdgeCheck
}

// StartEnterpriseTrial is the public enterprise-trial sign-up: a new user
// (e-mail unverified, plan free) and their self-service trial, in one
// transaction, once the sign-up passed its rules, business addresses only
// (signup.free_email_domains), then the edge's checks, then the password's
// hash. A
// taken username or e-mail is a conflict; nothing is ever attached to an
// existing account.
func (s *Service) StartEnterpriseTrial(ctx context.Context, su EnterpriseSignup, cause string) (lifecycle.StartedTrial, error) {
	start, err := lifecycle.ValidateStart(su.Trial)
	if err != nil {
		return lifecycle.StartedTrial{}, err
	}
	if err := su.Form.Validate(Policy{BusinessOnly: true, FreeEmailDomains: s.freeEmailDomains}); err != nil {
		return lifecycle.StartedTrial{}, err
	}
	nu, err := s.admit(ctx, su.Form, su.Edge)
	if err != nil {
		return lifecycle.StartedTrial{}, err
	}
	nu.JobTitle, nu.CompanyName = su.JobTitle, su.CompanyName
	var started lifecycle.StartedTrial
	err = store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		user, err := store.New(tx).InsertUser(ctx, nu.params(domain.PlanFree, domain.PlanActive, s.now()))
		if err != nil {
			return err
		}
		started, err = s.lifecycle.StartTrialTx(ctx, tx, user.User, start, cause)
		return err
	})
	if err != nil {
		return lifecycle.StartedTrial{}, err
	}
	started.Committed(ctx)
	s.logger.InfoContext(ctx, "trial sign-up", "trial_id", started.TrialID, "user_id", started.UserID,
		"organization_id", started.OrganizationID, "expiration_date", started.ExpirationDate)
	return started, nil
}
