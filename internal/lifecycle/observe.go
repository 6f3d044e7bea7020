package lifecycle

import (
	"context"

	"github.com/trialsd/trialsd/internal/domain"
)

// Observer hears of every event of a change once the change's transaction
// committed, never before and never for one that rolled back, so what it
// counts is what the database holds; *metrics.Metrics is one.
type Observer interface {
	TrialChanged(ev domain.Committed)
}

// Observations are the events a change made in its caller's transaction
// (a sign-up, a payment, a v2 create-enterprise). The lifecycle cannot see
// that transaction commit, so the caller reports them with Committed once
// it has, and drops them if it rolled back.
type Observations struct {
	s    *Service
	seen []domain.Committed
}

// Committed reports the observations: call it after the caller's
// transaction committed.
func (o Observations) Committed(ctx context.Context) {
	if o.s != nil {
		o.s.report(ctx, o.seen)
	}
}

// observations are c's events, for a caller that owns the transaction.
func (c *change) observations() Observations { return Observations{s: c.s, seen: c.seen} }

// observe notes one recorded event of the change, to report on commit.
func (c *change) observe(ev domain.Event, t domain.Trial, data map[string]any) {
	seen := domain.Committed{Event: ev, OrganizationID: t.OrganizationID, Age: c.now.Sub(t.CreatedAt), TestClockID: t.TestClockID}
	seen.Due = c.due
	switch ev.Kind {
	case domain.EventCreated:
		seen.Source = c.source()
	case domain.EventUpgraded:
		seen.Path = c.path
		if seen.Path == "" {
			seen.Path = domain.PathAdmin
		}
		seen.From, _ = data["from"].(domain.State)
	}
	c.seen = append(c.seen, seen)
}

// source is where a trial this change starts comes from: the sign-up's
// transaction says so; otherwise an admin's or the user's own.
func (c *change) source() domain.TrialSource {
	switch {
	case c.signup:
		return domain.SourceEnterpriseSignup
	case c.actor.Admin:
		return domain.SourceAdmin
	}
	return domain.SourceSelfService
}

// report logs each committed event, with what it happened to, who did it
// and why, and tells the observer, except of a test clock's rehearsals.
func (s *Service) report(ctx context.Context, seen []domain.Committed) {
	for _, ev := range seen {
		attrs := []any{"trial_id", ev.Event.TrialID, "organization_id", ev.OrganizationID,
			"kind", ev.Event.Kind, "actor", ev.Event.Actor, "cause", ev.Event.Cause}
		if !ev.Due.IsZero() {
			attrs = append(attrs, "lag_s", max(ev.Event.At.Sub(ev.Due), 0).Seconds())
		}
		if ev.TestClockID != nil {
			attrs = append(attrs, "test_clock_id", *ev.TestClockID)
		}
		s.logger.InfoContext(ctx, "trial changed", attrs...)
		if s.observer != nil && ev.TestClockID == nil {
			s.observer.TrialChanged(ev)
		}
	}
}
