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

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
)

// CodeTTL is how long an activation code works.
const CodeTTL = 24 * time.Hour

// Codes sends the six-digit codes that verify an e-mail address. A code is
// stored only as a hash, and each goes out through the outbox, so it
// leaves only if the transaction that made it commits.
type Codes struct {
	clock  clock.Clock
	outbox *outbox.Writer
}

// NewCodes returns the activation codes, sent through writer.
func NewCodes(clk clock.Clock, writer *outbox.Writer) *Codes {
	return &Codes{clock: clk, outbox: writer}
}

// SendCodeTx sends u a new activation code for their e-mail address, in
// tx, replacing the last one.
func (c *Codes) SendCodeTx(ctx context.Context, tx pgx.Tx, u domain.User) error {
	code, err := newCode()
	if err != nil {
		return err
	}
	now := c.clock.Now()
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
	return c.outbox.EnqueueEmail(ctx, tx, fmt.Sprintf("activation:%d:%x", u.ID, nonce), outbox.Email{
		To:      u.Email,
		Subject: "Your activation code",
		Body: fmt.Sprintf("Hello %s,\n\nyour activation code is %s. It works for %s.\n\nIf you did not sign up, ignore this e-mail.\n",
			u.Name, code, CodeTTL),
	}, now)
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
		return s.codes.SendCodeTx(ctx, tx, u.User)
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

// newCode is six random digits.
func newCode() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating activation code: %w", err)
	}
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(b[:])%1_000_000), nil
}
