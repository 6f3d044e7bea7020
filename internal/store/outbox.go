package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
)

// Outbox channels.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// OutboxMessage is a row of outbox: one message to one destination.
type OutboxMessage struct {
	ID          int64
	EventID     string
	Channel     string
	Destination string
	TrialID     *int64
	// EndpointID is the webhook endpoint a webhook goes to; nil for e-mails.
	EndpointID  *int64
	Payload     json.RawMessage
	CreatedAt   time.Time
	Attempts    int
	LastError   *string
	DeliveredAt *time.Time
	FailedAt    *time.Time
}

const outboxColumns = `id, event_id, channel, destination, trial_id, endpoint_id, payload, created_at,
	attempts, last_error, delivered_at, failed_at`

const outboxStatusColumns = `id, event_id, channel, destination, trial_id, endpoint_id, created_at,
	attempts, last_error, delivered_at, failed_at`

func scanOutboxStatus(row pgx.CollectableRow) (domain.Delivery, error) {
	var m domain.Delivery
	err := row.Scan(&m.ID, &m.EventID, &m.Channel, &m.Destination, &m.TrialID, &m.EndpointID, &m.CreatedAt,
		&m.Attempts, &m.LastError, &m.DeliveredAt, &m.FailedAt)
	return m, err
}

func scanOutbox(row pgx.Row) (OutboxMessage, error) {
	var m OutboxMessage
	err := row.Scan(&m.ID, &m.EventID, &m.Channel, &m.Destination, &m.TrialID, &m.EndpointID, &m.Payload, &m.CreatedAt,
		&m.Attempts, &m.LastError, &m.DeliveredAt, &m.FailedAt)
	return m, notFound(err)
}

// InsertOutbox stores a message and returns its id; a message with the same
// event id and endpoint (an e-mail: destination) already stored is not
// stored again (inserted is false), so re-recording an event never sends it
// twice.
func (q *Queries) InsertOutbox(ctx context.Context, m OutboxMessage) (id int64, inserted bool, err error) {
	err = q.db.QueryRow(ctx, `
		INSERT INTO outbox (event_id, channel, destination, trial_id, endpoint_id, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT DO NOTHING
		RETURNING id`, m.EventID, m.Channel, m.Destination, m.TrialID, m.EndpointID, m.Payload, m.CreatedAt).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("inserting outbox message: %w", err)
	}
	return id, true, nil
}

// OutboxByID returns one message.
func (q *Queries) OutboxByID(ctx context.Context, id int64) (OutboxMessage, error) {
	return scanOutbox(q.db.QueryRow(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE id = $1`, id))
}

// MarkOutboxDelivered records a successful delivery.
func (q *Queries) MarkOutboxDelivered(ctx context.Context, id int64, at time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE outbox SET delivered_at = $2, attempts = attempts + 1, last_error = NULL, failed_at = NULL
		WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("marking outbox message %d delivered: %w", id, err)
	}
	return nil
}

// MarkOutboxAttemptFailed records a failed attempt; failedAt is set when no
// attempt is left, which makes the message show up as failed.
func (q *Queries) MarkOutboxAttemptFailed(ctx context.Context, id int64, reason string, failedAt *time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE outbox SET attempts = attempts + 1, last_error = $2, failed_at = $3 WHERE id = $1`, id, reason, failedAt)
	if err != nil {
		return fmt.Errorf("recording failed attempt of outbox message %d: %w", id, err)
	}
	return nil
}

// FailedOutbox lists messages of a channel whose every attempt failed,
// oldest first.
func (q *Queries) FailedOutbox(ctx context.Context, channel string, limit int) ([]domain.Delivery, error) {
	rows, err := q.db.Query(ctx, `
		SELECT `+outboxStatusColumns+` FROM outbox
		WHERE channel = $1 AND failed_at IS NOT NULL AND delivered_at IS NULL
		ORDER BY id LIMIT $2`, channel, limit)
	return collect(rows, err, "listing failed outbox messages", scanOutboxStatus)
}

// ClearOutboxFailure puts a failed, undelivered message back in line for
// another round of attempts (its count starts again) and reports whether
// there was one.
func (q *Queries) ClearOutboxFailure(ctx context.Context, id int64) (bool, error) {
	tag, err := q.db.Exec(ctx, `
		UPDATE outbox SET failed_at = NULL, attempts = 0
		WHERE id = $1 AND failed_at IS NOT NULL AND delivered_at IS NULL`, id)
	if err != nil {
		return false, fmt.Errorf("clearing failure of outbox message %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// OutboxOfEvents returns the webhook messages of the events (their outbox
// event ids), oldest first, through the event id indexes.
func (q *Queries) OutboxOfEvents(ctx context.Context, eventIDs []string) ([]domain.Delivery, error) {
	rows, err := q.db.Query(ctx, `SELECT `+outboxStatusColumns+` FROM outbox
		WHERE event_id = ANY($1) AND channel = 'webhook' ORDER BY id`, eventIDs)
	return collect(rows, err, "listing deliveries of events", scanOutboxStatus)
}

// DeleteDeliveredOutbox deletes up to limit messages delivered before
// before, with their attempt log, and says how many it deleted. Failed and
// waiting messages stay, whatever their age.
func (q *Queries) DeleteDeliveredOutbox(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := q.db.Exec(ctx, `
		DELETE FROM outbox WHERE id IN (
			SELECT id FROM outbox WHERE delivered_at < $1 LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("deleting delivered outbox messages: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
