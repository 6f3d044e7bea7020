package lifecycle

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// RequestExtension records a member's request to extend their
// organization's trial (trial.extension_requested, with the request's body)
// and sends it to the webhooks; it changes no date: an admin decides.
func (s *Service) RequestExtension(ctx context.Context, actor Actor, orgID int64, body json.RawMessage, cause string) error {
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		if err := mayRequestExtension(ctx, q, actor, orgID); err != nil {
			return err
		}
		trials, err := q.TrialsOfOrganizationForUpdate(ctx, orgID)
		if err != nil {
			return err
		}
		for _, t := range trials {
			if t.State == store.StateActive || t.State == store.StateExpired {
				var request any
				if len(body) > 0 {
					request = body
				}
				return s.record(ctx, tx, t, EventExtensionRequested, s.now(), actor.String(), cause, map[string]any{
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
func (s *Service) MayRequestExtension(ctx context.Context, actor Actor, orgID int64) error {
	return mayRequestExtension(ctx, store.New(s.pool), actor, orgID)
}

func mayRequestExtension(ctx context.Context, q *store.Queries, actor Actor, orgID int64) error {
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
