package lifecycle

import "sync"

// appliedCap bounds the expiries remembered: about 2.5 MB. A batch's
// trials' own jobs usually run within seconds on the same daemon, so the
// window only has to cover a few batches per worker; an entry pushed out
// costs its job one read, nothing more.
const appliedCap = 1 << 16

// trialGen names one schedule of one trial.
type trialGen struct{ id, gen int64 }

// appliedExpiries remembers the trials this daemon expired in other jobs'
// batches, after the batch committed, so that their own expiry jobs can
// complete without reading the trial back, which in a storm was a large
// share of the daemon's CPU (docs/performance.md, "Tuning, before and
// after"). It is exact because a trial never returns to
// a (state, generation) it has left, so "expired at generation g" stays
// true once committed. A job a replica runs, or one that comes after its
// entry was pushed out, reads the trial as before.
type appliedExpiries struct {
	mu   sync.Mutex
	set  map[trialGen]struct{}
	ring []trialGen // insertion order, oldest pushed out first
	next int
}

func newAppliedExpiries(capacity int) *appliedExpiries {
	return &appliedExpiries{set: make(map[trialGen]struct{}), ring: make([]trialGen, 0, capacity)}
}

// add remembers trials expired at their generations.
func (a *appliedExpiries) add(trials []trialGen) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range trials {
		if len(a.ring) < cap(a.ring) {
			a.ring = append(a.ring, k)
		} else {
			delete(a.set, a.ring[a.next])
			a.ring[a.next] = k
			a.next = (a.next + 1) % len(a.ring)
		}
		a.set[k] = struct{}{}
	}
}

// take reports whether trial id was expired at generation gen by a batch,
// and forgets it: each trial's own job asks once.
func (a *appliedExpiries) take(id, gen int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := trialGen{id, gen}
	if _, ok := a.set[k]; !ok {
		return false
	}
	delete(a.set, k)
	return true
}
