package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
)

// Tokens logs users in and issues and checks their JWTs: HS256 only, with a
// fixed issuer and an expiry, a per-user version that revokes them all, and
// a per-token id (jti) that a logout revokes alone.
type Tokens struct {
	pool      *pgxpool.Pool
	clock     clock.Clock
	cfg       config.Auth
	passwords *Passwords
}

// NewTokens returns the token service, checking passwords with pw.
func NewTokens(pool *pgxpool.Pool, clk clock.Clock, cfg config.Auth, pw *Passwords) *Tokens {
	return &Tokens{pool: pool, clock: clk, cfg: cfg, passwords: pw}
}

// claims are a trialsd JWT's claims: the registered ones with the user's
// token version.
type claims struct {
	jwt.RegisteredClaims
	Version int32 `json:"ver"`
}

var errBadLogin = apperr.Errorf(apperr.Unauthorized, "Invalid username or password")

// LoginAttempt is a login looked up and not yet checked: the user it
// names, if any. The API limits attempts per account between the lookup and
// the check, so the user is read once.
type LoginAttempt struct {
	login string
	user  store.Account
	found bool
}

// FindLogin looks up the user a username (or e-mail) names, ignoring case.
// A name longer than any stored one (domain.MaxFieldLength) is refused
// before it is looked up or becomes a rate limit's key: a megabyte of name
// would otherwise be held in memory per attempt.
func (t *Tokens) FindLogin(ctx context.Context, login string) (LoginAttempt, error) {
	if len(login) > domain.MaxFieldLength {
		return LoginAttempt{}, apperr.InvalidField("username", "username may be at most %d characters", domain.MaxFieldLength)
	}
	u, err := store.New(t.pool).UserByLogin(ctx, login)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return LoginAttempt{}, fmt.Errorf("looking up login: %w", err)
	}
	return LoginAttempt{login: login, user: u, found: err == nil}, nil
}

// AccountKey names the account the login names, for limiting attempts per
// account: the user's id however the login spells them (username or
// e-mail, in any case), or the login itself, folded, when no user has it.
func (a LoginAttempt) AccountKey() string {
	if a.found {
		return "user:" + strconv.FormatInt(a.user.ID, 10)
	}
	return "name:" + strings.ToLower(a.login)
}

// Login checks a username (or e-mail) and password and returns the user
// with a new JWT: FindLogin, then Check.
func (t *Tokens) Login(ctx context.Context, login, password string) (domain.User, string, error) {
	a, err := t.FindLogin(ctx, login)
	if err != nil {
		return domain.User{}, "", err
	}
	return t.Check(ctx, a, password)
}

// Check checks the attempt's password and returns its user with a new JWT.
// A user without a password cannot log in, not even with an empty one; an
// unknown login costs what a wrong password does.
func (t *Tokens) Check(ctx context.Context, a LoginAttempt, password string) (domain.User, string, error) {
	var hash *string
	if a.found {
		hash = a.user.PasswordHash
	}
	ok, err := t.passwords.compare(ctx, password, hash)
	if err != nil {
		return domain.User{}, "", fmt.Errorf("checking password: %w", err)
	}
	if !ok || !a.found || a.user.PasswordHash == nil || password == "" {
		return domain.User{}, "", errBadLogin
	}
	token, err := t.Issue(a.user.User, a.user.TokenVersion)
	if err != nil {
		return domain.User{}, "", err
	}
	return a.user.User, token, nil
}

// Issue signs a JWT for the user at the given token version.
func (t *Tokens) Issue(u domain.User, version int32) (string, error) {
	now := t.clock.Now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        base64.RawURLEncoding.EncodeToString(jti),
			Issuer:    t.cfg.JWTIssuer,
			Subject:   strconv.FormatInt(u.ID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.cfg.JWTTTL)),
		},
		Version: version,
	})
	signed, err := token.SignedString([]byte(t.cfg.JWTSecret))
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return signed, nil
}

// TTL is how long an issued token lives.
func (t *Tokens) TTL() time.Duration { return t.cfg.JWTTTL }

var errBadToken = apperr.Errorf(apperr.Unauthorized, "Invalid or expired token")

// Authenticate returns the user a JWT was issued to, or an Unauthorized
// error for any other algorithm (none included), a bad signature, another
// issuer, an expired token, or one revoked since (all the user's, or this
// one by a logout).
func (t *Tokens) Authenticate(ctx context.Context, token string) (domain.User, error) {
	c, err := t.parse(token)
	if err != nil {
		return domain.User{}, err
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil {
		return domain.User{}, errBadToken
	}
	u, revoked, err := store.New(t.pool).TokenUser(ctx, id, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return domain.User{}, errBadToken
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("looking up token's user: %w", err)
	}
	if u.TokenVersion != c.Version || revoked {
		return domain.User{}, errBadToken
	}
	return u.User, nil
}

// Revoke makes a JWT stop working everywhere (the denylist is in the
// database, so every replica refuses it) until it expires; the user's other
// tokens keep working. A token that does not work already is left alone.
func (t *Tokens) Revoke(ctx context.Context, token string) error {
	c, err := t.parse(token)
	if err != nil || c.ID == "" {
		return nil
	}
	return store.New(t.pool).RevokeToken(ctx, c.ID, c.ExpiresAt.Time, t.clock.Now())
}

// parse checks a JWT's algorithm, signature, issuer and expiry and returns
// its claims.
func (t *Tokens) parse(token string) (claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return []byte(t.cfg.JWTSecret), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(t.cfg.JWTIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.clock.Now),
	)
	if err != nil {
		return claims{}, errBadToken
	}
	return c, nil
}
