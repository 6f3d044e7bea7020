package outbox

import (
	"context"
	"time"

	"github.com/trialsd/trialsd/internal/store"
)

// pruneBatch bounds one statement of PruneDelivered, so a first sweep of a
// big outbox holds no long lock and no long transaction.
const pruneBatch = 5000

// PruneDelivered deletes the messages delivered longer than retention ago,
// with their payloads and attempt logs, batch after batch, and returns how
// many; a failed or waiting message stays, however old. Retention 0 keeps
// everything.
func (d *Deliverer) PruneDelivered(ctx context.Context, retention time.Duration) (int, error) {
	if retention <= 0 {
		return 0, nil
	}
	before := d.clock.Now().Add(-retention)
	total := 0
	for {
		n, err := store.New(d.pool).DeleteDeliveredOutbox(ctx, before, pruneBatch)
		total += n
		if err != nil || n < pruneBatch {
			if total > 0 {
				d.logger.InfoContext(ctx, "delivered outbox messages deleted", "count", total, "delivered_before", before)
			}
			return total, err
		}
	}
}
