package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// InsertPaymentEvent records a payment provider's event and reports whether
// it is new; a repeated event id is not recorded again.
func (q *Queries) InsertPaymentEvent(ctx context.Context, id, typ string, payload json.RawMessage, at time.Time) (bool, error) {
	n, err := q.gen.InsertPaymentEvent(ctx, dbsqlc.InsertPaymentEventParams{ID: id, Type: typ, Payload: payload, ReceivedAt: at})
	if err != nil {
		return false, fmt.Errorf("recording payment event %s: %w", id, err)
	}
	return n == 1, nil
}
