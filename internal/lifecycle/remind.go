package lifecycle

import (
	"context"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
)

// Remind records a trial.will_end reminder `before` ahead of an active
// trial's expiry. Rescheduling moves it (a new generation), upgrading or
// expiring the trial drops it, and a retried job never records it twice.
func (s *Service) Remind(ctx context.Context, trialID, generation int64, before time.Duration, cause string) (Result, error) {
	return s.transition(ctx, step{
		trialID: trialID, generation: generation, from: domain.StateActive, cause: cause,
		due: func(t domain.Trial) time.Time { return t.ExpirationDate.Add(-before) },
		apply: func(ctx context.Context, c *change, t *domain.Trial) error {
			data := map[string]any{"expirationDate": t.ExpirationDate, "before": before.String(), "generation": t.ScheduleGen}
			sent, err := c.q.HasTrialEvent(ctx, t.ID, domain.EventWillEnd, data)
			if err != nil || sent {
				return err
			}
			return c.record(ctx, *t, domain.EventWillEnd, data)
		},
	})
}
