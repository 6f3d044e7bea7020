// Package signup creates Professional-plan users and verifies their e-mail:
// a sign-up makes the user (plan awaiting payment, e-mail unverified) and
// their first project, and sends an activation code through the outbox, all
// in one transaction; the code, stored only as a hash, activates the user.
package signup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
)

// CodeTTL is how long an activation code works.
const CodeTTL = 24 * time.Hour

// Service signs Professional users up.
type Service struct {
	pool   *pgxpool.Pool
	clock  clock.Clock
	outbox *outbox.Writer
}

// New returns the sign-up service.
func New(pool *pgxpool.Pool, clk clock.Clock, writer *outbox.Writer) *Service {
	return &Service{pool: pool, clock: clk, outbox: writer}
}

// ProUser is a Professional sign-up.
type ProUser struct {
	Username, Email, Name string
	PasswordHash          *string
	JobTitle, CompanyName *string
	// ProjectName names the first project; empty derives it from the username.
	ProjectName string
}

// Created identifies what a sign-up created.
type Created struct {
	UserID, ProjectID int64
}

// CreateProUser creates the user (plan professional, awaiting payment,
// e-mail unverified), their first project, and sends the activation code.
func (s *Service) CreateProUser(ctx context.Context, u ProUser) (Created, error) {
	var out Created
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		now := s.clock.Now()
		row, err := q.InsertUser(ctx, store.InsertUserParams{
			Username: u.Username, Email: u.Email, Name: u.Name, PasswordHash: u.PasswordHash,
			JobTitle: u.JobTitle, CompanyName: u.CompanyName, Plan: "professional", PlanState: "pending_payment", Now: now,
		})
		switch store.UniqueViolation(err) {
		case store.UsersUsernameKey:
			return apperr.Errorf(apperr.Conflict, "Username is already taken")
		case store.UsersEmailKey:
			return apperr.Errorf(apperr.Conflict, "An account with this e-mail address already exists")
		}
		if err != nil {
			return err
		}
		name := u.ProjectName
		if name == "" {
			name = u.Username + "-project-1"
		}
		projectID, err := q.InsertProject(ctx, 0, row.ID, name, now)
		if err != nil {
			return err
		}
		out = Created{UserID: row.ID, ProjectID: projectID}
		return s.SendCodeTx(ctx, tx, row)
	})
	return out, err
}

// RequestActivation sends a new activation code, replacing the last one.
// A verified user gets nothing (and no error).
func (s *Service) RequestActivation(ctx context.Context, userID int64) error {
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		if _, _, verified, err := q.ActivationCode(ctx, userID); err != nil || verified {
			return err
		}
		u, err := q.UserByID(ctx, userID)
		if err != nil {
			return err
		}
		return s.SendCodeTx(ctx, tx, u)
	})
}

// Activate verifies the user's e-mail with code. A wrong or expired code is
// Invalid; activating twice is harmless.
func (s *Service) Activate(ctx context.Context, userID int64, code string) error {
	return store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		hash, expires, verified, err := q.ActivationCode(ctx, userID)
		if err != nil || verified {
			return err
		}
		now := s.clock.Now()
		sum := sha256.Sum256([]byte(code))
		if hash == nil || expires == nil || now.After(*expires) || subtle.ConstantTimeCompare(hash, sum[:]) != 1 {
			return apperr.InvalidField("code", "The activation code is wrong or has expired; request a new one")
		}
		return q.MarkEmailVerified(ctx, userID, now)
	})
}

// SendCodeTx sends u a new activation code for their e-mail address, in
// tx, replacing the last one: the e-mail goes through the outbox, so it
// leaves only if tx commits.
func (s *Service) SendCodeTx(ctx context.Context, tx pgx.Tx, u store.User) error {
	code, err := newCode()
	if err != nil {
		return err
	}
	now := s.clock.Now()
	sum := sha256.Sum256([]byte(code))
	if err := store.New(tx).SetActivationCode(ctx, u.ID, sum[:], now.Add(CodeTTL)); err != nil {
		return err
	}
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("generating e-mail id: %w", err)
	}
	// Each code is its own message: an id from the clock could repeat (two
	// requests in one instant) and the outbox would drop the second e-mail.
	return s.outbox.EnqueueEmail(ctx, tx, fmt.Sprintf("activation:%d:%x", u.ID, nonce), outbox.Email{
		To:      u.Email,
		Subject: "Your activation code",
		Body: fmt.Sprintf("Hello %s,\n\nyour activation code is %s. It works for %s.\n\nIf you did not sign up, ignore this e-mail.\n",
			u.Name, code, CodeTTL),
	}, now)
}

// newCode is six random digits.
func newCode() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating activation code: %w", err)
	}
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(b[:])%1_000_000), nil
}
