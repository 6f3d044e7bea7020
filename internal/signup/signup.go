// Package signup is every public sign-up, with its rules, from the form to
// the account: the enterprise-trial sign-up (a new user and their
// self-service trial, started by the lifecycle in the sign-up's
// transaction), the Professional one (a user awaiting payment and a first
// project), the e-mail activation codes both send, the activation of a paid
// plan, and the removal of sign-ups whose payment never came.
//
// What reaches this package has been decoded by the HTTP edge; what it
// checks (Validate) is the sign-up's own rules. Turnstile and the redirect
// stay at the edge, which knows the client and the request.
package signup

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
)

// Service signs users up.
type Service struct {
	pool      *pgxpool.Pool
	clock     clock.Clock
	codes     *Codes
	lifecycle *lifecycle.Service
	passwords *accounts.Passwords
	logger    *slog.Logger
}

// Deps are what the sign-up service is built from.
type Deps struct {
	Pool  *pgxpool.Pool
	Clock clock.Clock
	// Codes sends activation codes; the lifecycle sends them too, when a
	// trial request changes an address, so both share one.
	Codes *Codes
	// Lifecycle starts the enterprise sign-up's trial.
	Lifecycle *lifecycle.Service
	// Passwords hashes the new users' passwords.
	Passwords *accounts.Passwords
	Logger    *slog.Logger
}

// New returns the sign-up service.
func New(d Deps) *Service {
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{pool: d.Pool, clock: d.Clock, codes: d.Codes, lifecycle: d.Lifecycle, passwords: d.Passwords, logger: logger}
}

// HashPassword checks a new user's password against the contract's rule and
// hashes it, in one of the process's password slots. A sign-up hashes last,
// once every cheaper check has passed.
func (s *Service) HashPassword(ctx context.Context, password string) (string, error) {
	return s.passwords.Hash(ctx, password)
}

// now is the clock's time as stored: UTC, whole milliseconds, as the
// lifecycle stores its own.
func (s *Service) now() time.Time { return domain.Instant(s.clock.Now()) }
