// Package accounts owns users and their credentials: creating administrators,
// issuing and revoking API keys, and telling who a key belongs to.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
)

// KeyPrefix starts every API key, as Edge Impulse's do.
const KeyPrefix = "ei_"

// keyRandomBytes of entropy make a key: 64 hex characters after the prefix.
const keyRandomBytes = 32

// displayPrefixLen characters of a key are kept to recognise it in listings.
const displayPrefixLen = len(KeyPrefix) + 8

// MinPasswordLength is the contract's minimum password length.
const MinPasswordLength = 8

// Service manages accounts.
type Service struct {
	pool      *pgxpool.Pool
	clock     clock.Clock
	passwords *Passwords
}

// New returns the accounts service, hashing new passwords with pw.
func New(pool *pgxpool.Pool, clk clock.Clock, pw *Passwords) *Service {
	return &Service{pool: pool, clock: clk, passwords: pw}
}

// CreateAdmin creates an admin, or promotes the existing user of that
// username, and issues a new API key for them. An empty password leaves the
// user without one (or keeps their current one when promoting).
func (s *Service) CreateAdmin(ctx context.Context, username, email, password string) (domain.User, string, error) {
	username, email = strings.TrimSpace(username), strings.TrimSpace(email)
	if err := CheckUsername(username); err != nil {
		return domain.User{}, "", err
	}
	if email != "" {
		if err := domain.CheckEmail("email", email); err != nil {
			return domain.User{}, "", err
		}
	}
	var hash *string
	if password != "" {
		h, err := s.passwords.Hash(ctx, password)
		if err != nil {
			return domain.User{}, "", err
		}
		hash = &h
	}

	var user domain.User
	var key string
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		now := s.clock.Now()
		row, err := q.UserByUsername(ctx, username)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if email == "" {
				return apperr.InvalidField("email", "email is required to create a user")
			}
			row, err = q.InsertUser(ctx, store.InsertUserParams{
				Username: username, Email: email, Name: username, PasswordHash: hash, IsAdmin: true, Now: now,
			})
			if err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("looking up user %s: %w", username, err)
		default:
			if err := q.PromoteAdmin(ctx, row.ID, hash, now); err != nil {
				return err
			}
			row.IsAdmin = true
		}
		user = row.User
		key, err = issueKey(ctx, q, row.ID, "created by users create-admin", now)
		return err
	})
	if err != nil {
		return domain.User{}, "", err
	}
	return user, key, nil
}

// RevokeTokens invalidates every JWT issued so far to the user with that
// username; their API keys are left alone (apikeys revoke is theirs). The
// user's next login gets a token that works.
func (s *Service) RevokeTokens(ctx context.Context, username string) (domain.User, error) {
	q := store.New(s.pool)
	u, err := userByUsername(ctx, q, username)
	if err != nil {
		return domain.User{}, err
	}
	if err := q.BumpTokenVersion(ctx, u.ID); err != nil {
		return domain.User{}, err
	}
	return u.User, nil
}

// CreateAPIKey issues a new API key for the user and returns it; only its
// hash is stored, so this is the one time it can be seen.
func (s *Service) CreateAPIKey(ctx context.Context, username, name string) (string, error) {
	var key string
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		u, err := userByUsername(ctx, q, username)
		if err != nil {
			return err
		}
		key, err = issueKey(ctx, q, u.ID, name, s.clock.Now())
		return err
	})
	return key, err
}

// UserByUsername returns the user with that username (any case), or a
// NotFound error.
func (s *Service) UserByUsername(ctx context.Context, username string) (domain.User, error) {
	u, err := userByUsername(ctx, store.New(s.pool), username)
	if err != nil {
		return domain.User{}, err
	}
	return u.User, nil
}

// ListAPIKeys returns the user's keys (prefixes only), newest first.
func (s *Service) ListAPIKeys(ctx context.Context, username string) ([]store.APIKey, error) {
	q := store.New(s.pool)
	u, err := userByUsername(ctx, q, username)
	if err != nil {
		return nil, err
	}
	return q.APIKeysOfUser(ctx, u.ID)
}

// RevokeAPIKey revokes one of the user's keys, named by its id or its
// display prefix.
func (s *Service) RevokeAPIKey(ctx context.Context, username, idOrPrefix string) error {
	q := store.New(s.pool)
	u, err := userByUsername(ctx, q, username)
	if err != nil {
		return err
	}
	id, _ := strconv.ParseInt(idOrPrefix, 10, 64) // 0 matches no key
	n, err := q.RevokeAPIKey(ctx, u.ID, id, idOrPrefix, s.clock.Now())
	if err != nil {
		return err
	}
	if n == 0 {
		return apperr.Errorf(apperr.NotFound, "user %s has no active API key %s", username, idOrPrefix)
	}
	return nil
}

// AuthenticateAPIKey returns the owner of key, or an Unauthorized error when
// the key is malformed, unknown or revoked.
func (s *Service) AuthenticateAPIKey(ctx context.Context, key string) (domain.User, error) {
	if !wellFormed(key) {
		return domain.User{}, apperr.Errorf(apperr.Unauthorized, "Invalid API key")
	}
	u, err := store.New(s.pool).UserByAPIKeyHash(ctx, hashKey(key))
	if errors.Is(err, store.ErrNotFound) {
		return domain.User{}, apperr.Errorf(apperr.Unauthorized, "Invalid API key")
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("looking up api key: %w", err)
	}
	return u.User, nil
}

func userByUsername(ctx context.Context, q *store.Queries, username string) (store.Account, error) {
	u, err := q.UserByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, apperr.Errorf(apperr.NotFound, "no user named %s", username)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("looking up user %s: %w", username, err)
	}
	return u, nil
}

func issueKey(ctx context.Context, q *store.Queries, userID int64, name string, now time.Time) (string, error) {
	key, err := newKey()
	if err != nil {
		return "", err
	}
	if _, err := q.InsertAPIKey(ctx, userID, name, hashKey(key), key[:displayPrefixLen], now); err != nil {
		return "", err
	}
	return key, nil
}

// wellFormed rejects keys that could never have been issued before touching
// the database: the prefix, then at least 32 hex or base62 characters.
func wellFormed(key string) bool {
	rest, ok := strings.CutPrefix(key, KeyPrefix)
	if !ok || len(rest) < 32 || len(rest) > 128 {
		return false
	}
	for _, c := range rest {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// hashKey is SHA-256: a key has 256 bits of entropy, so a slow password hash
// would add cost to every request and no protection.
func hashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

func newKey() (string, error) {
	b := make([]byte, keyRandomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating api key: %w", err)
	}
	return KeyPrefix + hex.EncodeToString(b), nil
}
