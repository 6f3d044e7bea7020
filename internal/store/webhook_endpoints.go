package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// Sources of a webhook endpoint.
const (
	// EndpointFromAPI is managed through the admin API.
	EndpointFromAPI = "api"
	// EndpointFromConfig mirrors webhooks.endpoints: read-only at run time.
	EndpointFromConfig = "config"
)

// WebhookEndpoint is a row of webhook_endpoints.
type WebhookEndpoint struct {
	ID          int64
	URL         string
	Description string
	// EventTypes filters the events delivered; empty: all.
	EventTypes []string
	Source     string
	// Secret is nil for config endpoints, which sign with webhooks.secret.
	Secret                  *string
	PreviousSecret          *string
	PreviousSecretExpiresAt *time.Time
	FailingSince            *time.Time
	DisabledAt              *time.Time
	DisabledReason          *string
	CreatedAt, UpdatedAt    time.Time
}

// endpointOf maps a webhook_endpoints row, which holds WebhookEndpoint
// field for field.
func endpointOf(e dbsqlc.WebhookEndpoint) WebhookEndpoint { return WebhookEndpoint(e) }

// InsertWebhookEndpoint stores a new endpoint and returns it.
func (q *Queries) InsertWebhookEndpoint(ctx context.Context, e WebhookEndpoint) (WebhookEndpoint, error) {
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	out, err := q.gen.InsertWebhookEndpoint(ctx, dbsqlc.InsertWebhookEndpointParams{URL: e.URL, Description: e.Description,
		EventTypes: e.EventTypes, Source: e.Source, Secret: e.Secret, CreatedAt: e.CreatedAt})
	if err != nil {
		return WebhookEndpoint{}, fmt.Errorf("inserting webhook endpoint: %w", err)
	}
	return endpointOf(out), nil
}

// WebhookEndpoints lists every endpoint, oldest first.
func (q *Queries) WebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	rows, err := q.gen.WebhookEndpoints(ctx)
	return mapRows(rows, err, "listing webhook endpoints", endpointOf)
}

// EnabledWebhookEndpoints lists the endpoints that take eventType: enabled,
// and subscribed to it (or to every type).
func (q *Queries) EnabledWebhookEndpoints(ctx context.Context, eventType string) ([]WebhookEndpoint, error) {
	rows, err := q.gen.EnabledWebhookEndpoints(ctx, eventType)
	return mapRows(rows, err, "listing enabled webhook endpoints", endpointOf)
}

// WebhookEndpointByID returns one endpoint.
func (q *Queries) WebhookEndpointByID(ctx context.Context, id int64) (WebhookEndpoint, error) {
	return mapRow(endpointOf)(q.gen.WebhookEndpointByID(ctx, id))
}

// WebhookEndpointByIDForUpdate returns one endpoint and locks it until the
// transaction ends: after the outbox message being delivered, if any. The
// lock is FOR NO KEY UPDATE: it serialises the attempts at the endpoint
// without conflicting with the key-share locks that rows referring to it
// take (an attempt's own log row, a transition's outbox rows); FOR UPDATE
// after its own attempt row made two failed attempts deadlock.
func (q *Queries) WebhookEndpointByIDForUpdate(ctx context.Context, id int64) (WebhookEndpoint, error) {
	return mapRow(endpointOf)(q.gen.WebhookEndpointByIDForUpdate(ctx, id))
}

