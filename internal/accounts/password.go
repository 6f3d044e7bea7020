package accounts

import (
	"context"
	"fmt"
	"runtime"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"

	"github.com/trialsd/trialsd/internal/apperr"
)

// passwordParams are OWASP's first argon2id recommendation (19 MiB, two
// passes, one lane). The library's defaults take 64 MiB per hash, which
// let a burst of logins claim gigabytes (docs/reliability.md has the
// daemon's memory before and after). A hash records its own parameters, so
// hashes made with the old ones still verify.
var passwordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// dummyHash is compared against when no user matches, so a login for an
// unknown name costs what a wrong password does and reveals nothing. It is a
// constant, made with passwordParams (a test holds them together), so that
// starting the daemon costs no hash.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$eQlnGWdc+tRzWwr2kYdVJg$bdfMPYcR0QWFGtvszdyhBK9+STpn/i7AViuhD7nlc6A"

// passwordSlots bounds the process's password work — hashing a new
// password (sign-ups, an admin's password) and checking one (logins) — to
// one per core. Each takes passwordParams' memory and a core for its whole
// run, so more at once than there are cores only queue inside the runtime
// while each holds its memory; a flood of sign-ups or logins waits here
// instead, holding none.
var passwordSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// withPasswordSlot runs fn once a slot is free; a caller that goes away
// while it waits costs nothing more.
func withPasswordSlot[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	select {
	case passwordSlots <- struct{}{}:
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
	defer func() { <-passwordSlots }()
	return fn()
}

// CheckPasswordRule checks a new password against the contract's rule,
// without the cost of hashing it: requests validate with it before any
// expensive step.
func CheckPasswordRule(password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return apperr.InvalidField("password", "password must be at least %d characters", MinPasswordLength)
	}
	return nil
}

// HashPassword checks a new password against the contract's rule and
// returns its argon2id hash, once a password slot is free.
func HashPassword(ctx context.Context, password string) (string, error) {
	if err := CheckPasswordRule(password); err != nil {
		return "", err
	}
	h, err := withPasswordSlot(ctx, func() (string, error) { return argon2id.CreateHash(password, passwordParams) })
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return h, nil
}

// comparePassword compares a password with a hash once a password slot is
// free.
func comparePassword(ctx context.Context, password, hash string) (bool, error) {
	return withPasswordSlot(ctx, func() (bool, error) { return argon2id.ComparePasswordAndHash(password, hash) })
}
