package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
)

// EventTypes are the types an endpoint may subscribe to: every trial event,
// the test clocks' and the delivery policy's own.
var EventTypes = append(append(slices.Clone(domain.EventKinds), domain.ClockEventKinds...), EventEndpointDisabled)

// Endpoints manages webhook endpoints as data: an admin adds, changes,
// disables and removes them at run time, each with a secret of its own.
type Endpoints struct {
	pool   *pgxpool.Pool
	clock  clock.Clock
	cfg    config.Webhooks
	writer *Writer
}

// NewEndpoints returns the endpoint service; cfg is webhooks.*, writer
// enqueues the deliveries a recovery replays.
func NewEndpoints(pool *pgxpool.Pool, clk clock.Clock, cfg config.Webhooks, writer *Writer) *Endpoints {
	return &Endpoints{pool: pool, clock: clk, cfg: cfg, writer: writer}
}

// EndpointSpec is what an admin sets on an endpoint; a nil field is left
// as it is (on creation: empty).
type EndpointSpec struct {
	URL         *string
	Description *string
	EventTypes  *[]string
	// Disabled stops deliveries (false re-enables, and forgets the failing
	// streak that may have disabled it).
	Disabled *bool
}

const maxDescription = 500

// validate checks the fields s sets.
func (e *Endpoints) validate(ctx context.Context, s EndpointSpec) error {
	if s.URL != nil {
		u, err := checkURL(strings.TrimSpace(*s.URL), e.cfg.AllowPrivateNetworks)
		if err == nil && !e.cfg.AllowPrivateNetworks {
			err = resolvesPublic(ctx, u)
		}
		if err != nil {
			return apperr.InvalidField("url", "url %s", err)
		}
	}
	if s.Description != nil && len([]rune(*s.Description)) > maxDescription {
		return apperr.InvalidField("description", "description must be at most %d characters", maxDescription)
	}
	if s.EventTypes != nil {
		for _, t := range *s.EventTypes {
			if !slices.Contains(EventTypes, t) {
				return apperr.InvalidField("eventTypes", "eventTypes: %q is not one of %s", t, strings.Join(EventTypes, ", "))
			}
		}
	}
	return nil
}

// Create adds an endpoint and returns it with its secret, which is shown
// this once.
func (e *Endpoints) Create(ctx context.Context, s EndpointSpec) (store.WebhookEndpoint, string, error) {
	if s.URL == nil || strings.TrimSpace(*s.URL) == "" {
		return store.WebhookEndpoint{}, "", apperr.InvalidField("url", "url is required")
	}
	if s.Disabled != nil {
		return store.WebhookEndpoint{}, "", apperr.InvalidField("disabled", "an endpoint is created enabled")
	}
	if err := e.validate(ctx, s); err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	secret, err := NewSecret()
	if err != nil {
		return store.WebhookEndpoint{}, "", err
	}
	ep := store.WebhookEndpoint{URL: strings.TrimSpace(*s.URL), Source: store.EndpointFromAPI, Secret: &secret, CreatedAt: e.clock.Now()}
	if s.Description != nil {
		ep.Description = *s.Description
	}
	if s.EventTypes != nil {
		ep.EventTypes = *s.EventTypes
	}
	ep, err = store.New(e.pool).InsertWebhookEndpoint(ctx, ep)
	return ep, secret, err
}

// List returns every endpoint, the config ones included.
func (e *Endpoints) List(ctx context.Context) ([]store.WebhookEndpoint, error) {
	return store.New(e.pool).WebhookEndpoints(ctx)
}

// Get returns one endpoint.
func (e *Endpoints) Get(ctx context.Context, id int64) (store.WebhookEndpoint, error) {
	ep, err := store.New(e.pool).WebhookEndpointByID(ctx, id)
	return ep, notFound(id, err)
}

func notFound(id int64, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.Errorf(apperr.NotFound, "webhook endpoint %d not found", id)
	}
	return err
}

// change runs fn on endpoint id, locked, and writes what fn left in it; a
// config endpoint is refused, as webhooks.endpoints owns it.
func (e *Endpoints) change(ctx context.Context, id int64, fn func(ep *store.WebhookEndpoint, now time.Time) error) (store.WebhookEndpoint, error) {
	var out store.WebhookEndpoint
	err := store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		ep, err := q.WebhookEndpointByIDForUpdate(ctx, id)
		if err != nil {
			return notFound(id, err)
		}
		if ep.Source == store.EndpointFromConfig {
			return apperr.Errorf(apperr.Conflict, "webhook endpoint %d is listed in webhooks.endpoints: change it there", id)
		}
		now := e.clock.Now()
		if err := fn(&ep, now); err != nil {
			return err
		}
		ep.UpdatedAt = now
		out = ep
		return q.UpdateWebhookEndpoint(ctx, ep)
	})
	return out, err
}