// UpdateWebhookEndpoint writes an endpoint's settings and secrets as e holds
// them.
func (q *Queries) UpdateWebhookEndpoint(ctx context.Context, e WebhookEndpoint) error {
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	n, err := q.gen.UpdateWebhookEndpoint(ctx, dbsqlc.UpdateWebhookEndpointParams{ID: e.ID, URL: e.URL,
		Description: e.Description, EventTypes: e.EventTypes, Secret: e.Secret, PreviousSecret: e.PreviousSecret,
		PreviousSecretExpiresAt: e.PreviousSecretExpiresAt, FailingSince: e.FailingSince, DisabledAt: e.DisabledAt,
		DisabledReason: e.DisabledReason, UpdatedAt: e.UpdatedAt})
	if err != nil {
		return fmt.Errorf("updating webhook endpoint %d: %w", e.ID, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteWebhookEndpoint removes an endpoint with its undelivered messages
// and its attempt log.
func (q *Queries) DeleteWebhookEndpoint(ctx context.Context, id int64) error {
	n, err := q.gen.DeleteWebhookEndpoint(ctx, id)
	if err != nil {
		return fmt.Errorf("deleting webhook endpoint %d: %w", id, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// SyncConfigEndpoints makes the config endpoints exactly urls: it adds the
// missing ones and deletes those no longer listed (with their undelivered
// messages).
func (q *Queries) SyncConfigEndpoints(ctx context.Context, urls []string, now time.Time) error {
	if urls == nil {
		urls = []string{}
	}
	err := q.gen.AddConfigEndpoints(ctx, dbsqlc.AddConfigEndpointsParams{Urls: urls, Now: now})
	if err == nil {
		err = q.gen.DeleteConfigEndpointsBut(ctx, urls)
	}
	if err != nil {
		return fmt.Errorf("mirroring webhooks.endpoints: %w", err)
	}
	return nil
}

// WebhookAttempt is a row of webhook_attempts: one delivery attempt.
type WebhookAttempt struct {
	ID         int64
	OutboxID   int64
	EndpointID int64
	EventID    string
	Attempt    int
	At         time.Time
	// StatusCode is nil when no answer came.
	StatusCode *int
	Duration   time.Duration
	Error      *string
}

// InsertWebhookAttempt logs one attempt.
func (q *Queries) InsertWebhookAttempt(ctx context.Context, a WebhookAttempt) error {
	var status *int32
	if a.StatusCode != nil {
		status = new(int32(*a.StatusCode))
	}
	err := q.gen.InsertWebhookAttempt(ctx, dbsqlc.InsertWebhookAttemptParams{OutboxID: a.OutboxID, EndpointID: a.EndpointID,
		EventID: a.EventID, Attempt: int32(a.Attempt), At: a.At, StatusCode: status,
		DurationMs: int32(a.Duration.Milliseconds()), Error: a.Error})
	if err != nil {
		return fmt.Errorf("logging attempt of outbox message %d: %w", a.OutboxID, err)
	}
	return nil
}

// WebhookAttempts lists an endpoint's latest attempts, newest first.
func (q *Queries) WebhookAttempts(ctx context.Context, endpointID int64, limit int) ([]WebhookAttempt, error) {
	rows, err := q.gen.WebhookAttempts(ctx, dbsqlc.WebhookAttemptsParams{EndpointID: endpointID, MaxAttempts: int32(limit)})
	return mapRows(rows, err, "listing webhook attempts", attemptOf)
}

// attemptOf maps a webhook_attempts row.
func attemptOf(r dbsqlc.WebhookAttempt) WebhookAttempt {
	a := WebhookAttempt{ID: r.ID, OutboxID: r.OutboxID, EndpointID: r.EndpointID, EventID: r.EventID,
		Attempt: int(r.Attempt), At: r.At, Duration: time.Duration(r.DurationMs) * time.Millisecond, Error: r.Error}
	if r.StatusCode != nil {
		a.StatusCode = new(int(*r.StatusCode))
	}
	return a
}

// FailedOutboxOfEndpoint lists the ids of an endpoint's messages whose
// every attempt failed at or after since, oldest first.
func (q *Queries) FailedOutboxOfEndpoint(ctx context.Context, endpointID int64, since time.Time) ([]int64, error) {
	ids, err := q.gen.FailedOutboxOfEndpoint(ctx, dbsqlc.FailedOutboxOfEndpointParams{EndpointID: endpointID, Since: since})
	if err != nil {
		return nil, fmt.Errorf("listing failed deliveries of an endpoint: %w", err)
	}
	return ids, nil
}

// ClearEndpointFailing ends an endpoint's failing streak: it answered.
func (q *Queries) ClearEndpointFailing(ctx context.Context, id int64) error {
	err := q.gen.ClearEndpointFailing(ctx, id)
	if err != nil {
		return fmt.Errorf("clearing the failures of webhook endpoint %d: %w", id, err)
	}
	return nil
}
