package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// IdempotencyRecord is the first answer given to a request key.
type IdempotencyRecord struct {
	RequestSHA256 []byte
	Status        int
	Body          json.RawMessage
}

// ClaimIdempotencyKey claims (organization, key) for a request with this
// body hash, in the caller's transaction. When another request holds it, it
// waits for that transaction, then returns the record it left (claimed
// false).
func (q *Queries) ClaimIdempotencyKey(ctx context.Context, orgID int64, key string, sha []byte, now time.Time) (claimed bool, existing IdempotencyRecord, err error) {
	tag, err := q.db.Exec(ctx, `
		INSERT INTO idempotency_records (organization_id, key, request_sha256, response_status, response_body, created_at)
		VALUES ($1, $2, $3, 0, '{}', $4) ON CONFLICT (organization_id, key) DO NOTHING`, orgID, key, sha, now)
	if err != nil {
		return false, IdempotencyRecord{}, fmt.Errorf("claiming idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, IdempotencyRecord{}, nil
	}
	existing, err = q.IdempotencyRecord(ctx, orgID, key)
	if errors.Is(err, ErrNotFound) {
		return false, IdempotencyRecord{}, fmt.Errorf("idempotency key vanished while claiming it")
	}
	return false, existing, err
}

// IdempotencyRecord returns the record of (organization, key), or
// ErrNotFound.
func (q *Queries) IdempotencyRecord(ctx context.Context, orgID int64, key string) (IdempotencyRecord, error) {
	var r IdempotencyRecord
	err := q.db.QueryRow(ctx, `
		SELECT request_sha256, response_status, response_body FROM idempotency_records
		WHERE organization_id = $1 AND key = $2`, orgID, key).Scan(&r.RequestSHA256, &r.Status, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return IdempotencyRecord{}, ErrNotFound
	}
	if err != nil {
		return IdempotencyRecord{}, fmt.Errorf("reading idempotency record: %w", err)
	}
	return r, nil
}

// CompleteIdempotencyKey stores the answer of the request that claimed the key.
func (q *Queries) CompleteIdempotencyKey(ctx context.Context, orgID int64, key string, status int, body json.RawMessage) error {
	_, err := q.db.Exec(ctx, `
		UPDATE idempotency_records SET response_status = $3, response_body = $4
		WHERE organization_id = $1 AND key = $2`, orgID, key, status, body)
	if err != nil {
		return fmt.Errorf("storing idempotent answer: %w", err)
	}
	return nil
}
