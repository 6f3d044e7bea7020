package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// InsertPaymentEvent records a payment provider's event and reports whether
// it is new; a repeated event id is not recorded again.
func (q *Queries) InsertPaymentEvent(ctx context.Context, id, typ string, payload json.RawMessage, at time.Time) (bool, error) {
	tag, err := q.db.Exec(ctx, `
		INSERT INTO payment_events (id, type, payload, received_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, id, typ, payload, at)
	if err != nil {
		return false, fmt.Errorf("recording payment event %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
