package lifecycle

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// Upgrade turns a trial into a full enterprise account at any time before
// deletion: upgradedDate is set, every pending transition is cancelled and
// the organization keeps its enterprise features for good. Upgrading twice
// is harmless; upgrading a deleted trial is a conflict.
func (s *Service) Upgrade(ctx context.Context, actor Actor, trialID int64, cause string) error {
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		t, err := lockTrial(ctx, q, trialID)
		if err != nil {
			return err
		}
		switch t.State {
		case store.StateUpgraded:
			return nil
		case store.StateDeleted:
			return apperr.Errorf(apperr.Conflict, "Trial %d is deleted and cannot be upgraded; restore its organization first", trialID)
		}
		return s.applyUpgrade(ctx, tx, q, &t, actor.String(), cause)
	})
}

// applyUpgrade upgrades a locked, not deleted, not upgraded trial in tx.
func (s *Service) applyUpgrade(ctx context.Context, tx pgx.Tx, q *store.Queries, t *store.Trial, actor, cause string) error {
	now := s.now()
	from := t.State
	t.UpgradedDate = ptrTime(now)
	t.GraceEndsAt = nil
	if err := setDates(ctx, q, t); err != nil {
		return err
	}
	if err := q.MakeEnterprise(ctx, t.OrganizationID); err != nil {
		return err
	}
	if err := s.cancelSchedule(ctx, tx, q, t); err != nil {
		return err
	}
	return s.record(ctx, tx, *t, EventUpgraded, now, actor, cause, map[string]any{"from": from})
}

// UpgradeOrganizationTx upgrades, in the caller's transaction, the live
// trial of an organization (the payment and v2 create-enterprise paths) and
// makes the organization a full enterprise one. It reports whether a trial
// was upgraded; a deleted trial is left deleted (Conflict), and an unknown
// organization has nothing to upgrade. A caller that locked the
// organization first did so with store.LockOrganization, in the lock order.
func (s *Service) UpgradeOrganizationTx(ctx context.Context, tx pgx.Tx, orgID int64, actor, cause string) (bool, error) {
	q := store.New(tx)
	_, trials, err := q.LockOrganization(ctx, orgID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	upgraded := false
	for i := range trials {
		t := &trials[i]
		switch t.State {
		case store.StateDeleted:
			return false, apperr.Errorf(apperr.Conflict, "Trial %d of organization %d is deleted and cannot be upgraded", t.ID, orgID)
		case store.StateActive, store.StateExpired:
			if err := s.applyUpgrade(ctx, tx, q, t, actor, cause); err != nil {
				return false, err
			}
			upgraded = true
		}
	}
	if err := q.MakeEnterprise(ctx, orgID); err != nil {
		return false, err
	}
	return upgraded, nil
}
