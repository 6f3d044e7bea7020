package lifecycle

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/store"
)

// change is one lifecycle change in progress: the transaction it is made
// in and its queries, the instant it happens at, who makes it and why.
// Every step that locks a trial, writes its row, records its history or
// schedules its jobs is a method of change, so one change cannot record one
// actor and schedule at another instant, and the instant has one source:
// now is read from the service's clock once, when the change begins, and
// replaced by a test clock's frozen time once the change finds its trial
// on one (enterClock).
type change struct {
	s     *Service
	tx    pgx.Tx
	q     *store.Queries
	now   time.Time
	actor domain.Actor
	cause string
	// clock is the test clock of the change's trials, nil for real time.
	clock *domain.TestClock
	// due is when a job-driven transition was due (zero for a request),
	// for the lag its events report.
	due time.Time
	// signup marks a change in a public sign-up's transaction, and path
	// says how an upgrade came (admin when unset): what the observer is
	// told of starts and conversions.
	signup bool
	path   domain.ConversionPath
	// seen are the events recorded so far, reported once committed.
	seen []domain.Committed
	// note is the operator's reason for the change (WithNote), recorded in
	// the data of every event it records; empty: none.
	note string
}

// Option adjusts an operator's change; the operations an admin makes by
// hand (UpdateTrial, Upgrade, DeleteTrialNow, RestoreOrganization) take
// them, so a caller that has none calls them as before.
type Option func(*change)

// WithNote records note, the operator's reason for the change, under
// "note" in the data of the events the change records, where the timeline
// and the webhooks show it. An empty note records nothing.
func WithNote(note string) Option {
	return func(c *change) { c.note = note }
}

// begin starts a change in tx.
func (s *Service) begin(tx pgx.Tx, actor domain.Actor, cause string) *change {
	return &change{s: s, tx: tx, q: store.New(tx), now: s.now(), actor: actor, cause: cause}
}

// inChange runs fn as one change in a transaction of its own. A transaction
// store.InTx retries starts a fresh change, with its own instant. The
// events of the change are reported once it committed.
func (s *Service) inChange(ctx context.Context, actor domain.Actor, cause string, fn func(c *change) error, opts ...Option) error {
	var c *change
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		c = s.begin(tx, actor, cause)
		for _, o := range opts {
			o(c)
		}
		if err := domain.CheckLength("note", &c.note, domain.MaxNotesLength); err != nil {
			return err
		}
		return fn(c)
	})
	if err == nil {
		s.report(ctx, c.seen)
	}
	return err
}

// lockTrial locks a trial for an API operation: unknown is 404. It takes
// the trial's row alone; an operation that also touches the trial's
// organization locks it with lockOrganization instead.
func (c *change) lockTrial(ctx context.Context, id int64) (domain.Trial, error) {
	t, err := c.q.TrialByIDForUpdate(ctx, id)
	if err != nil {
		return domain.Trial{}, trialNotFound(ctx, c.q, id, err)
	}
	return t, c.enterClock(ctx, t)
}

// lockOrganization locks an organization and its trials in the documented
// order (its trials in id order, then the organization), and returns them.
func (c *change) lockOrganization(ctx context.Context, orgID int64) (domain.Organization, []domain.Trial, error) {
	org, trials, err := c.q.LockOrganization(ctx, orgID)
	if err != nil {
		return domain.Organization{}, nil, err
	}
	for _, t := range trials {
		if err := c.enterClock(ctx, t); err != nil {
			return domain.Organization{}, nil, err
		}
	}
	return org, trials, nil
}

// enterClock puts the change on t's test clock, if it has one: from then
// on the change happens at the clock's frozen time, and the jobs it
// schedules wait for the clock (pending) instead of for real time.
func (c *change) enterClock(ctx context.Context, t domain.Trial) error {
	if t.TestClockID == nil || c.clock != nil {
		return nil
	}
	clk, err := c.q.TestClockByID(ctx, *t.TestClockID)
	if err != nil {
		return fmt.Errorf("reading test clock %d of trial %d: %w", *t.TestClockID, t.ID, err)
	}
	c.useClock(clk)
	return nil
}

// useClock makes clk the change's time.
func (c *change) useClock(clk domain.TestClock) {
	c.clock = &clk
	c.now = domain.Instant(clk.FrozenTime)
}

// jobOpts are the options of a job the change schedules at at: due then
// by real time, or, on a test clock, pending until an advance reaches at,
// on the test-clock queue.
func (c *change) jobOpts(at time.Time) *river.InsertOpts {
	if c.clock != nil {
		return &river.InsertOpts{ScheduledAt: at, Pending: true, Queue: jobargs.QueueTestClock}
	}
	return &river.InsertOpts{ScheduledAt: at}
}

// setDates writes t's lifecycle dates and refreshes t.State from the row.
func (c *change) setDates(ctx context.Context, t *domain.Trial) error {
	state, err := c.q.SetTrialDates(ctx, t.ID, store.TrialDates{
		ExpirationDate: t.ExpirationDate, ExpiredDate: t.ExpiredDate, DeletedDate: t.DeletedDate,
		UpgradedDate: t.UpgradedDate, GraceEndsAt: t.GraceEndsAt,
	})
	if err != nil {
		return err
	}
	t.State = state
	return nil
}

// record appends one event to t's history, by the change's actor at its
// instant, and hands it to the webhook outbox: the event and its
// deliveries commit with the change.
func (c *change) record(ctx context.Context, t domain.Trial, kind string, data map[string]any) error {
	if c.note != "" {
		data = maps.Clone(data)
		if data == nil {
			data = map[string]any{}
		}
		data["note"] = c.note
	}
	raw, err := eventData(data)
	if err != nil {
		return fmt.Errorf("encoding %s event: %w", kind, err)
	}
	ev := domain.Event{TrialID: t.ID, Kind: kind, At: c.now, Actor: c.actor.String(), Cause: c.cause, Data: raw}
	if ev.ID, err = c.q.InsertTrialEvent(ctx, ev); err != nil {
		return err
	}
	c.observe(ev, t, data)
	return c.s.webhooks.Enqueue(ctx, c.tx, ev, t)
}

// purgeDate is when an organization deleted by this change is purged.
func (c *change) purgeDate() *time.Time { return ptrTime(c.now.Add(c.s.cfg.PurgeAfter)) }

func ptrTime(t time.Time) *time.Time { return &t }
