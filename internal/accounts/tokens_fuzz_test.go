package accounts

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
)

// Any string presented as a JWT is refused (it cannot carry our signature)
// without a panic, and without reaching the database: tokens is built on
// no pool at all, so a token that got past the signature check would panic.
func FuzzAuthenticateJWT(f *testing.F) {
	secret := "fuzz-secret-fuzz-secret-fuzz-secret"
	valid, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "1", "iss": "trialsd", "exp": 9999999999}).SignedString([]byte("other-key"))
	for _, seed := range []string{"", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", valid, "....", "eyJ"} {
		f.Add(seed)
	}
	tokens := &Tokens{clock: clock.NewStub(time.Unix(1_800_000_000, 0)), cfg: config.Auth{JWTSecret: secret, JWTIssuer: "trialsd", JWTTTL: time.Hour}}
	f.Fuzz(func(t *testing.T, token string) {
		if _, err := tokens.Authenticate(context.Background(), token); err == nil {
			t.Fatalf("accepted %q", token)
		}
	})
}
