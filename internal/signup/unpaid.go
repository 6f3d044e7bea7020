package signup

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/store"
)

// unpaidBatch bounds one batch of the unpaid sign-up sweep.
const unpaidBatch = 500

// UnpaidSweep is what one sweep of unpaid sign-ups did.
type UnpaidSweep struct {
	// Removed counts the users deleted, with their projects and keys.
	Removed int
	// Kept are the users past their time who own more than their sign-up
	// (a trial, a membership, an enterprise), or whose delete the database
	// refused: they stay, and are logged.
	Kept []int64
}

// RemoveUnpaid removes Professional sign-ups whose payment has not
// arrived within ttl of signing up, with their projects and keys. Run
// periodically, it is the cleanup of billing.pending_payment_ttl.
//
// It removes only sign-ups that have nothing else: a user who owns a
// trial, belongs to an organization or holds an enterprise is kept (a trial
// leaves only through the lifecycle's purge), and so is one whose delete
// the database refuses for a reason of its own; neither stops the others.
// It walks the users due in order, so a kept one is passed over, not met
// again, within a sweep.
func (s *Service) RemoveUnpaid(ctx context.Context, ttl time.Duration) (UnpaidSweep, error) {
	cutoff := s.clock.Now().Add(-ttl)
	var sweep UnpaidSweep
	var afterCreated time.Time
	var afterID int64
	for {
		var batch []store.UnpaidSignup
		var removed int
		var kept []int64
		err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			batch, err = store.New(tx).UnpaidSignups(ctx, cutoff, afterCreated, afterID, unpaidBatch)
			if err != nil {
				return err
			}
			removed, kept, err = deleteUnpaid(ctx, tx, batch)
			return err
		})
		if err != nil {
			return sweep, err
		}
		sweep.Removed += removed
		sweep.Kept = append(sweep.Kept, kept...)
		if len(batch) < unpaidBatch {
			break
		}
		last := batch[len(batch)-1]
		afterCreated, afterID = last.CreatedAt, last.ID
	}
	if len(sweep.Kept) > 0 {
		slog.InfoContext(ctx, "unpaid sign-ups kept: they own a trial, a membership or an enterprise, or the database refused their delete",
			"kept", len(sweep.Kept), "user_ids", firstIDs(sweep.Kept, 20))
	}
	return sweep, nil
}

// deleteUnpaid deletes the sign-ups of batch that own nothing else, in tx,
// and returns how many it deleted and which users it kept. Only those are
// locked; a user who paid meanwhile, or whom another transaction holds, is
// passed by. Should the database refuse the delete (a reference made since
// the check), it deletes them one by one, each in a savepoint, keeping
// those it refuses.
func deleteUnpaid(ctx context.Context, tx pgx.Tx, batch []store.UnpaidSignup) (int, []int64, error) {
	var candidates, kept []int64
	for _, u := range batch {
		if u.Owns {
			kept = append(kept, u.ID)
		} else {
			candidates = append(candidates, u.ID)
		}
	}
	if len(candidates) == 0 {
		return 0, kept, nil
	}
	ids, err := store.New(tx).LockUnpaidSignups(ctx, candidates)
	if err != nil || len(ids) == 0 {
		return 0, kept, err
	}
	refused, err := inSavepoint(ctx, tx, func(q *store.Queries) error { return q.DeleteUsers(ctx, ids) })
	if err != nil || !refused {
		return len(ids), kept, err
	}
	removed := 0
	for _, id := range ids {
		refused, err := inSavepoint(ctx, tx, func(q *store.Queries) error { return q.DeleteUsers(ctx, []int64{id}) })
		switch {
		case err != nil:
			return removed, kept, err
		case refused:
			kept = append(kept, id)
		default:
			removed++
		}
	}
	return removed, kept, nil
}

// inSavepoint runs fn in a savepoint of tx and tells whether a foreign key
// refused what it did (the savepoint is then rolled back, and tx goes on).
func inSavepoint(ctx context.Context, tx pgx.Tx, fn func(*store.Queries) error) (refused bool, err error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("opening savepoint: %w", err)
	}
	if err := fn(store.New(sp)); err != nil {
		if store.ForeignKeyViolation(err) == "" {
			return false, err
		}
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return false, fmt.Errorf("rolling back savepoint: %w", rbErr)
		}
		return true, nil
	}
	if err := sp.Commit(ctx); err != nil {
		return false, fmt.Errorf("releasing savepoint: %w", err)
	}
	return false, nil
}

// firstIDs is at most n of ids, for a log line.
func firstIDs(ids []int64, n int) []int64 {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}
