package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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

const endpointColumns = `id, url, description, event_types, source, secret, previous_secret,
	previous_secret_expires_at, failing_since, disabled_at, disabled_reason, created_at, updated_at`

func scanEndpoint(row pgx.Row) (WebhookEndpoint, error) {
	var e WebhookEndpoint
	err := row.Scan(&e.ID, &e.URL, &e.Description, &e.EventTypes, &e.Source, &e.Secret, &e.PreviousSecret,
		&e.PreviousSecretExpiresAt, &e.FailingSince, &e.DisabledAt, &e.DisabledReason, &e.CreatedAt, &e.UpdatedAt)
	return e, notFound(err)
}

func collectEndpoints(rows pgx.Rows, err error, doing string) ([]WebhookEndpoint, error) {
	return collect(rows, err, doing, func(row pgx.CollectableRow) (WebhookEndpoint, error) { return scanEndpoint(row) })
}

// InsertWebhookEndpoint stores a new endpoint and returns it.
func (q *Queries) InsertWebhookEndpoint(ctx context.Context, e WebhookEndpoint) (WebhookEndpoint, error) {
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	out, err := scanEndpoint(q.db.QueryRow(ctx, `
		INSERT INTO webhook_endpoints (url, description, event_types, source, secret, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		RETURNING `+endpointColumns, e.URL, e.Description, e.EventTypes, e.Source, e.Secret, e.CreatedAt))
	if err != nil {
		return out, fmt.Errorf("inserting webhook endpoint: %w", err)
	}
	return out, nil
}

// WebhookEndpoints lists every endpoint, oldest first.
func (q *Queries) WebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	rows, err := q.db.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints ORDER BY id`)
	return collectEndpoints(rows, err, "listing webhook endpoints")
}

// EnabledWebhookEndpoints lists the endpoints that take eventType: enabled,
// and subscribed to it (or to every type).
func (q *Queries) EnabledWebhookEndpoints(ctx context.Context, eventType string) ([]WebhookEndpoint, error) {
	rows, err := q.db.Query(ctx, `
		SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE disabled_at IS NULL AND (event_types = '{}' OR $1 = ANY (event_types))
		ORDER BY id`, eventType)
	return collectEndpoints(rows, err, "listing enabled webhook endpoints")
}

// WebhookEndpointByID returns one endpoint.
func (q *Queries) WebhookEndpointByID(ctx context.Context, id int64) (WebhookEndpoint, error) {
	return scanEndpoint(q.db.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1`, id))
}

// WebhookEndpointByIDForUpdate returns one endpoint and locks it until the
// transaction ends: after the outbox message being delivered, if any.
func (q *Queries) WebhookEndpointByIDForUpdate(ctx context.Context, id int64) (WebhookEndpoint, error) {
	return scanEndpoint(q.db.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, id))
}

// UpdateWebhookEndpoint writes an endpoint's settings and secrets as e holds
// them.
func (q *Queries) UpdateWebhookEndpoint(ctx context.Context, e WebhookEndpoint) error {
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	tag, err := q.db.Exec(ctx, `
		UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, secret = $5,
			previous_secret = $6, previous_secret_expires_at = $7, failing_since = $8,
			disabled_at = $9, disabled_reason = $10, updated_at = $11
		WHERE id = $1`, e.ID, e.URL, e.Description, e.EventTypes, e.Secret, e.PreviousSecret,
		e.PreviousSecretExpiresAt, e.FailingSince, e.DisabledAt, e.DisabledReason, e.UpdatedAt)
	if err != nil {
		return fmt.Errorf("updating webhook endpoint %d: %w", e.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteWebhookEndpoint removes an endpoint with its undelivered messages
// and its attempt log.
func (q *Queries) DeleteWebhookEndpoint(ctx context.Context, id int64) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("deleting webhook endpoint %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
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
	_, err := q.db.Exec(ctx, `
		INSERT INTO webhook_endpoints (url, source, created_at, updated_at)
		SELECT u, 'config', $2, $2 FROM unnest($1::text[]) u
		ON CONFLICT (url) WHERE source = 'config' DO NOTHING`, urls, now)
	if err == nil {
		_, err = q.db.Exec(ctx, `DELETE FROM webhook_endpoints WHERE source = 'config' AND NOT (url = ANY ($1))`, urls)
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
	_, err := q.db.Exec(ctx, `
		INSERT INTO webhook_attempts (outbox_id, endpoint_id, event_id, attempt, at, status_code, duration_ms, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		a.OutboxID, a.EndpointID, a.EventID, a.Attempt, a.At, a.StatusCode, a.Duration.Milliseconds(), a.Error)
	if err != nil {
		return fmt.Errorf("logging attempt of outbox message %d: %w", a.OutboxID, err)
	}
	return nil
}

// WebhookAttempts lists an endpoint's latest attempts, newest first.
func (q *Queries) WebhookAttempts(ctx context.Context, endpointID int64, limit int) ([]WebhookAttempt, error) {
	rows, err := q.db.Query(ctx, `
		SELECT id, outbox_id, endpoint_id, event_id, attempt, at, status_code, duration_ms, error
		FROM webhook_attempts WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2`, endpointID, limit)
	return collect(rows, err, "listing webhook attempts", func(row pgx.CollectableRow) (WebhookAttempt, error) {
		var a WebhookAttempt
		var ms int64
		err := row.Scan(&a.ID, &a.OutboxID, &a.EndpointID, &a.EventID, &a.Attempt, &a.At, &a.StatusCode, &ms, &a.Error)
		a.Duration = time.Duration(ms) * time.Millisecond
		return a, err
	})
}

// FailedOutboxOfEndpoint lists the ids of an endpoint's messages whose
// every attempt failed at or after since, oldest first.
func (q *Queries) FailedOutboxOfEndpoint(ctx context.Context, endpointID int64, since time.Time) ([]int64, error) {
	rows, err := q.db.Query(ctx, `
		SELECT id FROM outbox
		WHERE endpoint_id = $1 AND failed_at >= $2 AND delivered_at IS NULL ORDER BY id`, endpointID, since)
	return collect(rows, err, "listing failed deliveries of an endpoint", pgx.RowTo[int64])
}

// ClearEndpointFailing ends an endpoint's failing streak: it answered.
func (q *Queries) ClearEndpointFailing(ctx context.Context, id int64) error {
	_, err := q.db.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, id)
	if err != nil {
		return fmt.Errorf("clearing the failures of webhook endpoint %d: %w", id, err)
	}
	return nil
}
