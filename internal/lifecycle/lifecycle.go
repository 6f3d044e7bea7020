// Package lifecycle owns the trial state machine: it starts trials, applies
// each transition, and schedules the next one as a River job in the same
// transaction as the change that causes it, so a committed change always has
// its follow-up and a rolled-back one never does.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
)

// Service applies the lifecycle rules.
type Service struct {
	pool       *pgxpool.Pool
	jobs       JobQueue
	clock      clock.Clock
	cfg        config.Lifecycle
	logger     *slog.Logger
	webhooks   *outbox.Writer
	activation Activation
	observer   Observer
	clocks     config.TestClocks
	notices    *Notices
	// eligibility is nil when no rules apply.
	eligibility *eligibility.Service
}

// Deps are what the lifecycle service works with.
type Deps struct {
	Pool   *pgxpool.Pool
	Jobs   JobQueue
	Clock  clock.Clock
	Config config.Lifecycle
	Logger *slog.Logger
	// Webhooks takes each event for delivery; nil: no deliveries.
	Webhooks *outbox.Writer
	// Activation sends a user whose e-mail address changed a code to
	// verify the new one; nil: the address is left unverified, and the
	// user asks for a code.
	Activation Activation
	// TestClocks configures test clocks; zero: they are off.
	TestClocks config.TestClocks
	// Observer hears of every committed change; nil: nobody does (an
	// operator command, whose process exports no metrics).
	Observer Observer
	// Notices are the e-mails to a trial's people; nil: none are sent.
	Notices *Notices
	// Eligibility are the rules every trial start is checked against, in
	// its transaction; nil: none (a test of other rules).
	Eligibility *eligibility.Service
}

// Activation sends a user a new activation code, in the caller's
// transaction; *signup.Codes is one.
type Activation interface {
	SendCodeTx(ctx context.Context, tx pgx.Tx, u domain.User) error
}

// New returns the lifecycle service.
func New(d Deps) *Service {
	return &Service{
		pool: d.Pool, jobs: d.Jobs, clock: d.Clock, cfg: d.Config, logger: d.Logger,
		webhooks: d.Webhooks, activation: d.Activation, observer: d.Observer,
		clocks: d.TestClocks, notices: d.Notices, eligibility: d.Eligibility,
	}
}

// Outcome says what a transition job achieved.
type Outcome string

// Outcomes of a transition.
const (
	// Applied: the transition was due and is now recorded.
	Applied Outcome = "applied"
	// Skipped: no longer due (already applied, rescheduled, upgraded, purged):
	// a duplicate, late, retried or stale job lands here and does nothing.
	Skipped Outcome = "skipped"
	// AlreadyApplied: the job's own transition is done already, for its
	// generation: a sweep expired the trial (ExpireDue) after River had
	// started the job, or an earlier attempt of this job committed and
	// died before River recorded it. Counted apart from Skipped so the
	// sweeps' share shows on the dashboards.
	AlreadyApplied Outcome = "already_applied"
)

// Result is what a transition job did.
type Result struct {
	Outcome Outcome
	// Due is when the transition was scheduled for, and At when it was
	// applied; set when Applied, for lag metrics.
	Due, At time.Time
}

// Claim is a trial a sweep expired: when it was due and when the sweep
// applied it.
type Claim struct {
	Due, At time.Time
}

// NotDueError is returned when a job runs before its transition is due (a
// clock skew between replicas, or a hand-edited row). The job should be
// retried at Due rather than dropped, or the trial would never move on.
type NotDueError struct {
	Due time.Time
}

func (e *NotDueError) Error() string {
	return fmt.Sprintf("transition not due until %s", e.Due.Format(time.RFC3339Nano))
}

// now is the clock's time as stored and shown: UTC, whole milliseconds.
func (s *Service) now() time.Time {
	return domain.Instant(s.clock.Now())
}

