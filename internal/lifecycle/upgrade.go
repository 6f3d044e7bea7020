package lifecycle

import (
	"context"
	"errors"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// Upgrade turns a trial into a full enterprise account at any time before
// deletion: upgradedDate is set, every pending transition is cancelled and
// the organization keeps its enterprise features for good. Upgrading twice
// is harmless; upgrading a deleted trial is a conflict.
func (s *Service) Upgrade(ctx context.Context, actor domain.Actor, trialID int64, cause string, opts ...Option) error {
	return s.inChange(ctx, actor, cause, func(c *change) error {
		t, err := c.lockTrial(ctx, trialID)
		if err != nil {
			return err
		}
		switch t.State {
		case domain.StateUpgraded:
			return nil
		case domain.StateDeleted:
			return apperr.Errorf(apperr.Conflict, "Trial %d is deleted and cannot be upgraded; restore its organization first", trialID)
		}
		return c.applyUpgrade(ctx, &t)
	}, opts...)
}

// applyUpgrade upgrades a locked, not deleted, not upgraded trial.
func (c *change) applyUpgrade(ctx context.Context, t *domain.Trial) error {
	from := t.State
	t.UpgradedDate = ptrTime(c.now)
	t.GraceEndsAt = nil
	if err := c.setDates(ctx, t); err != nil {
		return err
	}
	if err := c.q.MakeEnterprise(ctx, t.OrganizationID); err != nil {
		return err
	}
	// A new generation, whose only job is the upgrade's confirmation: the
	// pending reminders, expiry and notices are cancelled.
	if err := c.reschedule(ctx, t, nil); err != nil {
		return err
	}
	return c.record(ctx, *t, domain.EventUpgraded, map[string]any{"from": from})
}

// UpgradedOrganization is what UpgradeOrganizationTx did: whether it
// upgraded a trial, and the events its caller reports with Committed once
// its transaction committed.
type UpgradedOrganization struct {
	Upgraded bool
	Observations
}

// UpgradeOrganizationTx upgrades, in the caller's transaction, the live
// trial of an organization (the payment and v2 create-enterprise paths,
// which path names) and makes the organization a full enterprise one. A
// deleted trial is left deleted (Conflict), and an unknown organization has
// nothing to upgrade. A caller that locked the organization first did so
// with store.LockOrganization, in the lock order.
func (s *Service) UpgradeOrganizationTx(ctx context.Context, tx pgx.Tx, orgID int64, actor domain.Actor, path domain.ConversionPath, cause string) (UpgradedOrganization, error) {
	c := s.begin(tx, actor, cause)
	c.path = path
	_, trials, err := c.lockOrganization(ctx, orgID)
	if errors.Is(err, store.ErrNotFound) {
		return UpgradedOrganization{}, nil
	}
	if err != nil {
		return UpgradedOrganization{}, err
	}
	upgraded := false
	for i := range trials {
		t := &trials[i]
		switch t.State {
		case domain.StateDeleted:
			return UpgradedOrganization{}, apperr.Errorf(apperr.Conflict, "Trial %d of organization %d is deleted and cannot be upgraded", t.ID, orgID)
		case domain.StateActive, domain.StateExpired:
			if err := c.applyUpgrade(ctx, t); err != nil {
				return UpgradedOrganization{}, err
			}
			upgraded = true
		}
	}
	if err := c.q.MakeEnterprise(ctx, orgID); err != nil {
		return UpgradedOrganization{}, err
	}
	return UpgradedOrganization{Upgraded: upgraded, Observations: c.observations()}, nil
}
