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
func (s *Service) RestoreOrganization(ctx context.Context, actor domain.Actor, orgID int64, cause string, opts ...Option) error {
	return s.inChange(ctx, actor, cause, func(c *change) error {
		org, trials, err := c.lockOrganization(ctx, orgID)
		if err != nil {
			return notFoundAs(err, "Organization %d not found (it may have been purged)", orgID)
		}
		if org.DeletedAt == nil {
			return apperr.Errorf(apperr.Conflict, "Organization %d is not deleted", orgID)
		}
		if err := c.undeleteOrganization(ctx, org); err != nil {
			return err
		}
		for i := range trials {
			if t := &trials[i]; t.State == domain.StateDeleted {
				if err := c.restoreTrial(ctx, t); err != nil {
					return err
				}
			}
		}
		return nil
	}, opts...)
}

// undeleteOrganization brings back a soft-deleted organization with the
// projects and memberships hidden with it, and cancels its purge.
func (c *change) undeleteOrganization(ctx context.Context, org domain.Organization) error {
	deletedAt := *org.DeletedAt
	if err := c.q.UndeleteOrganization(ctx, org.ID); err != nil {
		return err
	}
	if err := c.q.RestoreProjects(ctx, org.ID, deletedAt); err != nil {
		return err
	}
	if err := c.q.RestoreMemberships(ctx, org.ID, deletedAt); err != nil {
		return err
	}
	if org.PurgeJobID == nil {
		return nil
	}
	return c.cancelJobs(ctx, []int64{*org.PurgeJobID})
}

// restoreTrial returns a deleted trial to the state it had before: an
// expired one with a fresh grace period from now, an active one with its
// expiry; it records the event and schedules what the state awaits.
func (c *change) restoreTrial(ctx context.Context, t *domain.Trial) error {
	t.DeletedDate = nil
	if t.ExpiredDate != nil {
		t.GraceEndsAt = ptrTime(c.now.Add(c.s.cfg.GracePeriod))
	}
	if err := c.setDates(ctx, t); err != nil {
		return err
	}
	if err := c.q.SetEnterpriseFeatures(ctx, t.OrganizationID, t.State == domain.StateActive); err != nil {
		return err
	}
	if err := c.record(ctx, *t, domain.EventRestored, map[string]any{
		"organizationId": t.OrganizationID, "state": t.State, "graceEndsAt": t.GraceEndsAt,
	}); err != nil {
		return err
	}
	return c.reschedule(ctx, t, nil)
}
