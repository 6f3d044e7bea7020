package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/jobargs"
	"github.com/trialsd/trialsd/internal/store"
)

// reconcileBatch bounds how many due trials one step of the sweep reads.
const reconcileBatch = 500

// ReconcileReport says what one sweep found and fixed.
type ReconcileReport struct {
	// Checked is how many trials were due within the horizon.
	Checked int
	// Repaired counts the jobs re-enqueued, by job kind.
	Repaired map[string]int
	// FoldedCounters is how many counter rows were folded: the
	// trials-by-state and look-ahead rows of gone backends, and the
	// look-ahead buckets past their horizon.
	FoldedCounters int64
	// DeletedTestClocks counts the test clocks deleted at the end of their
	// retention.
	DeletedTestClocks int
}

// Reconcile finds trials whose next transition is due within
// lifecycle.reconcile_horizon (or overdue) but has no live job — a row edited
// by hand, a job discarded after its last attempt, a restore from backup —
// and enqueues the missing job. It walks the due-date indexes in bounded
// batches, never the whole table; a transition further ahead is checked by a
// later sweep before it is due.
//
// It also folds the counters the trials' triggers keep (by state, and the
// look-ahead buckets), which would otherwise gain a few rows with every new
// connection and every minute, and deletes the test clocks whose retention
// has ended.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	report := ReconcileReport{Repaired: map[string]int{}}
	s.housekeep(ctx, &report)
	by := s.now().Add(s.cfg.ReconcileHorizon)
	var afterDue time.Time
	var afterID int64
	for {
		q := store.New(s.pool)
		due, err := q.TrialsDueBy(ctx, by, afterDue, afterID, reconcileBatch)
		if err != nil {
			return report, err
		}
		if len(due) == 0 {
			return report, nil
		}
		report.Checked += len(due)
		afterDue, afterID = due[len(due)-1].Due, due[len(due)-1].ID

		missing, err := q.TrialsWithoutLiveJob(ctx, due)
		if err != nil {
			return report, err
		}
		for _, id := range missing {
			kind, err := s.repair(ctx, id)
			if err != nil {
				return report, err
			}
			if kind != "" {
				report.Repaired[kind]++
				s.logger.WarnContext(ctx, "reconcile re-enqueued a missing transition", "trial_id", id, "kind", kind)
			}
		}
	}
}

// dueCountsLag is how far behind the clock the look-ahead buckets are
// folded: every look-ahead window starts at now, so their counts stay exact
// on a replica whose clock lags this one's by less.
const dueCountsLag = 24 * time.Hour

// housekeep folds the trials' counters and deletes the test clocks past
// their retention, into report. A failure is logged, and the repairs go
// on: the next sweep tries again.
func (s *Service) housekeep(ctx context.Context, report *ReconcileReport) {
	q := store.New(s.pool)
	folded, err := q.FoldTrialStateCounts(ctx)
	if err != nil {
		s.logger.WarnContext(ctx, "folding the trials-by-state counters failed; the next sweep tries again", "error", err)
	}
	due, err := q.FoldTrialDueCounts(ctx, s.now().Add(-dueCountsLag))
	if err != nil {
		s.logger.WarnContext(ctx, "folding the look-ahead counters failed; the next sweep tries again", "error", err)
	}
	report.FoldedCounters = folded + due
	if report.DeletedTestClocks, err = s.sweepTestClocks(ctx); err != nil {
		s.logger.WarnContext(ctx, "deleting test clocks past their retention failed; the next sweep tries again", "error", err)
	}
}

// repair gives a trial a fresh schedule for its state, under its lock, and
// returns the kind of the transition it re-enqueued ("" if the trial moved
// on meanwhile). A new generation guarantees the new jobs are not refused as
// duplicates of finished ones, whatever happened to the row.
func (s *Service) repair(ctx context.Context, trialID int64) (string, error) {
	var kind string
	err := s.inChange(ctx, domain.System, domain.ReconcileCause, func(c *change) error {
		kind = "" // a retried transaction starts over
		q := c.q
		t, err := q.TrialByIDForUpdate(ctx, trialID)
		if errors.Is(err, store.ErrNotFound) {
			return nil // purged meanwhile
		}
		if err != nil {
			return err
		}
		var purgeAt *time.Time
		switch t.State {
		case domain.StateActive:
			kind = jobargs.KindExpireTrial
		case domain.StateExpired:
			kind = jobargs.KindDeleteTrial
		case domain.StateDeleted:
			org, err := q.OrganizationByIDForUpdate(ctx, t.OrganizationID)
			if err != nil {
				return err
			}
			if org.PurgeAt == nil {
				return nil // deleted without purge: nothing is due
			}
			kind, purgeAt = jobargs.KindPurgeOrganization, org.PurgeAt
		default:
			return nil
		}
		return c.reschedule(ctx, &t, purgeAt)
	})
	if err != nil {
		return "", fmt.Errorf("repairing trial %d: %w", trialID, err)
	}
	return kind, nil
}
