// Package outbox is trialsd's transactional outbox: messages to the outside
// world — lifecycle events to webhook endpoints, e-mails to users — are
// written, with the River job that delivers them, in the transaction of the
// change that causes them. A message is sent if and only if its cause
// committed.
//
// Webhooks follow Standard Webhooks (docs/webhooks.md), signed with the
// spec's own Go library so any receiver's library verifies them. Endpoints
// are data (Endpoints), each with its secret and its event types; each
// delivery attempt is logged, retried on webhooks.retry_schedule, and an
// endpoint that answers 410 or fails for webhooks.disable_after is
// disabled. E-mails are retried with River's backoff. Either stays visible
// as failed, to be replayed, when every attempt fails.
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

	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
)

// Inserter enqueues jobs in a transaction; *river.Client[pgx.Tx] is one.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Writer writes messages for delivery.
type Writer struct {
	jobs Inserter
	// emailAttempts is River's MaxAttempts for an e-mail's delivery job.
	emailAttempts int
}

// NewWriter returns a writer enqueueing deliveries on jobs; an e-mail gets
// emailAttempts attempts. Webhooks go to the endpoints stored when the event
// is written.
func NewWriter(jobs Inserter, emailAttempts int) *Writer {
	return &Writer{jobs: jobs, emailAttempts: emailAttempts}
}

// Payload is the JSON body of a webhook delivery, as Standard Webhooks
// shapes it: what happened, when, and its data.
type Payload struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// EventData is the data of a trial event's delivery: the trial as it stood
// after the event, the event, and the event's place in the trial's history.
type EventData struct {
	Trial TrialPayload `json:"trial"`
	Event EventPayload `json:"event"`
	// Sequence grows with each event of the trial: a receiver drops a
	// delivery whose sequence is below one it has applied.
	Sequence int64 `json:"sequence"`
}

// TrialPayload is the trial as it stood after the event: the contract's
// EnterpriseTrial plus its state.
type TrialPayload struct {
	wire.EnterpriseTrial
	State domain.State `json:"state"`
}

// EventPayload is the event as the trial's history (the admin events
// route) shows it.
type EventPayload struct {
	ID    int64           `json:"id"`
	Kind  string          `json:"kind"`
	At    string          `json:"at"`
	Actor string          `json:"actor"`
	Cause string          `json:"cause"`
	Data  json.RawMessage `json:"data"`
}

// Email is an e-mail message, as the outbox keeps it until it is sent.
type Email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	// Body is the plain text; HTML, when set, its alternative.
	Body string `json:"body"`
	HTML string `json:"html,omitempty"`
	// Date is the Date header: when the message was written, by the
	// clock of its cause (a test clock's simulated time); zero: when sent.
	Date time.Time `json:"date,omitzero"`
	// MessageID is the Message-ID header, the same on every attempt, so a
	// receiver can tell a resent message from a new one; empty: a new one
	// per attempt.
	MessageID string `json:"messageId,omitempty"`
	// Headers are further headers, such as List-Unsubscribe.
	Headers []Header `json:"headers,omitempty"`
	// Template names a trial notice's template (emails.Names); empty for
	// the activation codes.
	Template string `json:"template,omitempty"`
}

// Header is one header of an e-mail.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// EventID is the delivery id of a trial event: the webhook-id header,
// the same on every attempt and for every endpoint.
func EventID(eventID int64) string { return fmt.Sprintf("evt_%d", eventID) }

// Enqueue writes ev about trial t, with its delivery job, for every enabled
// endpoint that takes ev's kind, in tx.
func (o *Writer) Enqueue(ctx context.Context, tx pgx.Tx, ev domain.Event, t domain.Trial) error {
	return o.EnqueueAll(ctx, tx, []domain.Event{ev}, []domain.Trial{t})
}

// EnqueueAll is Enqueue of events[i] about trials[i] for each i, reading
// the endpoints once per event kind: a sweep's hundreds of expiries cost
// one lookup, and none more when no endpoint takes them.
func (o *Writer) EnqueueAll(ctx context.Context, tx pgx.Tx, events []domain.Event, trials []domain.Trial) error {
	if o == nil {
		return nil
	}
	q := store.New(tx)
	byKind := make(map[string][]store.WebhookEndpoint)
	for i, ev := range events {
		endpoints, seen := byKind[ev.Kind]
		if !seen {
			var err error
			if endpoints, err = q.EnabledWebhookEndpoints(ctx, ev.Kind); err != nil {
				return err
			}
			byKind[ev.Kind] = endpoints
		}
		if len(endpoints) == 0 {
			continue
		}
		if err := o.enqueue(ctx, tx, endpoints, ev, trials[i]); err != nil {
			return err
		}
	}
	return nil
}

// enqueue writes ev about trial t for endpoints.
func (o *Writer) enqueue(ctx context.Context, tx pgx.Tx, endpoints []store.WebhookEndpoint, ev domain.Event, t domain.Trial) error {
	seq, err := store.New(tx).TrialEventSequence(ctx, t.ID, ev.ID)
	if err != nil {
		return err
	}
	data := ev.Data
	if data == nil {
		data = json.RawMessage(`{}`)
	}
	body, err := payload(ev.Kind, ev.At, EventData{
		Trial:    TrialPayload{EnterpriseTrial: wire.Trial(t), State: t.State},
		Event:    EventPayload{ID: ev.ID, Kind: ev.Kind, At: wire.Format(ev.At), Actor: ev.Actor, Cause: ev.Cause, Data: data},
		Sequence: seq,
	})
	if err != nil {
		return err
	}
	return o.writeWebhooks(ctx, tx, endpoints, store.OutboxMessage{
		Delivery: domain.Delivery{EventID: EventID(ev.ID), TrialID: &t.ID, CreatedAt: ev.At}, Payload: body,
	})
}

