package accounts

import (
	"context"
	"fmt"
	"runtime"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"

	"github.com/trialsd/trialsd/internal/apperr"
)

// owaspParams are OWASP's first argon2id recommendation (19 MiB, two
// passes, one lane). The library's defaults take 64 MiB per hash, which
// let a burst of logins claim gigabytes (docs/reliability.md has the
// daemon's memory before and after). A hash records its own parameters, so
// hashes made with the old ones still verify.
var owaspParams = argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// owaspDummyHash is the dummy hash of owaspParams. It is a constant (a test
// holds it to the parameters) so that starting the daemon costs no hash.
const owaspDummyHash = "$argon2id$v=19$m=19456,t=2,p=1$eQlnGWdc+tRzWwr2kYdVJg$bdfMPYcR0QWFGtvszdyhBK9+STpn/i7AViuhD7nlc6A"

// dummyPassword is the password of every dummy hash.
const dummyPassword = "no user has this password"

// Passwords hashes new passwords and checks logins against their hashes,
// with one set of argon2id parameters, one at a time per core.
//
// Each hash or check takes the parameters' memory and a core for its whole
// run, so more at once than there are cores only queue inside the runtime
// while each holds its memory. A flood of sign-ups or logins waits for a
// slot instead, holding none. The daemon builds one Passwords, so the
// slots bound the whole process.
type Passwords struct {
	params argon2id.Params
	// dummy is compared against when no user matches, so a login for an
	// unknown name costs what a wrong password does and reveals nothing.
	dummy string
	slots chan struct{}
}

// NewPasswords returns the daemon's Passwords, with OWASP's parameters.
// Nothing in the configuration changes them.
func NewPasswords() *Passwords {
	return &Passwords{params: owaspParams, dummy: owaspDummyHash, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// NewTestPasswords returns a Passwords with argon2id's cheapest parameters
// (64 KiB, one pass): for the tests of what is not about hashing (rate
// limits, sign-up rules, auth), which under the race detector would
// otherwise spend minutes in argon2id. Its hashes are real argon2id hashes
// that any Passwords verifies. The daemon never builds one: only Go code
// can ask for it, no setting can.
func NewTestPasswords() *Passwords {
	p := owaspParams
	p.Memory, p.Iterations = 64, 1
	dummy, err := argon2id.CreateHash(dummyPassword, &p)
	if err != nil {
		panic(fmt.Sprintf("hashing the dummy password: %v", err)) // only a broken random source fails
	}
	return &Passwords{params: p, dummy: dummy, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// withSlot runs fn once a slot is free; a caller that goes away while it
// waits costs nothing more.
func withSlot[T any](ctx context.Context, p *Passwords, fn func() (T, error)) (T, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
	defer func() { <-p.slots }()
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

// Hash checks a new password against the contract's rule and returns its
// argon2id hash, once a slot is free.
func (p *Passwords) Hash(ctx context.Context, password string) (string, error) {
	if err := CheckPasswordRule(password); err != nil {
		return "", err
	}
	h, err := withSlot(ctx, p, func() (string, error) { return argon2id.CreateHash(password, &p.params) })
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return h, nil
}

// compare compares a password with a hash, or with the dummy hash when
// hash is nil (no such user, or one without a password), once a slot is
// free.
func (p *Passwords) compare(ctx context.Context, password string, hash *string) (bool, error) {
	h := p.dummy
	if hash != nil {
		h = *hash
	}
	return withSlot(ctx, p, func() (bool, error) { return argon2id.ComparePasswordAndHash(password, h) })
}
