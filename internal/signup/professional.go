package signup

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
)

// ProSignup is a Professional sign-up, as decoded.
type ProSignup struct {
	Form Form
	// ProjectName names the first project; nil or blank derives it from
	// the username.
	ProjectName           *string
	JobTitle, CompanyName *string
	// Edge is as in EnterpriseSignup.
	Edge EdgeCheck
}

// maxProjectName bounds a first project's name.
const maxProjectName = 255

// Created identifies what a sign-up created.
type Created struct {
	UserID, ProjectID int64
}

// CreateProUser creates the user (plan professional, awaiting payment,
// e-mail unverified), their first project, and sends the activation code,
// in one transaction, once the sign-up passed its rules (any address),
// then the edge's checks, then the password's hash.
func (s *Service) CreateProUser(ctx context.Context, su ProSignup) (Created, error) {
	if su.ProjectName != nil && len(*su.ProjectName) > maxProjectName {
		return Created{}, apperr.InvalidField("projectName", "projectName may be at most %d characters", maxProjectName)
	}
	if err := su.Form.Validate(Policy{}); err != nil {
		return Created{}, err
	}
	u, err := s.admit(ctx, su.Form, su.Edge)
	if err != nil {
		return Created{}, err
	}
	u.JobTitle, u.CompanyName = su.JobTitle, su.CompanyName
	var out Created
	err = store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		now := s.now()
		row, err := q.InsertUser(ctx, u.params(domain.PlanProfessional, domain.PlanPendingPayment, now))
		if err != nil {
			return err
		}
		name := u.Username + "-project-1"
		if su.ProjectName != nil && strings.TrimSpace(*su.ProjectName) != "" {
			name = strings.TrimSpace(*su.ProjectName)
		}
		projectID, err := q.InsertProject(ctx, 0, row.ID, name, now)
		if err != nil {
			return err
		}
		out = Created{UserID: row.ID, ProjectID: projectID}
		return s.codes.SendCodeTx(ctx, tx, row.User)
	})
	return out, err
}

// ActivatePlanTx turns the user's plan awaiting payment active, in the
// payment's transaction, and reports whether one was waiting: a paid
// sign-up is no longer removed as unpaid.
func (s *Service) ActivatePlanTx(ctx context.Context, tx pgx.Tx, userID int64) (bool, error) {
	return store.New(tx).ActivatePlan(ctx, userID, s.clock.Now())
}
