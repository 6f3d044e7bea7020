package store

import (
	"context"
	"fmt"
	"time"
)

// RevokeToken refuses the JWT with id jti from now until it expires, and
// prunes the tokens that have expired by now: none of them can be used
// again anyway.
func (q *Queries) RevokeToken(ctx context.Context, jti string, expires, now time.Time) error {
	if _, err := q.db.Exec(ctx, `
		WITH pruned AS (DELETE FROM revoked_tokens WHERE expires_at < $3)
		INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`,
		jti, expires, now); err != nil {
		return fmt.Errorf("revoking token: %w", err)
	}
	return nil
}

// TokenRevoked reports whether the JWT with id jti was revoked.
func (q *Queries) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	var revoked bool
	if err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)`, jti).Scan(&revoked); err != nil {
		return false, fmt.Errorf("checking token revocation: %w", err)
	}
	return revoked, nil
}
