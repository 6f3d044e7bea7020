package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dueKind is what one look-ahead counts (migration 00014): trials in state
// whose column falls due, kept in trial_due_counts under name.
type dueKind struct{ name, state, column string }

var (
	// dueEnding: active trials, by their expiration date.
	dueEnding = dueKind{"ending", "active", "expiration_date"}
	// dueDeletion: expired trials, by the end of their grace period.
	dueDeletion = dueKind{"deletion", "expired", "grace_ends_at"}
)

// countSQL is the SQL of how many of k's real-time trials are due at or
// before the instant in parameter p: the kept buckets wholly before it
// (days before its day, hours of its day before its hour, minutes of its
// hour before its minute) summed, and its own minute counted exactly on the
// trials' index for k (trials_state_expiration_idx,
// trials_grace_ends_at_idx). The work is a few dozen bucket keys per
// backend that counted in them and one minute of trials, however many
// trials the table holds.
func (k dueKind) countSQL(p int) string {
	by := "$" + strconv.Itoa(p)
	bucket := func(span string) string { return "trial_due_bucket('" + span + "', " + by + ")" }
	sum := func(span, where string) string {
		return "(SELECT coalesce(sum(n), 0) FROM trial_due_counts WHERE kind = '" + k.name +
			"' AND span = '" + span + "' AND " + where + ")"
	}
	return "(" + sum("day", "bucket < "+bucket("day")) +
		" + " + sum("hour", "bucket >= "+bucket("day")+" AND bucket < "+bucket("hour")) +
		" + " + sum("minute", "bucket >= "+bucket("hour")+" AND bucket < "+bucket("minute")) +
		" + (SELECT count(*) FROM trials WHERE state = '" + k.state + "' AND " + k.column + " >= " + bucket("minute") +
		" AND " + k.column + " <= " + by + " AND test_clock_id IS NULL))::bigint"
}

// countDue counts, for each instant of by, k's real-time trials due at or
// before it, in one statement.
func (q *Queries) countDue(ctx context.Context, k dueKind, by []time.Time) ([]int64, error) {
	if len(by) == 0 {
		return nil, nil
	}
	cols := make([]string, len(by))
	args := make([]any, len(by))
	counts := make([]int64, len(by))
	dest := make([]any, len(by))
	for i, b := range by {
		cols[i], args[i], dest[i] = k.countSQL(i+1), b, &counts[i]
	}
	if err := q.db.QueryRow(ctx, "SELECT "+strings.Join(cols, ", "), args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("counting trials due (%s): %w", k.name, err)
	}
	return counts, nil
}

// CountTrialsEndingBy counts, for each instant of by, the active real-time
// trials whose expiration date is at or before it (those overdue included:
// they end at the next expiry sweep), from the buckets the trials' triggers
// keep (migration 00014) rather than over the whole index, which took
// seconds at millions of trials (docs/performance.md, "Scale"). Exact for
// any instant no earlier than the horizon of the last FoldTrialDueCounts.
func (q *Queries) CountTrialsEndingBy(ctx context.Context, by []time.Time) ([]int64, error) {
	return q.countDue(ctx, dueEnding, by)
}

// CountDeletionsDueBy counts the expired real-time trials whose grace period
// ends at or before by, as CountTrialsEndingBy counts the active ones.
func (q *Queries) CountDeletionsDueBy(ctx context.Context, by time.Time) (int64, error) {
	n, err := q.countDue(ctx, dueDeletion, []time.Time{by})
	if err != nil {
		return 0, err
	}
	return n[0], nil
}

// FoldTrialDueCounts keeps the look-ahead counters small: it folds the
// rows of backends that have gone into one per bucket, and the buckets
// before before's day into one, and returns how many rows it took. Counts
// at before or later are unchanged; earlier ones are no longer kept. It
// waits on no lock a transition holds.
func (q *Queries) FoldTrialDueCounts(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	if err := q.db.QueryRow(ctx, `SELECT trial_due_counts_fold($1)`, before).Scan(&n); err != nil {
		return 0, fmt.Errorf("folding the look-ahead counters: %w", err)
	}
	return n, nil
}
