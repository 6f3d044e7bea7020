package outbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
)

// EventEndpointDisabled is the event delivered to the other endpoints when
// one is disabled by the delivery policy.
const EventEndpointDisabled = "webhook.endpoint_disabled"

// step is what follows a failed attempt.
type step struct {
	// retryAt is when the next attempt is due; zero: none is left.
	retryAt time.Time
	// disable, when set, is why the endpoint is disabled.
	disable string
	// failure is what went wrong with the attempt.
	failure string
}

// next is the delivery policy after failed attempt n of a message to ep at
// now: 410 Gone disables the endpoint at once, an endpoint failing since
// longer than webhooks.disable_after is disabled, and otherwise the next
// attempt waits for the schedule's next delay (with jitter), or longer if a
// 429 or 503 asked so with Retry-After (capped).
func (d *Deliverer) next(ep store.WebhookEndpoint, n int, ans answer, now time.Time) step {
	if ans.status == http.StatusGone {
		return step{disable: "answered 410 Gone"}
	}
	if ep.FailingSince != nil && now.Sub(*ep.FailingSince) >= d.cfg.DisableAfter {
		return step{disable: fmt.Sprintf("every attempt failed for %s (webhooks.disable_after)", d.cfg.DisableAfter)}
	}
	if n > len(d.cfg.RetrySchedule) {
		return step{}
	}
	delay := d.cfg.RetrySchedule[n-1]
	delay += time.Duration(float64(delay) * d.cfg.RetryJitter * rand.Float64())
	if wait := min(ans.retryAfter, d.cfg.RetryAfterMax); wait > delay {
		delay = wait
	}
	return step{retryAt: now.Add(delay)}
}

// record writes the outcome of an attempt at m in one transaction: the
// attempt log, the message, the endpoint's failing streak, and what comes
// next (the next attempt's job; or the message failed; or the endpoint
// disabled, with the event that says so). Locks: the message, then its
// endpoint.
func (d *Deliverer) record(ctx context.Context, m store.OutboxMessage, ans answer, now time.Time) (outcome string, err error) {
	err = store.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		outcome = Delivered
		if err := q.InsertWebhookAttempt(ctx, attemptRow(m, ans, now)); err != nil {
			return err
		}
		if ans.err == nil {
			if err := q.MarkOutboxDelivered(ctx, m.ID, now); err != nil {
				return err
			}
			return q.ClearEndpointFailing(ctx, *m.EndpointID)
		}
		ep, err := q.WebhookEndpointByIDForUpdate(ctx, *m.EndpointID)
		if err != nil {
			return err
		}
		if ep.FailingSince == nil {
			ep.FailingSince = &now
		}
		s := d.next(ep, m.Attempts+1, ans, now)
		s.failure = ans.err.Error()
		outcome, err = d.apply(ctx, tx, m, ep, s, now)
		return err
	})
	return outcome, err
}

// apply carries out step s after a failed attempt at m.
func (d *Deliverer) apply(ctx context.Context, tx pgx.Tx, m store.OutboxMessage, ep store.WebhookEndpoint, s step, now time.Time) (string, error) {
	q := store.New(tx)
	var failedAt *time.Time
	if s.retryAt.IsZero() {
		failedAt = &now
	}
	if err := q.MarkOutboxAttemptFailed(ctx, m.ID, s.failure, failedAt); err != nil {
		return "", err
	}
	if s.disable != "" {
		ep.DisabledAt, ep.DisabledReason, ep.UpdatedAt = &now, &s.disable, now
	}
	if err := q.UpdateWebhookEndpoint(ctx, ep); err != nil {
		return "", err
	}
	switch {
	case s.disable != "":
		d.logger.WarnContext(ctx, "webhook endpoint disabled", "endpoint_id", ep.ID, "url", RedactURL(ep.URL), "reason", s.disable)
		return Disabled, d.writer.enqueueEndpointDisabled(ctx, tx, ep, now)
	case failedAt != nil:
		return Failed, nil
	default:
		return Retrying, d.writer.enqueueAttempt(ctx, tx, m.ID, m.Attempts+2, s.retryAt)
	}
}

func attemptRow(m store.OutboxMessage, ans answer, now time.Time) store.WebhookAttempt {
	a := store.WebhookAttempt{
		OutboxID: m.ID, EndpointID: *m.EndpointID, EventID: m.EventID, Attempt: m.Attempts + 1, At: now, Duration: ans.took,
	}
	if ans.status != 0 {
		a.StatusCode = &ans.status
	}
	if ans.err != nil {
		msg := ans.err.Error()
		a.Error = &msg
	}
	return a
}

// EndpointDisabledData is the data of a webhook.endpoint_disabled delivery.
type EndpointDisabledData struct {
	EndpointID int64 `json:"endpointId"`
	// URL is the disabled endpoint's, redacted (RedactURL): the other
	// endpoints are other parties.
	URL          string `json:"url"`
	Reason       string `json:"reason"`
	DisabledAt   string `json:"disabledAt"`
	FailingSince string `json:"failingSince,omitempty"`
}

// enqueueEndpointDisabled tells the other endpoints that ep was disabled.
func (o *Writer) enqueueEndpointDisabled(ctx context.Context, tx pgx.Tx, ep store.WebhookEndpoint, now time.Time) error {
	endpoints, err := store.New(tx).EnabledWebhookEndpoints(ctx, EventEndpointDisabled)
	if err != nil || len(endpoints) == 0 {
		return err
	}
	data := EndpointDisabledData{EndpointID: ep.ID, URL: RedactURL(ep.URL), Reason: *ep.DisabledReason, DisabledAt: wire.Format(now)}
	if ep.FailingSince != nil {
		data.FailingSince = wire.Format(*ep.FailingSince)
	}
	body, err := payload(EventEndpointDisabled, now, data)
	if err != nil {
		return err
	}
	return o.writeWebhooks(ctx, tx, endpoints, store.OutboxMessage{
		Delivery: domain.Delivery{EventID: fmt.Sprintf("endpoint_disabled_%d_%d", ep.ID, now.UnixMilli()), CreatedAt: now}, Payload: body,
	})
}

// Failed lists webhook deliveries whose every attempt failed.
func (d *Deliverer) Failed(ctx context.Context, limit int) ([]domain.Delivery, error) {
	return redacted(store.New(d.pool).FailedOutbox(ctx, store.ChannelWebhook, limit))
}

// redacted shows the webhook URLs of a list of deliveries redacted
// (RedactURL): a list of deliveries is not its endpoints' settings.
func redacted(list []domain.Delivery, err error) ([]domain.Delivery, error) {
	for i, m := range list {
		if m.Channel == store.ChannelWebhook {
			list[i].Destination = RedactURL(m.Destination)
		}
	}
	return list, err
}

// Retry puts failed deliveries back in line, each with a fresh round of
// attempts, and returns how many it requeued.
func (d *Deliverer) Retry(ctx context.Context, ids []int64) (int, error) {
	return d.writer.retry(ctx, d.pool, ids)
}

// retry requeues the failed messages among ids and counts them.
func (o *Writer) retry(ctx context.Context, pool *pgxpool.Pool, ids []int64) (int, error) {
	n := 0
	for _, id := range ids {
		var requeued bool
		err := store.InTx(ctx, pool, func(tx pgx.Tx) error {
			q := store.New(tx)
			m, err := q.OutboxByID(ctx, id)
			requeued = false // set afresh: InTx may run this again
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if requeued, err = q.ClearOutboxFailure(ctx, id); !requeued || err != nil {
				return err
			}
			return o.enqueueFirst(ctx, tx, id, m.Channel)
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
