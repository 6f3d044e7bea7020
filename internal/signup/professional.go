package signup

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
)

// ProUser is a Professional sign-up.
type ProUser struct {
	NewUser
	// ProjectName names the first project; empty derives it from the username.
	ProjectName string
}

// Created identifies what a sign-up created.
type Created struct {
	UserID, ProjectID int64
}

// CreateProUser creates the user (plan professional, awaiting payment,
// e-mail unverified), their first project, and sends the activation code,
// in one transaction.
func (s *Service) CreateProUser(ctx context.Context, u ProUser) (Created, error) {
	var out Created
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		now := s.now()
		row, err := q.InsertUser(ctx, u.params(domain.PlanProfessional, domain.PlanPendingPayment, now))
		if err != nil {
			return err
		}
		name := u.ProjectName
		if name == "" {
			name = u.Username + "-project-1"
		}
		projectID, err := q.InsertProject(ctx, 0, row.ID, name, now)
		if err != nil {
			return err
		}
		out = Created{UserID: row.ID, ProjectID: projectID}
		return s.codes.SendCodeTx(ctx, tx, row)
	})
	return out, err
}

// ActivatePlanTx turns the user's plan awaiting payment active, in the
// payment's transaction, and reports whether one was waiting: a paid
// sign-up is no longer removed as unpaid.
func (s *Service) ActivatePlanTx(ctx context.Context, tx pgx.Tx, userID int64) (bool, error) {
	return store.New(tx).ActivatePlan(ctx, userID, s.clock.Now())
}
