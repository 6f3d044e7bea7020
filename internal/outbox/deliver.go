package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/signature"
	"github.com/trialsd/trialsd/internal/store"
)

// Outcomes of a delivery attempt.
const (
	Delivered = "delivered"
	Retrying  = "retrying"
	Failed    = "failed"
	// Skipped: the message was delivered already (a replayed or duplicate job).
	Skipped = "skipped"
)

// Sender sends e-mails: LogSender in development, SMTPSender in production.
type Sender interface {
	Send(ctx context.Context, m Email) error
}

// Deliverer sends outbox messages.
type Deliverer struct {
	pool   *pgxpool.Pool
	client *http.Client
	secret []byte
	clock  clock.Clock
	writer *Writer
	mail   Sender
}

// NewDeliverer returns a deliverer signing webhooks with secret (client's
// timeout bounds each attempt) and sending e-mails through mail.
func NewDeliverer(pool *pgxpool.Pool, client *http.Client, secret string, clk clock.Clock, writer *Writer, mail Sender) *Deliverer {
	return &Deliverer{pool: pool, client: client, secret: []byte(secret), clock: clk, writer: writer, mail: mail}
}

// Deliver makes one attempt at delivering an outbox message and returns its
// channel and outcome. A failure (a non-2xx answer, a network or SMTP error)
// is returned as an error, for River to retry with backoff; final says this
// is the last attempt, after which the message is marked failed.
func (d *Deliverer) Deliver(ctx context.Context, outboxID int64, final bool) (channel, outcome string, err error) {
	q := store.New(d.pool)
	m, err := q.OutboxByID(ctx, outboxID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.DeliveredAt != nil) {
		return m.Channel, Skipped, nil
	}
	if err != nil {
		return "", "", err
	}
	outcome, err = d.attempt(ctx, q, m, final)
	return m.Channel, outcome, err
}

func (d *Deliverer) attempt(ctx context.Context, q *store.Queries, m store.OutboxMessage, final bool) (string, error) {
	var sendErr error
	switch m.Channel {
	case store.ChannelEmail:
		var e Email
		if sendErr = json.Unmarshal(m.Payload, &e); sendErr == nil {
			sendErr = d.mail.Send(ctx, e)
		}
	default:
		sendErr = d.post(ctx, m)
	}
	now := d.clock.Now().UTC()
	if sendErr == nil {
		return d.sentOutcome(m), q.MarkOutboxDelivered(ctx, m.ID, now)
	}
	outcome := Retrying
	var failedAt *time.Time
	if final {
		outcome, failedAt = Failed, &now
	}
	if err := q.MarkOutboxAttemptFailed(ctx, m.ID, sendErr.Error(), failedAt); err != nil {
		return "", errors.Join(sendErr, err)
	}
	return outcome, sendErr
}

func (d *Deliverer) post(ctx context.Context, m store.OutboxMessage) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Destination, bytes.NewReader(m.Payload))
	if err != nil {
		return fmt.Errorf("building request to %s: %w", m.Destination, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "trialsd-webhooks")
	req.Header.Set("X-Trialsd-Event-Id", m.EventID)
	req.Header.Set(signature.Header, signature.Sign(d.secret, d.clock.Now(), m.Payload))
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to %s: %w", m.Destination, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", m.Destination, resp.Status)
	}
	return nil
}

// Failed lists webhook deliveries whose every attempt failed.
func (d *Deliverer) Failed(ctx context.Context, limit int) ([]store.OutboxMessage, error) {
	return store.New(d.pool).FailedOutbox(ctx, store.ChannelWebhook, limit)
}

// Retry puts failed deliveries back in line, each with a fresh round of
// attempts, and returns how many it requeued.
func (d *Deliverer) Retry(ctx context.Context, ids []int64) (int, error) {
	n := 0
	for _, id := range ids {
		var requeued bool
		err := store.InTx(ctx, d.pool, func(tx pgx.Tx) error {
			ok, err := store.New(tx).ClearOutboxFailure(ctx, id)
			requeued = ok && err == nil // set afresh: InTx may run this again
			if !requeued {
				return err
			}
			return d.writer.enqueueDelivery(ctx, tx, id)
		})
		if err != nil {
			return n, err
		}
		if requeued {
			n++
		}
	}
	return n, nil
}
