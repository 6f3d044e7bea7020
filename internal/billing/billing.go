// Package billing applies the payment provider's callbacks: a payment for a
// Professional sign-up activates its plan, a payment for an organization
// upgrades its enterprise trial. Callbacks are signed (package signature),
// and each event id is applied once: unknown, repeated or late events are
// harmless.
package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/signup"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/signature"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
)

// TypePaymentSucceeded is the event that activates or upgrades.
const TypePaymentSucceeded = "payment.succeeded"

// Event is a payment provider's callback body.
type Event struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	UserID         *int64 `json:"userId"`
	OrganizationID *int64 `json:"organizationId"`
}

// Outcome says what an event did.
type Outcome string

// Outcomes of an event.
const (
	Applied   Outcome = "applied"
	Duplicate Outcome = "duplicate"
	Ignored   Outcome = "ignored"
)

// Tolerance is how far a callback's signature timestamp may be from now.
const Tolerance = 5 * time.Minute

// Service applies payment events.
type Service struct {
	pool      *pgxpool.Pool
	lifecycle *lifecycle.Service
	signup    *signup.Service
	clock     clock.Clock
	logger    *slog.Logger
	secret    []byte
}

// Deps are what the billing service is built from.
type Deps struct {
	Pool *pgxpool.Pool
	// Lifecycle upgrades a paid organization's trial; Signup activates a
	// paid sign-up's plan.
	Lifecycle *lifecycle.Service
	Signup    *signup.Service
	Clock     clock.Clock
	Logger    *slog.Logger
	// CallbackSecret verifies callbacks (empty: callbacks are refused).
	CallbackSecret string
}

// New returns the billing service.
func New(d Deps) *Service {
	return &Service{
		pool: d.Pool, lifecycle: d.Lifecycle, signup: d.Signup, clock: d.Clock, logger: d.Logger,
		secret: []byte(d.CallbackSecret),
	}
}

// HandleCallback verifies a callback's signature header against its raw
// body, then applies the event it carries.
func (s *Service) HandleCallback(ctx context.Context, sigHeader string, raw []byte) (Outcome, error) {
	if len(s.secret) == 0 {
		return "", apperr.Errorf(apperr.Unavailable, "Payment callbacks are not configured (billing.callback_secret)")
	}
	if err := signature.Verify(s.secret, sigHeader, raw, s.clock.Now(), Tolerance); err != nil {
		s.logger.WarnContext(ctx, "payment callback refused", "reason", err)
		return "", apperr.Errorf(apperr.Unauthorized, "Invalid signature: %v", err)
	}
	// Checked as every request body is: a NUL in a string would reach
	// Postgres, which refuses it.
	if err := wire.CheckJSON(raw, "body"); err != nil {
		return "", err
	}
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return "", apperr.InvalidField("body", "callback body is not a payment event")
	}
	return s.Apply(ctx, ev, raw)
}

// Apply records ev and applies it, in one transaction, once per event id.
func (s *Service) Apply(ctx context.Context, ev Event, raw json.RawMessage) (Outcome, error) {
	if ev.ID == "" {
		return "", apperr.InvalidField("id", "id is required")
	}
	if ev.Type == TypePaymentSucceeded && (ev.UserID == nil) == (ev.OrganizationID == nil) {
		return "", apperr.InvalidField("userId", "payment.succeeded needs exactly one of userId and organizationId")
	}
	var outcome Outcome
	var upgrade lifecycle.UpgradedOrganization
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		outcome, upgrade = Ignored, lifecycle.UpgradedOrganization{} // a retried transaction starts over
		q := store.New(tx)
		fresh, err := q.InsertPaymentEvent(ctx, ev.ID, ev.Type, raw, s.clock.Now())
		if err != nil {
			return err
		}
		if !fresh {
			outcome = Duplicate
			return nil
		}
		if ev.Type != TypePaymentSucceeded {
			return nil
		}
		cause := domain.PaymentCause(ev.ID)
		if ev.UserID != nil {
			activated, err := s.signup.ActivatePlanTx(ctx, tx, *ev.UserID)
			if err != nil {
				return err
			}
			if activated {
				outcome = Applied
			}
			return nil
		}
		upgrade, err = s.lifecycle.UpgradeOrganizationTx(ctx, tx, *ev.OrganizationID, domain.System, domain.PathPayment, cause)
		if apperr.CodeOf(err) == apperr.Conflict {
			// Paid for a deleted trial: nothing to upgrade; an operator
			// restores the organization first. Recorded, not retried.
			s.logger.WarnContext(ctx, "payment for a deleted trial", "organization_id", *ev.OrganizationID, "payment_event", ev.ID)
			return nil
		}
		if err != nil {
			return fmt.Errorf("upgrading organization %d: %w", *ev.OrganizationID, err)
		}
		if upgrade.Upgraded {
			outcome = Applied
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	upgrade.Committed(ctx)
	s.logger.InfoContext(ctx, "payment event", "payment_event", ev.ID, "type", ev.Type, "outcome", outcome)
	return outcome, nil
}
