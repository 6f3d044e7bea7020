package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
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
	n, err := q.gen.ClaimIdempotencyKey(ctx, dbsqlc.ClaimIdempotencyKeyParams{
		OrganizationID: orgID, Key: key, RequestSha256: sha, CreatedAt: now})
	if err != nil {
		return false, IdempotencyRecord{}, fmt.Errorf("claiming idempotency key: %w", err)
	}
	if n == 1 {
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
	r, err := q.gen.IdempotencyRecord(ctx, dbsqlc.IdempotencyRecordParams{OrganizationID: orgID, Key: key})
	if errors.Is(err, pgx.ErrNoRows) {
		return IdempotencyRecord{}, ErrNotFound
	}
	if err != nil {
		return IdempotencyRecord{}, fmt.Errorf("reading idempotency record: %w", err)
	}
	return IdempotencyRecord{RequestSHA256: r.RequestSha256, Status: int(r.ResponseStatus), Body: r.ResponseBody}, nil
}

// CompleteIdempotencyKey stores the answer of the request that claimed the key.
func (q *Queries) CompleteIdempotencyKey(ctx context.Context, orgID int64, key string, status int, body json.RawMessage) error {
	err := q.gen.CompleteIdempotencyKey(ctx, dbsqlc.CompleteIdempotencyKeyParams{
		OrganizationID: orgID, Key: key, ResponseStatus: int32(status), ResponseBody: body})
	if err != nil {
		return fmt.Errorf("storing idempotent answer: %w", err)
	}
	return nil
}