// Trial returns the trial with id.
func (s *Service) Trial(ctx context.Context, id int64) (domain.Trial, error) {
	q := store.New(s.pool)
	t, err := q.TrialByID(ctx, id)
	if err != nil {
		return domain.Trial{}, trialNotFound(ctx, q, id, err)
	}
	return t, nil
}

// trialNotFound is err, the failure to find trial id, as the caller should
// read it: a purged trial's row is gone but its history is not, so it is
// not "not found" but purged, at a date.
func trialNotFound(ctx context.Context, q *store.Queries, id int64, err error) error {
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	at, err := q.TrialPurgedAt(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.Errorf(apperr.NotFound, "Trial %d not found", id)
	}
	if err != nil {
		return err
	}
	return apperr.WithReason(apperr.NotFound, ReasonPurged,
		"Trial %d was purged at %s, with its organization; only its history remains", id, wire.Format(at))
}

// ReasonPurged names the NotFound error of a trial that was purged, whose
// history can still be read.
const ReasonPurged = "purged"

// IsPurged reports whether err says the trial asked for was purged.
func IsPurged(err error) bool { return apperr.ReasonOf(err) == ReasonPurged }

// Events returns a trial's whole history, oldest first. The history outlives
// a purged trial, so it is found even when the trial is not. It has no
// bound: the API and the console read it a page at a time (EventsAfter,
// EventsBefore).
func (s *Service) Events(ctx context.Context, trialID int64) ([]domain.Event, error) {
	events, err := store.New(s.pool).TrialEvents(ctx, trialID)
	return s.foundEvents(ctx, trialID, 0, events, err)
}

// EventsAfter returns up to limit events of a trial's history after the
// event with id after (0: from the first), oldest first.
func (s *Service) EventsAfter(ctx context.Context, trialID, after int64, limit int) ([]domain.Event, error) {
	events, err := store.New(s.pool).TrialEventsAfter(ctx, trialID, after, limit)
	return s.foundEvents(ctx, trialID, after, events, err)
}

// EventsBefore returns up to limit events of a trial's history before the
// event with id before (0: from the newest), newest first.
func (s *Service) EventsBefore(ctx context.Context, trialID, before int64, limit int) ([]domain.Event, error) {
	events, err := store.New(s.pool).TrialEventsBefore(ctx, trialID, before, limit)
	return s.foundEvents(ctx, trialID, before, events, err)
}

// foundEvents tells an empty first page of a trial that does not exist
// from one of a trial with no history: the first is NotFound. A later page
// (cursor set) may be empty.
func (s *Service) foundEvents(ctx context.Context, trialID, cursor int64, events []domain.Event, err error) ([]domain.Event, error) {
	if err != nil || len(events) > 0 || cursor != 0 {
		return events, err
	}
	if _, err := s.Trial(ctx, trialID); err != nil {
		return nil, err
	}
	return events, nil
}

// TrialsOfUser returns a user's trials, newest first.
func (s *Service) TrialsOfUser(ctx context.Context, userID int64) ([]domain.Trial, error) {
	return store.New(s.pool).TrialsOfUser(ctx, userID)
}

// notFoundAs turns store.ErrNotFound into a NotFound error with the message.
func notFoundAs(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.Errorf(apperr.NotFound, format, args...)
	}
	return err
}

// Parties are a trial's user and organization, as an operator reads them
// beside the trial.
type Parties struct {
	User         domain.User
	Organization domain.Organization
}

// PartiesOf returns t's user and organization.
func (s *Service) PartiesOf(ctx context.Context, t domain.Trial) (Parties, error) {
	q := store.New(s.pool)
	u, err := q.UserByID(ctx, t.UserID)
	if err != nil {
		return Parties{}, fmt.Errorf("reading user %d of trial %d: %w", t.UserID, t.ID, err)
	}
	org, err := q.OrganizationByID(ctx, t.OrganizationID)
	if err != nil {
		return Parties{}, fmt.Errorf("reading organization %d of trial %d: %w", t.OrganizationID, t.ID, err)
	}
	return Parties{User: u.User, Organization: org}, nil
}
