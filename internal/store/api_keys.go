package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
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
	id, err := q.gen.InsertAPIKey(ctx, dbsqlc.InsertAPIKeyParams{
		UserID: userID, Name: name, KeyHash: hash, Prefix: prefix, CreatedAt: now})
	if err != nil {
		return APIKey{}, fmt.Errorf("inserting api key: %w", err)
	}
	k.ID = id
	return k, nil
}

// UserByAPIKeyHash returns the owner of the unrevoked key with this hash.
func (q *Queries) UserByAPIKeyHash(ctx context.Context, hash []byte) (Account, error) {
	r, err := q.gen.UserByAPIKeyHash(ctx, hash)
	return mapRow(accountOf)(r.User, err)
}

// APIKeysOfUser lists a user's keys, newest first.
func (q *Queries) APIKeysOfUser(ctx context.Context, userID int64) ([]APIKey, error) {
	rows, err := q.gen.APIKeysOfUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("listing api keys: %w", err)
	}
	keys := make([]APIKey, len(rows))
	for i, r := range rows {
		keys[i] = APIKey(r)
	}
	return keys, nil
}

// RevokeAPIKey revokes the user's key with this id or display prefix and
// reports how many keys it revoked (0 when none matched or it was revoked).
func (q *Queries) RevokeAPIKey(ctx context.Context, userID int64, id int64, prefix string, now time.Time) (int64, error) {
	n, err := q.gen.RevokeAPIKey(ctx, dbsqlc.RevokeAPIKeyParams{UserID: userID, ID: id, Prefix: prefix, RevokedAt: now})
	if err != nil {
		return 0, fmt.Errorf("revoking api key: %w", err)
	}
	return n, nil
}
