package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// RevokeToken refuses the JWT with id jti from now until it expires, and
// prunes the tokens that have expired by now: none of them can be used
// again anyway.
func (q *Queries) RevokeToken(ctx context.Context, jti string, expires, now time.Time) error {
	if err := q.gen.RevokeToken(ctx, dbsqlc.RevokeTokenParams{Jti: jti, ExpiresAt: expires, Now: now}); err != nil {
		return fmt.Errorf("revoking token: %w", err)
	}
	return nil
}

// TokenUser returns the user with id, as UserByID does, and whether the
// JWT with id jti was revoked, in one round trip: every request with a JWT
// asks both.
func (q *Queries) TokenUser(ctx context.Context, id int64, jti string) (Account, bool, error) {
	r, err := q.gen.TokenUser(ctx, dbsqlc.TokenUserParams{ID: id, Jti: jti})
	u, err := mapRow(accountOf)(r.User, err)
	return u, r.Revoked, err
}
