package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// Outbox channels.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// OutboxMessage is a row of outbox: one message to one destination, its
// delivery's status and what it carries.
type OutboxMessage struct {
	domain.Delivery
	Payload json.RawMessage
}

// deliveryOf maps either status read's row, which holds the domain's
// Delivery field for field.
func deliveryOf[R dbsqlc.FailedOutboxRow | dbsqlc.OutboxOfEventsRow](r R) domain.Delivery {
	return domain.Delivery(r)
}

// InsertOutbox stores a message and returns its id; a message with the same
// event id and endpoint (an e-mail: destination) already stored is not
// stored again (inserted is false), so re-recording an event never sends it
// twice.
func (q *Queries) InsertOutbox(ctx context.Context, m OutboxMessage) (id int64, inserted bool, err error) {
	ids, err := q.gen.InsertOutbox(ctx, dbsqlc.InsertOutboxParams{EventID: m.EventID, Channel: m.Channel,
		Destination: m.Destination, TrialID: m.TrialID, EndpointID: m.EndpointID, Payload: m.Payload, CreatedAt: m.CreatedAt})
	if err != nil {
		return 0, false, fmt.Errorf("inserting outbox message: %w", err)
	}
	if len(ids) == 0 {
		return 0, false, nil
	}
	return ids[0], true, nil
}

// OutboxByID returns one message.
func (q *Queries) OutboxByID(ctx context.Context, id int64) (OutboxMessage, error) {
	m, err := q.gen.OutboxByID(ctx, id)
	if err != nil {
		return OutboxMessage{}, notFound(err)
	}
	return OutboxMessage{Delivery: domain.Delivery{ID: m.ID, EventID: m.EventID, Channel: m.Channel,
		Destination: m.Destination, TrialID: m.TrialID, EndpointID: m.EndpointID, CreatedAt: m.CreatedAt,
		Attempts: m.Attempts, LastError: m.LastError, DeliveredAt: m.DeliveredAt, FailedAt: m.FailedAt}, Payload: m.Payload}, nil
}

// MarkOutboxDelivered records a successful delivery.
func (q *Queries) MarkOutboxDelivered(ctx context.Context, id int64, at time.Time) error {
	err := q.gen.MarkOutboxDelivered(ctx, dbsqlc.MarkOutboxDeliveredParams{ID: id, DeliveredAt: at})
	if err != nil {
		return fmt.Errorf("marking outbox message %d delivered: %w", id, err)
	}
	return nil
}

// MarkOutboxAttemptFailed records a failed attempt; failedAt is set when no
// attempt is left, which makes the message show up as failed.
func (q *Queries) MarkOutboxAttemptFailed(ctx context.Context, id int64, reason string, failedAt *time.Time) error {
	err := q.gen.MarkOutboxAttemptFailed(ctx, dbsqlc.MarkOutboxAttemptFailedParams{ID: id, LastError: &reason, FailedAt: failedAt})
	if err != nil {
		return fmt.Errorf("recording failed attempt of outbox message %d: %w", id, err)
	}
	return nil
}

// FailedOutbox lists messages of a channel whose every attempt failed,
// oldest first.
func (q *Queries) FailedOutbox(ctx context.Context, channel string, limit int) ([]domain.Delivery, error) {
	rows, err := q.gen.FailedOutbox(ctx, dbsqlc.FailedOutboxParams{Channel: channel, MaxMessages: int32(limit)})
	return mapRows(rows, err, "listing failed outbox messages", deliveryOf)
}

// ClearOutboxFailure puts a failed, undelivered message back in line for
// another round of attempts (its count starts again) and reports whether
// there was one.
func (q *Queries) ClearOutboxFailure(ctx context.Context, id int64) (bool, error) {
	n, err := q.gen.ClearOutboxFailure(ctx, id)
	if err != nil {
		return false, fmt.Errorf("clearing failure of outbox message %d: %w", id, err)
	}
	return n == 1, nil
}

// OutboxOfEvents returns the webhook messages of the events (their outbox
// event ids), oldest first, through the event id indexes.
func (q *Queries) OutboxOfEvents(ctx context.Context, eventIDs []string) ([]domain.Delivery, error) {
	rows, err := q.gen.OutboxOfEvents(ctx, eventIDs)
	return mapRows(rows, err, "listing deliveries of events", deliveryOf)
}

// DeleteDeliveredOutbox deletes up to limit messages delivered before
// before, with their attempt log, and says how many it deleted. Failed and
// waiting messages stay, whatever their age.
func (q *Queries) DeleteDeliveredOutbox(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := q.gen.DeleteDeliveredOutbox(ctx, dbsqlc.DeleteDeliveredOutboxParams{Before: before, MaxMessages: int32(limit)})
	if err != nil {
		return 0, fmt.Errorf("deleting delivered outbox messages: %w", err)
	}
	return int(n), nil
}
