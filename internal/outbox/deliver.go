package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/internal/store"
)

// Outcomes of a delivery attempt.
const (
	Delivered = "delivered"
	Retrying  = "retrying"
	Failed    = "failed"
	// Disabled: the attempt failed and disabled its endpoint (410 Gone, or
	// failing for webhooks.disable_after).
	Disabled = "disabled"
	// Skipped: the message was delivered already, or this attempt was made
	// (a replayed or duplicate job).
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
	clock  clock.Clock
	writer *Writer
	mail   Sender
	cfg    config.Webhooks
	logger *slog.Logger
	// inFlight caps the attempts in flight to each endpoint.
	inFlight *inFlight
	emails   EmailObserver
}

// EmailObserver hears of each trial notice sent or failed for good;
// *metrics.Metrics is one.
type EmailObserver interface {
	Email(template, outcome string)
}

// DelivererDeps are what a Deliverer is built on.
type DelivererDeps struct {
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	Writer *Writer
	Mail   Sender
	// Config is webhooks.*: the retry schedule, the disabling policy, the
	// timeout, which addresses may be reached, the config endpoints' secret.
	Config config.Webhooks
	Logger *slog.Logger
	// Emails hears of the trial notices sent and failed; nil: nobody.
	Emails EmailObserver
}

// NewDeliverer returns a deliverer of webhooks and e-mails.
func NewDeliverer(d DelivererDeps) *Deliverer {
	return &Deliverer{
		pool: d.Pool, client: newHTTPClient(d.Config.Timeout, d.Config.AllowPrivateNetworks),
		clock: d.Clock, writer: d.Writer, mail: d.Mail, cfg: d.Config, logger: d.Logger,
		inFlight: newInFlight(), emails: d.Emails,
	}
}

// Delivery is one job's attempt at an outbox message.
type Delivery struct {
	OutboxID int64
	// Attempt is the webhook attempt the job was scheduled for (0 for an
	// e-mail); a job for an attempt already made does nothing.
	Attempt int
	// LastTry says River will not run an e-mail's job again.
	LastTry bool
}

// Deliver makes one attempt at delivering an outbox message and returns its
// channel and outcome. A webhook's failed attempt schedules the next one
// itself and returns no error; an error is an e-mail's failure, for River
// to retry with backoff unless it is a *RejectedError (the relay's 5xx:
// the message is failed already), or the database's, or an
// *EndpointBusyError: no attempt was made, as the endpoint had every slot
// in flight.
func (d *Deliverer) Deliver(ctx context.Context, job Delivery) (channel, outcome string, err error) {
	q := store.New(d.pool)
	m, err := q.OutboxByID(ctx, job.OutboxID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.DeliveredAt != nil) {
		return m.Channel, Skipped, nil
	}
	if err != nil {
		return "", "", err
	}
	if m.Channel == store.ChannelEmail {
		outcome, err = d.sendEmail(ctx, m, job.LastTry)
		return m.Channel, outcome, err
	}
	if m.EndpointID == nil || job.Attempt != m.Attempts+1 || m.FailedAt != nil {
		return m.Channel, Skipped, nil
	}
	outcome, err = d.attemptWebhook(ctx, m)
	return m.Channel, outcome, err
}

func (d *Deliverer) sendEmail(ctx context.Context, m store.OutboxMessage, lastTry bool) (string, error) {
	var e Email
	sendErr := json.Unmarshal(m.Payload, &e)
	if sendErr == nil {
		sendErr = d.mail.Send(ctx, e)
	}
	now := d.clock.Now().UTC()
	if sendErr == nil {
		outcome := d.sentOutcome(m)
		return outcome, d.settleEmail(ctx, m, e, outcome, func(q *store.Queries) error { return q.MarkOutboxDelivered(ctx, m.ID, now) })
	}
	outcome := Retrying
	var failedAt *time.Time
	if lastTry || errors.As(sendErr, new(*RejectedError)) {
		outcome, failedAt = Failed, &now
	}
	err := d.settleEmail(ctx, m, e, outcome, func(q *store.Queries) error { return q.MarkOutboxAttemptFailed(ctx, m.ID, sendErr.Error(), failedAt) })
	if err != nil {
		return "", errors.Join(sendErr, err)
	}
	return outcome, sendErr
}

