package accounts

import (
	"fmt"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"

	"github.com/trialsd/trialsd/internal/apperr"
)

// passwordParams are OWASP's first argon2id recommendation (19 MiB, two
// passes, one lane). The library's defaults take 64 MiB per hash, which held
// a daemon's idle RSS above 80 MB from one start-up hash alone and let a
// burst of logins claim gigabytes. A hash records its own parameters, so
// hashes made with the old ones still verify.
var passwordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// dummyHash is compared against when no user matches, so a login for an
// unknown name costs what a wrong password does and reveals nothing. It is a
// constant, made with passwordParams (a test holds them together), so that
// starting the daemon costs no hash.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$eQlnGWdc+tRzWwr2kYdVJg$bdfMPYcR0QWFGtvszdyhBK9+STpn/i7AViuhD7nlc6A"

// HashPassword checks a new password against the contract's rule and
// returns its argon2id hash.
func HashPassword(password string) (string, error) {
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return "", apperr.InvalidField("password", "password must be at least %d characters", MinPasswordLength)
	}
	h, err := argon2id.CreateHash(password, passwordParams)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return h, nil
}
