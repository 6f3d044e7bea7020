package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// InsertEnterprise creates an organization's enterprise and returns its
// public id.
func (q *Queries) InsertEnterprise(ctx context.Context, orgID, userID int64, thirdParty json.RawMessage, now time.Time) (string, error) {
	publicID, err := q.gen.InsertEnterprise(ctx, dbsqlc.InsertEnterpriseParams{
		OrganizationID: orgID, UserID: userID, ThirdPartyIdentifiers: thirdParty, CreatedAt: now})
	if err != nil {
		return "", fmt.Errorf("inserting enterprise: %w", err)
	}
	return publicID, nil
}
