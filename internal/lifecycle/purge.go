package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/store"
)

// Purge erases a soft-deleted organization for good at its purge date, with
// its projects, memberships and trials; each purged trial's history keeps a
// trial.purged event. A restored organization, or one deleted again with a
// later purge date since this job was enqueued, is left alone.
func (s *Service) Purge(ctx context.Context, orgID int64, purgeAt time.Time, cause string) (Result, error) {
	var res Result
	err := s.inChange(ctx, domain.System, cause, func(c *change) error {
		res = Result{}
		org, trials, err := c.lockOrganization(ctx, orgID)
		if errors.Is(err, store.ErrNotFound) {
			res = Result{Outcome: Skipped} // already purged
			return nil
		}
		if err != nil {
			return err
		}
		if org.DeletedAt == nil || org.PurgeAt == nil || !org.PurgeAt.Equal(purgeAt) {
			res = Result{Outcome: Skipped}
			return nil
		}
		if purgeAt.After(c.now) {
			return &NotDueError{Due: purgeAt}
		}
		c.due = purgeAt
		for _, t := range trials {
			if err := c.record(ctx, t, domain.EventPurged, map[string]any{
				"organizationId": orgID, "state": t.State,
			}); err != nil {
				return err
			}
		}
		if err := c.q.PurgeOrganization(ctx, orgID, c.now); err != nil {
			return err
		}
		res = Result{Outcome: Applied, Due: purgeAt, At: c.now}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}
