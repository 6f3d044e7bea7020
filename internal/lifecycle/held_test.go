package lifecycle

import (
	"slices"
	"testing"
	"time"
)

// Held jobs are retried until a batch deletes them, their own job runs, or
// heldJobsTTL passes.
func TestHeldJobs(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := newHeldJobs()
	h.settle(t0, jobsRetired{held: []heldJob{{id: 10, trial: trialGen{1, 1}}, {id: 20, trial: trialGen{2, 1}}, {id: 30, trial: trialGen{3, 1}}}})
	ids := func(at time.Time) []int64 {
		var out []int64
		for _, j := range h.live(at) {
			out = append(out, j.id)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(t0); !slices.Equal(got, []int64{10, 20, 30}) {
		t.Fatalf("held = %v, want 10 20 30", got)
	}
	h.settle(t0.Add(time.Second), jobsRetired{retried: []heldJob{{id: 10, trial: trialGen{1, 1}}}}) // a batch deleted it
	h.done(trialGen{2, 1})                                                                          // its own job runs
	h.done(trialGen{3, 2})                                                                          // another schedule: not this job
	if got := ids(t0.Add(heldJobsTTL)); !slices.Equal(got, []int64{30}) {
		t.Fatalf("held = %v, want 30 alone", got)
	}
	if got := ids(t0.Add(heldJobsTTL + time.Millisecond)); len(got) != 0 {
		t.Fatalf("held after the TTL = %v, want none", got)
	}
}
