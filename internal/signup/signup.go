// Package signup is every public sign-up, with its rules, from the form to
// the account: the enterprise-trial sign-up (a new user and their
// self-service trial, started by the lifecycle in the sign-up's
// transaction), the Professional one (a user awaiting payment and a first
// project), the e-mail activation codes both send, the activation of a paid
// plan, and the removal of sign-ups whose payment never came.
//
// What reaches this package has been decoded by the HTTP edge. Each
// sign-up checks its own rules here, once, with its own policy (the
// free-mail domains come in through Deps), then runs the edge's
// checks (the redirect, and Turnstile, which knows the client), then hashes
// the password: cheapest first.
package signup

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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
	passwords Hasher
	// freeEmailDomains are refused by the enterprise sign-up.
	freeEmailDomains []string
	logger           *slog.Logger
}

// Hasher hashes a new user's password: *accounts.Passwords.
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
}

// EdgeCheck is what the edge checks of a sign-up that passed its rules,
// before its password is hashed: the redirect and that a person sent it
// (Turnstile), which only the edge can, knowing the request and its client.
type EdgeCheck func(ctx context.Context) error

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
	Passwords Hasher
	// FreeEmailDomains are the domains the enterprise sign-up refuses
	// (signup.free_email_domains): it is for companies.
	FreeEmailDomains []string
	Logger           *slog.Logger
}

// New returns the sign-up service.
func New(d Deps) *Service {
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{
		pool: d.Pool, clock: d.Clock, codes: d.Codes, lifecycle: d.Lifecycle, passwords: d.Passwords,
		freeEmailDomains: d.FreeEmailDomains, logger: logger,
	}
}

// admit runs a valid form's costly checks, in order: the edge's, then the
// password's hash (in one of the process's password slots), so that a flood
// of sign-ups with bad tokens costs neither memory nor cores. It returns
// the account to create.
func (s *Service) admit(ctx context.Context, f Form, edge EdgeCheck) (newUser, error) {
	if edge != nil {
		if err := edge(ctx); err != nil {
			return newUser{}, err
		}
	}
	u := newUser{Username: *f.Username, Email: *f.Email, Name: *f.Name}
	if !f.HasPassword() {
		return u, nil
	}
	h, err := s.passwords.Hash(ctx, *f.Password)
	if err != nil {
		return newUser{}, err
	}
	u.PasswordHash = &h
	return u, nil
}

// now is the clock's time as stored: UTC, whole milliseconds, as the
// lifecycle stores its own.
func (s *Service) now() time.Time { return domain.Instant(s.clock.Now()) }