// settleEmail records an e-mail attempt's outcome with mark and, for a
// trial's notice that the relay took or that failed for good, the trial
// event that says so, in one transaction, and counts a notice's final
// outcome. A notice the log sender wrote to the log reached nobody: it is
// counted, not recorded.
func (d *Deliverer) settleEmail(ctx context.Context, m store.OutboxMessage, e Email, outcome string, mark func(*store.Queries) error) error {
	var err error
	if m.TrialID != nil && e.Template != "" && (outcome == Delivered || outcome == Failed) {
		err = store.InTx(ctx, d.pool, func(tx pgx.Tx) error {
			if err := mark(store.New(tx)); err != nil {
				return err
			}
			return d.recordEmail(ctx, tx, *m.TrialID, m.ID, e, outcome)
		})
	} else {
		err = mark(store.New(d.pool))
	}
	if err == nil && d.emails != nil && e.Template != "" && outcome != Retrying {
		d.emails.Email(e.Template, outcome)
	}
	return err
}

// recordEmail appends trial.email_sent or trial.email_failed for notice e,
// outbox message outboxID, to the trial's history, with its webhooks, in
// tx. A trial purged since has no history to add to.
func (d *Deliverer) recordEmail(ctx context.Context, tx pgx.Tx, trialID, outboxID int64, e Email, outcome string) error {
	q := store.New(tx)
	t, err := q.TrialByID(ctx, trialID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	data, err := json.Marshal(domain.EmailEventData{Template: e.Template, To: logging.MaskEmail(e.To), Outcome: outcome, MessageID: e.MessageID})
	if err != nil {
		return err
	}
	kind, at := domain.EventEmailSent, d.clock.Now()
	if outcome == Failed {
		kind = domain.EventEmailFailed
	}
	if t.TestClockID != nil {
		at = e.Date // the trial's time is its clock's: when the notice was written
	}
	ev := domain.Event{TrialID: t.ID, Kind: kind, At: at, Actor: domain.System.String(), Cause: domain.OutboxCause(outboxID), Data: data}
	if ev.ID, err = q.InsertTrialEvent(ctx, ev); err != nil {
		return err
	}
	return d.writer.Enqueue(ctx, tx, ev, t)
}

// answer is what one webhook attempt got back.
type answer struct {
	// status is 0 when no answer came.
	status     int
	retryAfter time.Duration
	took       time.Duration
	err        error
}

// attemptWebhook posts m to its endpoint, unless the endpoint is disabled,
// and records the outcome.
func (d *Deliverer) attemptWebhook(ctx context.Context, m store.OutboxMessage) (string, error) {
	ep, err := store.New(d.pool).WebhookEndpointByID(ctx, *m.EndpointID)
	if errors.Is(err, store.ErrNotFound) {
		return Skipped, nil // deleted since: its messages went with it
	}
	if err != nil {
		return "", err
	}
	now := d.clock.Now()
	if ep.DisabledAt != nil {
		return Failed, store.New(d.pool).MarkOutboxAttemptFailed(ctx, m.ID, "endpoint disabled", &now)
	}
	release, err := d.inFlight.take(ep.ID, d.slots(ep), d.cfg.Timeout)
	if err != nil {
		return "", err
	}
	ans := d.post(ctx, ep, m, now)
	release()
	return d.record(ctx, m, ans, now)
}

// slots is how many attempts to ep may be in flight from this process at
// once: webhooks.endpoint_concurrency, or one while it fails, as its
// attempts likely wait for the timeout and each holds a worker meanwhile.
func (d *Deliverer) slots(ep store.WebhookEndpoint) int {
	if ep.FailingSince != nil {
		return 1
	}
	return d.cfg.EndpointConcurrency
}

// post makes one attempt at delivering m to ep, signed at now.
func (d *Deliverer) post(ctx context.Context, ep store.WebhookEndpoint, m store.OutboxMessage, now time.Time) answer {
	if _, err := checkURL(ep.URL, d.cfg.AllowPrivateNetworks); err != nil {
		return answer{err: fmt.Errorf("endpoint URL %w", err)}
	}
	sig, err := signature(m.EventID, now, m.Payload, signingSecrets(ep, d.cfg.Secret, now))
	if err == nil && sig == "" {
		err = errors.New("no secret signs for this endpoint (webhooks.secret is empty)")
	}
	if err != nil {
		return answer{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return answer{err: fmt.Errorf("building request to %s: %w", RedactURL(ep.URL), withoutURL(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "trialsd-webhooks")
	req.Header.Set(HeaderID, m.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	// The duration is a measurement of this process's wall time, not a
	// decision: it comes from the monotonic clock, not the trial clock.
	started := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return answer{took: time.Since(started), err: fmt.Errorf("posting to %s: %w", RedactURL(ep.URL), withoutURL(err))}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	ans := answer{status: resp.StatusCode, took: time.Since(started)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ans.err = fmt.Errorf("%s answered %s", RedactURL(ep.URL), resp.Status)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		ans.retryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	}
	return ans
}

// retryAfter reads a Retry-After header, seconds or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
