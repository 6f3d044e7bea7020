// Package outbox is trialsd's transactional outbox: messages to the outside
// world — lifecycle events to the operator's webhook endpoints, e-mails to
// users — are written, with the River job that delivers them, in the
// transaction of the change that causes them. A message is sent if and only
// if its cause committed. Deliveries are retried with River's backoff and
// stay visible as failed, to be replayed, when every attempt fails.
//
// Webhooks are signed like payment callbacks (package signature) and carry
// a stable event id for receivers to deduplicate on.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
	"github.com/trialsd/trialsd/jobs/jobargs"
)

// Inserter enqueues jobs in a transaction; *river.Client[pgx.Tx] is one.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Writer writes messages for delivery.
type Writer struct {
	endpoints   []string
	jobs        Inserter
	maxAttempts int
}

// NewWriter returns a writer; events go to endpoints (none: no webhooks),
// each delivery gets maxAttempts attempts.
func NewWriter(endpoints []string, jobs Inserter, maxAttempts int) *Writer {
	return &Writer{endpoints: endpoints, jobs: jobs, maxAttempts: maxAttempts}
}

// Payload is the JSON body of a webhook delivery.
type Payload struct {
	// ID is stable across retries and endpoints: receivers deduplicate on it.
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"createdAt"`
	Actor     string          `json:"actor"`
	Cause     string          `json:"cause"`
	Trial     TrialPayload    `json:"trial"`
	Data      json.RawMessage `json:"data"`
}

// TrialPayload is the trial as it stood after the event: the contract's
// EnterpriseTrial plus its state.
type TrialPayload struct {
	wire.EnterpriseTrial
	State domain.State `json:"state"`
}

// Email is an e-mail message.
type Email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// EventID is the delivery id of a trial event.
func EventID(eventID int64) string { return fmt.Sprintf("evt_%d", eventID) }

// Enqueue writes ev about trial t for every webhook endpoint, with its
// delivery job, in tx.
func (o *Writer) Enqueue(ctx context.Context, tx pgx.Tx, ev domain.Event, t domain.Trial) error {
	if o == nil || len(o.endpoints) == 0 {
		return nil
	}
	body, err := json.Marshal(Payload{
		ID: EventID(ev.ID), Type: ev.Kind, CreatedAt: wire.Format(ev.At), Actor: ev.Actor, Cause: ev.Cause,
		Trial: TrialPayload{EnterpriseTrial: wire.Trial(t), State: t.State},
		Data:  ev.Data,
	})
	if err != nil {
		return fmt.Errorf("encoding webhook payload: %w", err)
	}
	for _, endpoint := range o.endpoints {
		err := o.write(ctx, tx, store.OutboxMessage{
			EventID: EventID(ev.ID), Channel: store.ChannelWebhook, Destination: endpoint,
			TrialID: &t.ID, Payload: body, CreatedAt: ev.At,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// EnqueueEmail writes an e-mail, with its delivery job, in tx. id names the
// message for deduplication (e.g. "activation:<user>:<n>").
func (o *Writer) EnqueueEmail(ctx context.Context, tx pgx.Tx, id string, m Email, at time.Time) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding e-mail: %w", err)
	}
	return o.write(ctx, tx, store.OutboxMessage{
		EventID: id, Channel: store.ChannelEmail, Destination: m.To, Payload: body, CreatedAt: at,
	})
}

func (o *Writer) write(ctx context.Context, tx pgx.Tx, m store.OutboxMessage) error {
	id, inserted, err := store.New(tx).InsertOutbox(ctx, m)
	if err != nil || !inserted {
		return err
	}
	return o.enqueueDelivery(ctx, tx, id)
}

func (o *Writer) enqueueDelivery(ctx context.Context, tx pgx.Tx, outboxID int64) error {
	_, err := o.jobs.InsertTx(ctx, tx, jobargs.DeliverOutbox{V: jobargs.Version, OutboxID: outboxID},
		&river.InsertOpts{MaxAttempts: o.maxAttempts})
	if err != nil {
		return fmt.Errorf("enqueueing delivery of outbox message %d: %w", outboxID, err)
	}
	return nil
}