// ClockEventData is the data of a test clock's own event.
type ClockEventData struct {
	TestClock wire.TestClock `json:"testClock"`
}

// EnqueueClockEvent writes a test clock's event of kind (one of
// domain.ClockEventKinds) for every endpoint that takes it, in tx, at at
// (real time). The clock's id, the kind and its frozen time name the
// delivery: an advance's ready, say, is one delivery however often it is
// written.
func (o *Writer) EnqueueClockEvent(ctx context.Context, tx pgx.Tx, kind string, clk domain.TestClock, at time.Time) error {
	if o == nil {
		return nil
	}
	endpoints, err := store.New(tx).EnabledWebhookEndpoints(ctx, kind)
	if err != nil || len(endpoints) == 0 {
		return err
	}
	body, err := payload(kind, at, ClockEventData{TestClock: wire.Clock(clk)})
	if err != nil {
		return err
	}
	marker := clk.FrozenTime
	if clk.Target != nil {
		marker = *clk.Target
	}
	return o.writeWebhooks(ctx, tx, endpoints, store.OutboxMessage{
		Delivery: domain.Delivery{EventID: fmt.Sprintf("%s_%d_%d", kind, clk.ID, marker.UnixMilli()), CreatedAt: at}, Payload: body,
	})
}

// payload is the body of a delivery of type at, with data.
func payload(eventType string, at time.Time, data any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding %s webhook data: %w", eventType, err)
	}
	body, err := json.Marshal(Payload{Type: eventType, Timestamp: wire.Format(at), Data: raw})
	if err != nil {
		return nil, fmt.Errorf("encoding %s webhook payload: %w", eventType, err)
	}
	return body, nil
}

// writeWebhooks writes m once for each endpoint.
func (o *Writer) writeWebhooks(ctx context.Context, tx pgx.Tx, endpoints []store.WebhookEndpoint, m store.OutboxMessage) error {
	for _, e := range endpoints {
		m.Channel, m.Destination, m.EndpointID = store.ChannelWebhook, e.URL, &e.ID
		if err := o.write(ctx, tx, m); err != nil {
			return err
		}
	}
	return nil
}

// EnqueueEmail writes an e-mail, with its delivery job, in tx. id names the
// message for deduplication (e.g. "activation:<user>:<n>").
func (o *Writer) EnqueueEmail(ctx context.Context, tx pgx.Tx, id string, m Email, at time.Time) error {
	return o.writeEmail(ctx, tx, domain.Delivery{EventID: id, Channel: store.ChannelEmail, Destination: m.To, CreatedAt: at}, m)
}

// EnqueueTrialEmail is EnqueueEmail of an e-mail about a trial: its
// delivery or failure is recorded in the trial's history.
func (o *Writer) EnqueueTrialEmail(ctx context.Context, tx pgx.Tx, trialID int64, id string, m Email, at time.Time) error {
	return o.writeEmail(ctx, tx, domain.Delivery{EventID: id, Channel: store.ChannelEmail, Destination: m.To, TrialID: &trialID, CreatedAt: at}, m)
}

func (o *Writer) writeEmail(ctx context.Context, tx pgx.Tx, d domain.Delivery, m Email) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding e-mail: %w", err)
	}
	return o.write(ctx, tx, store.OutboxMessage{Delivery: d, Payload: body})
}

func (o *Writer) write(ctx context.Context, tx pgx.Tx, m store.OutboxMessage) error {
	id, inserted, err := store.New(tx).InsertOutbox(ctx, m)
	if err != nil || !inserted {
		return err
	}
	return o.enqueueFirst(ctx, tx, id, m.Channel)
}

// enqueueFirst enqueues the first attempt of a round of deliveries of
// message id: an e-mail's job, on the e-mail queue, is retried by River; a
// webhook's attempts are scheduled one by one.
func (o *Writer) enqueueFirst(ctx context.Context, tx pgx.Tx, id int64, channel string) error {
	if channel == store.ChannelEmail {
		return o.enqueueDelivery(ctx, tx, jobargs.DeliverOutbox{V: jobargs.Version, OutboxID: id},
			&river.InsertOpts{Queue: jobargs.QueueEmail, MaxAttempts: o.emailAttempts})
	}
	return o.enqueueAttempt(ctx, tx, id, 1, time.Time{})
}

// enqueueAttempt schedules attempt n of webhook message outboxID at at
// (zero: now). A job for an attempt already made does nothing, so a job
// River runs twice never starts a second chain of retries.
func (o *Writer) enqueueAttempt(ctx context.Context, tx pgx.Tx, outboxID int64, n int, at time.Time) error {
	return o.enqueueDelivery(ctx, tx, jobargs.DeliverOutbox{V: jobargs.Version, OutboxID: outboxID, Attempt: n}, &river.InsertOpts{ScheduledAt: at})
}

func (o *Writer) enqueueDelivery(ctx context.Context, tx pgx.Tx, args jobargs.DeliverOutbox, opts *river.InsertOpts) error {
	if _, err := o.jobs.InsertTx(ctx, tx, args, opts); err != nil {
		return fmt.Errorf("enqueueing delivery of outbox message %d: %w", args.OutboxID, err)
	}
	return nil
}
