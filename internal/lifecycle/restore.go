package lifecycle

import (
	"context"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
)

// RestoreOrganization brings back a soft-deleted organization before its
// purge: the purge is cancelled, the projects and memberships hidden with it
// return, and its trial goes back to the state it had before deletion. An
// expired trial gets a fresh grace period from now, never an immediate
// Delete; an active one its expiry (now, if its date has passed meanwhile).
func (s *Service) RestoreOrganization(ctx context.Context, actor domain.Actor, orgID int64, cause string) error {
	return s.inChange(ctx, actor, cause, func(c *change) error {
		q := c.q
		org, trials, err := c.lockOrganization(ctx, orgID)
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
			if err := c.cancelJobs(ctx, []int64{*org.PurgeJobID}); err != nil {
				return err
			}
		}
		for i := range trials {
			t := &trials[i]
			if t.State != domain.StateDeleted {
				continue
			}
			t.DeletedDate = nil
			if t.ExpiredDate != nil {
				t.GraceEndsAt = ptrTime(c.now.Add(s.cfg.GracePeriod))
			}
			if err := c.setDates(ctx, t); err != nil {
				return err
			}
			if err := q.SetEnterpriseFeatures(ctx, orgID, t.State == domain.StateActive); err != nil {
				return err
			}
			if err := c.record(ctx, *t, domain.EventRestored, map[string]any{
				"organizationId": orgID, "state": t.State, "graceEndsAt": t.GraceEndsAt,
			}); err != nil {
				return err
			}
			if err := c.reschedule(ctx, t, nil); err != nil {
				return err
			}
		}
		return nil
	})
}
