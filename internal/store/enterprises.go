package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// InsertEnterprise creates an organization's enterprise and returns its
// public id.
func (q *Queries) InsertEnterprise(ctx context.Context, orgID, userID int64, thirdParty json.RawMessage, now time.Time) (string, error) {
	var publicID string
	err := q.db.QueryRow(ctx, `
		INSERT INTO enterprises (organization_id, user_id, third_party_identifiers, created_at)
		VALUES ($1, $2, $3, $4) RETURNING public_id`, orgID, userID, thirdParty, now).Scan(&publicID)
	if err != nil {
		return "", fmt.Errorf("inserting enterprise: %w", err)
	}
	return publicID, nil
}
