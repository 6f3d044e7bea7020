package signup

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/store"
)

// NewUser is the account a public sign-up creates.
type NewUser struct {
	Username, Email, Name string
	// PasswordHash is nil for a user who will log in another way.
	PasswordHash          *string
	JobTitle, CompanyName *string
}

// params are the user's columns on plan, in state, created now.
func (u NewUser) params(plan domain.Plan, state domain.PlanState, now time.Time) store.InsertUserParams {
	return store.InsertUserParams{
		Username: u.Username, Email: u.Email, Name: u.Name, PasswordHash: u.PasswordHash,
		JobTitle: u.JobTitle, CompanyName: u.CompanyName, Plan: plan, PlanState: state, Now: now,
	}
}

// StartEnterpriseTrial is the public enterprise-trial sign-up: a new user
// (e-mail unverified, plan free) and their self-service trial, in one
// transaction. A taken username or e-mail is a conflict; nothing is ever
// attached to an existing account.
func (s *Service) StartEnterpriseTrial(ctx context.Context, nu NewUser, req lifecycle.StartTrialRequest, cause string) (lifecycle.StartedTrial, error) {
	if err := lifecycle.ValidateStart(req); err != nil {
		return lifecycle.StartedTrial{}, err
	}
	var started lifecycle.StartedTrial
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		user, err := store.New(tx).InsertUser(ctx, nu.params(domain.PlanFree, domain.PlanActive, s.now()))
		if err != nil {
			return err
		}
		started, err = s.lifecycle.StartTrialTx(ctx, tx, user, req, cause)
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
