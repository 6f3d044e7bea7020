package lifecycle

import (
	"context"
	"encoding/json"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// RequestExtension records a member's request to extend their
// organization's trial (trial.extension_requested, with the request's body)
// and sends it to the webhooks; it changes no date: an admin decides.
func (s *Service) RequestExtension(ctx context.Context, actor domain.Actor, orgID int64, body json.RawMessage, cause string) error {
	return s.inChange(ctx, actor, cause, func(c *change) error {
		if err := mayRequestExtension(ctx, c.q, actor, orgID); err != nil {
			return err
		}
		trials, err := c.q.TrialsOfOrganizationForUpdate(ctx, orgID)
		if err != nil {
			return err
		}
		for _, t := range trials {
			if t.State.Live() {
				if err := c.enterClock(ctx, t); err != nil {
					return err
				}
				var request any
				if len(body) > 0 {
					request = body
				}
				return c.record(ctx, t, domain.EventExtensionRequested, map[string]any{
					"expirationDate": t.ExpirationDate, "request": request,
				})
			}
		}
		return apperr.Errorf(apperr.NotFound, "Organization %d has no trial to extend", orgID)
	})
}

// MayRequestExtension tells whether actor may ask for the organization's
// trial to be extended (an admin, or a member), without asking: the API
// checks it before counting a request against the organization's limit,
// so that no outsider can spend it.
func (s *Service) MayRequestExtension(ctx context.Context, actor domain.Actor, orgID int64) error {
	return mayRequestExtension(ctx, store.New(s.pool), actor, orgID)
}

func mayRequestExtension(ctx context.Context, q *store.Queries, actor domain.Actor, orgID int64) error {
	if actor.Admin {
		return nil
	}
	member, err := q.IsMember(ctx, orgID, actor.UserID)
	if err != nil {
		return err
	}
	if !member {
		return apperr.Errorf(apperr.Forbidden, "You are not a member of organization %d", orgID)
	}
	return nil
}
