package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is a row of api_keys. The key itself is never stored.
type APIKey struct {
	ID        int64
	UserID    int64
	Name      string
	Prefix    string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// InsertAPIKey stores the hash and display prefix of a new key.
func (q *Queries) InsertAPIKey(ctx context.Context, userID int64, name string, hash []byte, prefix string, now time.Time) (APIKey, error) {
	k := APIKey{UserID: userID, Name: name, Prefix: prefix, CreatedAt: now}
	err := q.db.QueryRow(ctx, `
		INSERT INTO api_keys (user_id, name, key_hash, prefix, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, userID, name, hash, prefix, now).Scan(&k.ID)
	if err != nil {
		return APIKey{}, fmt.Errorf("inserting api key: %w", err)
	}
	return k, nil
}

// UserByAPIKeyHash returns the owner of the unrevoked key with this hash.
func (q *Queries) UserByAPIKeyHash(ctx context.Context, hash []byte) (Account, error) {
	return scanUser(q.db.QueryRow(ctx, `
		SELECT `+prefixed("u.", userColumns)+`
		FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, hash))
}

// APIKeysOfUser lists a user's keys, newest first.
func (q *Queries) APIKeysOfUser(ctx context.Context, userID int64) ([]APIKey, error) {
	rows, err := q.db.Query(ctx, `
		SELECT id, user_id, name, prefix, created_at, revoked_at
		FROM api_keys WHERE user_id = $1 ORDER BY id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (APIKey, error) {
		var k APIKey
		err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.CreatedAt, &k.RevokedAt)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes the user's key with this id or display prefix and
// reports how many keys it revoked (0 when none matched or it was revoked).
func (q *Queries) RevokeAPIKey(ctx context.Context, userID int64, id int64, prefix string, now time.Time) (int64, error) {
	tag, err := q.db.Exec(ctx, `
		UPDATE api_keys SET revoked_at = $4
		WHERE user_id = $1 AND (id = $2 OR prefix = $3) AND revoked_at IS NULL`, userID, id, prefix, now)
	if err != nil {
		return 0, fmt.Errorf("revoking api key: %w", err)
	}
	return tag.RowsAffected(), nil
}
