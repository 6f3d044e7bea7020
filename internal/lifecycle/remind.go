package lifecycle

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/store"
)

// Remind records a trial.will_end reminder `before` ahead of an active
// trial's expiry. Rescheduling moves it (a new generation), upgrading or
// expiring the trial drops it, and a retried job never records it twice.
func (s *Service) Remind(ctx context.Context, trialID, generation int64, before time.Duration, cause string) (Result, error) {
	return s.transition(ctx, trialID, generation, store.StateActive, "", cause,
		func(t store.Trial) time.Time { return t.ExpirationDate.Add(-before) },
		func(tx pgx.Tx, q *store.Queries, t *store.Trial, now time.Time) error {
			data := map[string]any{"expirationDate": t.ExpirationDate, "before": before.String(), "generation": t.ScheduleGen}
			sent, err := q.HasTrialEvent(ctx, t.ID, EventWillEnd, data)
			if err != nil || sent {
				return err
			}
			return s.record(ctx, tx, *t, EventWillEnd, now, ActorSystem, cause, data)
		})
}
