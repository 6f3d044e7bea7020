package lifecycle

import (
	"context"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
)

// Delete applies the Delete transition when an expired trial's grace period
// ends: the trial organization, its projects and memberships are hidden
// (data kept, access revoked), deletedDate is set, and the purge is
// scheduled lifecycle.purge_after later.
func (s *Service) Delete(ctx context.Context, trialID, generation int64, cause string) (Result, error) {
	return s.transition(ctx, step{
		trialID: trialID, generation: generation, from: domain.StateExpired, to: domain.StateDeleted, cause: cause,
		due: func(t domain.Trial) time.Time { return *t.GraceEndsAt },
		apply: func(ctx context.Context, c *change, t *domain.Trial) error {
			return c.applyDelete(ctx, t, c.purgeDate())
		},
	})
}

// DeleteTrialNow is adminDeleteTrial: Delete applied now, whatever the
// trial's date, with the purge scheduled as usual.
func (s *Service) DeleteTrialNow(ctx context.Context, actor domain.Actor, trialID int64, cause string, opts ...Option) error {
	return s.inChange(ctx, actor, cause, func(c *change) error {
		t, err := c.lockTrial(ctx, trialID)
		if err != nil {
			return err
		}
		switch t.State {
		case domain.StateDeleted:
			return apperr.Errorf(apperr.Conflict, "Trial %d is already deleted", trialID)
		case domain.StateUpgraded:
			return apperr.Errorf(apperr.Conflict, "Trial %d has been upgraded; delete its organization instead", trialID)
		}
		if err := c.cancelSchedule(ctx, &t); err != nil {
			return err
		}
		return c.applyDelete(ctx, &t, c.purgeDate())
	}, opts...)
}

// DeleteOrganization is the admin's organization delete. With fullDeletion
// the organization is soft-deleted now and its purge scheduled; without, it
// is soft-deleted with no purge. A live trial of the organization is
// deleted with it; an already soft-deleted organization can still be moved
// to full deletion.
func (s *Service) DeleteOrganization(ctx context.Context, actor domain.Actor, orgID int64, fullDeletion bool, cause string) error {
	return s.inChange(ctx, actor, cause, func(c *change) error {
		org, trials, err := c.lockOrganization(ctx, orgID)
		if err != nil {
			return notFoundAs(err, "Organization %d not found", orgID)
		}
		var purgeAt *time.Time
		if fullDeletion {
			purgeAt = c.purgeDate()
		}
		if org.DeletedAt != nil {
			if purgeAt == nil || org.PurgeAt != nil {
				return apperr.Errorf(apperr.Conflict, "Organization %d is already deleted", orgID)
			}
			if err := c.q.SoftDeleteOrganization(ctx, orgID, *org.DeletedAt, purgeAt); err != nil {
				return err
			}
			return c.schedulePurge(ctx, orgID, *purgeAt)
		}
		live := 0
		for i := range trials {
			if t := &trials[i]; t.State.Live() {
				if err := c.cancelSchedule(ctx, t); err != nil {
					return err
				}
				if err := c.applyDelete(ctx, t, purgeAt); err != nil {
					return err
				}
				live++
			}
		}
		if live > 0 {
			return nil // applyDelete deleted the organization with its trial
		}
		if err := c.softDeleteOrganization(ctx, orgID, purgeAt); err != nil {
			return err
		}
		if purgeAt != nil {
			return c.schedulePurge(ctx, orgID, *purgeAt)
		}
		return nil
	})
}

// applyDelete soft-deletes t's organization now, sets deletedDate, records
// the event and schedules the purge at purgeAt (nil: none).
func (c *change) applyDelete(ctx context.Context, t *domain.Trial, purgeAt *time.Time) error {
	if _, err := c.q.OrganizationByIDForUpdate(ctx, t.OrganizationID); err != nil {
		return err
	}
	if err := c.retireJobs(ctx, t); err != nil {
		return err
	}
	if err := c.softDeleteOrganization(ctx, t.OrganizationID, purgeAt); err != nil {
		return err
	}
	t.DeletedDate = ptrTime(c.now)
	if err := c.setDates(ctx, t); err != nil {
		return err
	}
	if err := c.record(ctx, *t, domain.EventDeleted, map[string]any{
		"organizationId": t.OrganizationID, "purgeAt": purgeAt,
	}); err != nil {
		return err
	}
	return c.schedule(ctx, *t, purgeAt)
}

// softDeleteOrganization hides an organization with its projects and
// memberships now, its data kept until purgeAt (nil: no purge).
func (c *change) softDeleteOrganization(ctx context.Context, orgID int64, purgeAt *time.Time) error {
	if err := c.q.SoftDeleteOrganization(ctx, orgID, c.now, purgeAt); err != nil {
		return err
	}
	if err := c.q.SoftDeleteProjects(ctx, orgID, c.now); err != nil {
		return err
	}
	return c.q.SoftDeleteMemberships(ctx, orgID, c.now)
}
