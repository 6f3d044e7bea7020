package lifecycle

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// Delete applies the Delete transition when an expired trial's grace period
// ends: the trial organization, its projects and memberships are hidden
// (data kept, access revoked), deletedDate is set, and the purge is
// scheduled lifecycle.purge_after later.
func (s *Service) Delete(ctx context.Context, trialID, generation int64, cause string) (Result, error) {
	return s.transition(ctx, trialID, generation, store.StateExpired, store.StateDeleted, cause,
		func(t store.Trial) time.Time { return *t.GraceEndsAt },
		func(tx pgx.Tx, q *store.Queries, t *store.Trial, now time.Time) error {
			return s.applyDelete(ctx, tx, q, t, now, true, ActorSystem, cause)
		})
}

// DeleteTrialNow is adminDeleteTrial: Delete applied now, whatever the
// trial's date, with the purge scheduled as usual.
func (s *Service) DeleteTrialNow(ctx context.Context, actor Actor, trialID int64, cause string) error {
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		t, err := lockTrial(ctx, q, trialID)
		if err != nil {
			return err
		}
		switch t.State {
		case store.StateDeleted:
			return apperr.Errorf(apperr.Conflict, "Trial %d is already deleted", trialID)
		case store.StateUpgraded:
			return apperr.Errorf(apperr.Conflict, "Trial %d has been upgraded; delete its organization instead", trialID)
		}
		if err := s.cancelSchedule(ctx, tx, q, &t); err != nil {
			return err
		}
		return s.applyDelete(ctx, tx, q, &t, s.now(), true, actor.String(), cause)
	})
}

// DeleteOrganization is the admin's organization delete. With fullDeletion
// the organization is soft-deleted now and its purge scheduled; without, it
// is soft-deleted with no purge. A live trial of the organization is
// deleted with it; an already soft-deleted organization can still be moved
// to full deletion.
func (s *Service) DeleteOrganization(ctx context.Context, actor Actor, orgID int64, fullDeletion bool, cause string) error {
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		org, trials, err := q.LockOrganization(ctx, orgID)
		if err != nil {
			return notFoundAs(err, "Organization %d not found", orgID)
		}
		now := s.now()
		if org.DeletedAt != nil {
			if !fullDeletion || org.PurgeAt != nil {
				return apperr.Errorf(apperr.Conflict, "Organization %d is already deleted", orgID)
			}
			purgeAt := now.Add(s.cfg.PurgeAfter)
			if err := q.SoftDeleteOrganization(ctx, orgID, *org.DeletedAt, &purgeAt); err != nil {
				return err
			}
			return s.schedulePurge(ctx, tx, orgID, purgeAt)
		}

		live := 0
		for i := range trials {
			if t := &trials[i]; t.State == store.StateActive || t.State == store.StateExpired {
				if err := s.cancelSchedule(ctx, tx, q, t); err != nil {
					return err
				}
				if err := s.applyDelete(ctx, tx, q, t, now, fullDeletion, actor.String(), cause); err != nil {
					return err
				}
				live++
			}
		}
		if live > 0 {
			return nil // applyDelete deleted the organization with its trial
		}
		var purgeAt *time.Time
		if fullDeletion {
			purgeAt = ptrTime(now.Add(s.cfg.PurgeAfter))
		}
		if err := softDeleteOrganization(ctx, q, orgID, now, purgeAt); err != nil {
			return err
		}
		if purgeAt != nil {
			return s.schedulePurge(ctx, tx, orgID, *purgeAt)
		}
		return nil
	})
}

// applyDelete soft-deletes t's organization now, sets deletedDate, records
// the event and, with purge, schedules the purge.
func (s *Service) applyDelete(ctx context.Context, tx pgx.Tx, q *store.Queries, t *store.Trial, now time.Time, purge bool, actor, cause string) error {
	if _, err := q.OrganizationByIDForUpdate(ctx, t.OrganizationID); err != nil {
		return err
	}
	if err := s.retireJobs(ctx, tx, q, t); err != nil {
		return err
	}
	var purgeAt *time.Time
	if purge {
		purgeAt = ptrTime(now.Add(s.cfg.PurgeAfter))
	}
	if err := softDeleteOrganization(ctx, q, t.OrganizationID, now, purgeAt); err != nil {
		return err
	}
	t.DeletedDate = ptrTime(now)
	if err := setDates(ctx, q, t); err != nil {
		return err
	}
	if err := s.record(ctx, tx, *t, EventDeleted, now, actor, cause, map[string]any{
		"organizationId": t.OrganizationID, "purgeAt": purgeAt,
	}); err != nil {
		return err
	}
	return s.schedule(ctx, tx, *t, purgeAt)
}

func softDeleteOrganization(ctx context.Context, q *store.Queries, orgID int64, now time.Time, purgeAt *time.Time) error {
	if err := q.SoftDeleteOrganization(ctx, orgID, now, purgeAt); err != nil {
		return err
	}
	if err := q.SoftDeleteProjects(ctx, orgID, now); err != nil {
		return err
	}
	return q.SoftDeleteMemberships(ctx, orgID, now)
}
