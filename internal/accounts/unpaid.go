package accounts

import (
	"context"
	"time"

	"github.com/trialsd/trialsd/internal/store"
)

// unpaidBatch bounds one delete of the unpaid sign-up sweep.
const unpaidBatch = 500

// RemoveUnpaidSignups removes Professional sign-ups whose payment has not
// arrived within ttl of signing up, with their projects and keys, and
// returns how many it removed. Run periodically, it is the cleanup of
// billing.pending_payment_ttl.
func (s *Service) RemoveUnpaidSignups(ctx context.Context, ttl time.Duration) (int, error) {
	cutoff := s.clock.Now().Add(-ttl)
	removed := 0
	for {
		ids, err := store.New(s.pool).DeleteUnpaidSignups(ctx, cutoff, unpaidBatch)
		removed += len(ids)
		if err != nil || len(ids) < unpaidBatch {
			return removed, err
		}
	}
}
