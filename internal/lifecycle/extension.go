package lifecycle

import (
	"context"
	"encoding/json"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// MaxExtensionRequestsPerDay bounds the extension requests a trial keeps
// in a day of its time (its test clock's, when it has one), whoever asks:
// each is kept in the trial's history and sent to every webhook, and the
// per-user and per-organization rate limits alone let one member add
// hundreds of megabytes a day to one trial.
const MaxExtensionRequestsPerDay = 10

// RequestExtension records a member's request to extend their
// organization's trial (trial.extension_requested, with the request's body)
// and sends it to the webhooks; it changes no date: an admin decides. A
// trial takes at most MaxExtensionRequestsPerDay in 24 hours; more is a
// Conflict.
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
				if err := underExtensionCap(ctx, c, t); err != nil {
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

// underExtensionCap refuses a request to a trial that already holds
// MaxExtensionRequestsPerDay of them in the last 24 hours of the change's
// time. The trial is locked, so concurrent requests count each other.
func underExtensionCap(ctx context.Context, c *change, t domain.Trial) error {
	n, err := c.q.CountTrialEventsSince(ctx, t.ID, domain.EventExtensionRequested, c.now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	if n >= MaxExtensionRequestsPerDay {
		return apperr.Errorf(apperr.Conflict, "Trial %d already has %d extension requests in the last 24 hours; retry later",
			t.ID, MaxExtensionRequestsPerDay)
	}
	return nil
}
