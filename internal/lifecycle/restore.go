package lifecycle

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// RestoreOrganization brings back a soft-deleted organization before its
// purge: the purge is cancelled, the projects and memberships hidden with it
// return, and its trial goes back to the state it had before deletion. An
// expired trial gets a fresh grace period from now, never an immediate
// Delete; an active one its expiry (now, if its date has passed meanwhile).
func (s *Service) RestoreOrganization(ctx context.Context, actor Actor, orgID int64, cause string) error {
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		org, trials, err := q.LockOrganization(ctx, orgID)
		if err != nil {
			return notFoundAs(err, "Organization %d not found (it may have been purged)", orgID)
		}
		if org.DeletedAt == nil {
			return apperr.Errorf(apperr.Conflict, "Organization %d is not deleted", orgID)
		}
		deletedAt := *org.DeletedAt
		if err := q.UndeleteOrganization(ctx, orgID); err != nil {
			return err
		}
		if err := q.RestoreProjects(ctx, orgID, deletedAt); err != nil {
			return err
		}
		if err := q.RestoreMemberships(ctx, orgID, deletedAt); err != nil {
			return err
		}
		if org.PurgeJobID != nil {
			if err := s.cancelJobs(ctx, tx, []int64{*org.PurgeJobID}); err != nil {
				return err
			}
		}
		now := s.now()
		for i := range trials {
			t := &trials[i]
			if t.State != store.StateDeleted {
				continue
			}
			t.DeletedDate = nil
			if t.ExpiredDate != nil {
				t.GraceEndsAt = ptrTime(now.Add(s.cfg.GracePeriod))
			}
			if err := setDates(ctx, q, t); err != nil {
				return err
			}
			if err := q.SetEnterpriseFeatures(ctx, orgID, t.State == store.StateActive); err != nil {
				return err
			}
			if err := s.record(ctx, tx, *t, EventRestored, now, actor.String(), cause, map[string]any{
				"organizationId": orgID, "state": t.State, "graceEndsAt": t.GraceEndsAt,
			}); err != nil {
				return err
			}
			if err := s.reschedule(ctx, tx, q, t, nil); err != nil {
				return err
			}
		}
		return nil
	})
}