// Update sets the fields s holds.
func (e *Endpoints) Update(ctx context.Context, id int64, s EndpointSpec) (store.WebhookEndpoint, error) {
	if err := e.validate(ctx, s); err != nil {
		return store.WebhookEndpoint{}, err
	}
	return e.change(ctx, id, func(ep *store.WebhookEndpoint, now time.Time) error {
		if s.URL != nil {
			ep.URL = strings.TrimSpace(*s.URL)
		}
		if s.Description != nil {
			ep.Description = *s.Description
		}
		if s.EventTypes != nil {
			ep.EventTypes = *s.EventTypes
		}
		switch {
		case s.Disabled == nil:
		case *s.Disabled && ep.DisabledAt == nil:
			reason := "disabled by an admin"
			ep.DisabledAt, ep.DisabledReason = &now, &reason
		case !*s.Disabled:
			ep.DisabledAt, ep.DisabledReason, ep.FailingSince = nil, nil, nil
		}
		return nil
	})
}

// Delete removes an endpoint, its undelivered messages and its attempt log.
func (e *Endpoints) Delete(ctx context.Context, id int64) error {
	return store.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		ep, err := q.WebhookEndpointByIDForUpdate(ctx, id)
		if err != nil {
			return notFound(id, err)
		}
		if ep.Source == store.EndpointFromConfig {
			return apperr.Errorf(apperr.Conflict, "webhook endpoint %d is listed in webhooks.endpoints: remove it there", id)
		}
		return q.DeleteWebhookEndpoint(ctx, id)
	})
}

// RotateSecret gives the endpoint a new secret and returns it; the old one
// keeps signing beside it for webhooks.rotation_overlap, so a receiver
// switches secrets without refusing a delivery. A second rotation within
// the overlap ends the first one's.
func (e *Endpoints) RotateSecret(ctx context.Context, id int64) (string, error) {
	secret, err := NewSecret()
	if err != nil {
		return "", err
	}
	_, err = e.change(ctx, id, func(ep *store.WebhookEndpoint, now time.Time) error {
		until := now.Add(e.cfg.RotationOverlap)
		ep.PreviousSecret, ep.PreviousSecretExpiresAt, ep.Secret = ep.Secret, &until, &secret
		return nil
	})
	return secret, err
}

// Attempts lists an endpoint's latest delivery attempts, newest first.
func (e *Endpoints) Attempts(ctx context.Context, id int64, limit int) ([]store.WebhookAttempt, error) {
	if _, err := e.Get(ctx, id); err != nil {
		return nil, err
	}
	return store.New(e.pool).WebhookAttempts(ctx, id, limit)
}

// Recover replays every delivery to the endpoint that failed at or after
// since, each with a fresh round of attempts, and returns how many.
func (e *Endpoints) Recover(ctx context.Context, id int64, since time.Time) (int, error) {
	ep, err := e.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if ep.DisabledAt != nil {
		return 0, apperr.Errorf(apperr.Conflict, "webhook endpoint %d is disabled: enable it before recovering its deliveries", id)
	}
	ids, err := store.New(e.pool).FailedOutboxOfEndpoint(ctx, id, since)
	if err != nil {
		return 0, err
	}
	return e.writer.retry(ctx, e.pool, ids)
}

// SyncConfig mirrors webhooks.endpoints into the endpoint table: the daemon
// does it at start, so config endpoints are delivered to, logged and
// disabled like the others.
func (e *Endpoints) SyncConfig(ctx context.Context) error {
	if err := store.New(e.pool).SyncConfigEndpoints(ctx, e.cfg.Endpoints, e.clock.Now()); err != nil {
		return fmt.Errorf("webhooks.endpoints: %w", err)
	}
	return nil
}

// DeliveriesOf returns the webhook deliveries of a trial's events, one per
// event and endpoint, so an operator sees whether each reached its
// receivers; their URLs redacted.
func (e *Endpoints) DeliveriesOf(ctx context.Context, events []domain.Event) ([]domain.Delivery, error) {
	ids := make([]string, len(events))
	for i, ev := range events {
		ids[i] = EventID(ev.ID)
	}
	return redacted(store.New(e.pool).OutboxOfEvents(ctx, ids))
}
