package metrics

import (
	"context"
	"time"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/store"
)

// Database reads the gauges' figures from trialsd's tables and River's,
// by its clock's now: the reads behind Sources and ReadTrialsFrom, kept
// beside the gauges they feed rather than in the daemon, which only wires.
type Database struct {
	db    store.DBTX
	clock clock.Clock
}

// NewDatabase reads the figures from db, with clk's now.
func NewDatabase(db store.DBTX, clk clock.Clock) Database { return Database{db: db, clock: clk} }

// QueueStats reads the state of River's queues for the job gauges.
func (d Database) QueueStats(ctx context.Context) (QueueStats, error) {
	q := store.New(d.db)
	stats := QueueStats{Jobs: map[[2]string]int64{}, OldestAvailable: map[string]time.Duration{}}
	counts, err := q.UnfinishedJobCounts(ctx)
	if err != nil {
		return stats, err
	}
	for _, c := range counts {
		stats.Jobs[[2]string{c.Queue, c.State}] = c.N
	}
	now := d.clock.Now()
	oldest, err := q.OldestAvailableJobs(ctx)
	if err != nil {
		return stats, err
	}
	for queue, at := range oldest {
		stats.OldestAvailable[queue] = now.Sub(at)
	}
	stats.Leader, err = q.RiverLeaderElected(ctx, now)
	return stats, err
}

// TrialFigures reads trialsd_trials' figures: the counters by state.
func (d Database) TrialFigures(ctx context.Context) (TrialFigures, error) {
	byState, err := store.New(d.db).CountTrialsByState(ctx)
	return TrialFigures{ByState: byState}, err
}

// Upcoming reads the look-ahead gauges' figures: what falls due within
// their windows from the clock's now.
func (d Database) Upcoming(ctx context.Context) (Upcoming, error) {
	q := store.New(d.db)
	u := Upcoming{EndingWithin: map[string]int64{}}
	now := d.clock.Now()
	by := make([]time.Time, len(EndingWindows))
	for i, w := range EndingWindows {
		by[i] = now.Add(w.Length)
	}
	ending, err := q.CountTrialsEndingBy(ctx, by)
	if err != nil {
		return u, err
	}
	for i, w := range EndingWindows {
		u.EndingWithin[w.Label] = ending[i]
	}
	u.DeletionsDue, err = q.CountDeletionsDueBy(ctx, now.Add(DeletionWindow.Length))
	return u, err
}

// WatchStoreAborts has m count the store's transactions aborted by a
// deadlock or a serialization failure (store.AbortsSoFar).
func (m *Metrics) WatchStoreAborts() {
	m.WatchTransactionAborts(func() (int64, int64) {
		a := store.AbortsSoFar()
		return a.Deadlocks, a.SerializationFailures
	})
}
