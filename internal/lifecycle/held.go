package lifecycle

import (
	"sync"
	"time"
)

// heldJobsTTL is how long a batch's held job (see heldJobs) is retried: a
// few of River's scheduler passes (every 5 s). One that started meanwhile
// can never be deleted and runs; it is dropped here after this.
const heldJobsTTL = 15 * time.Second

// heldJobs are the pending jobs of trials that committed batches expired
// but could not delete: River deletes only the rows no one has locked, and
// its scheduler holds every job it promotes until its pass commits (every
// 5 s, a few hundred milliseconds in a storm). Left, each would run only to
// find its work done, at the head of the expiry queue, while trials falling
// due wait behind it: with a few expiry workers, seconds of lag after a
// pass. The next batches delete them with their own claimed trials' jobs.
// Only committed batches' jobs are kept: a rolled-back batch's trials are
// still active, and their jobs are theirs to run.
type heldJobs struct {
	mu    sync.Mutex
	since map[int64]time.Time // job id → when a batch first found it held
}

func newHeldJobs() *heldJobs { return &heldJobs{since: make(map[int64]time.Time)} }

// ids are the held jobs still worth retrying at now; older ones are
// dropped.
func (h *heldJobs) ids(now time.Time) []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int64, 0, len(h.since))
	for id, since := range h.since {
		if now.Sub(since) > heldJobsTTL {
			delete(h.since, id)
			continue
		}
		out = append(out, id)
	}
	return out
}

// settle records a committed batch's deletions: retried jobs it deleted
// are done, and its own claimed trials' jobs it could not delete are held
// from now.
func (h *heldJobs) settle(now time.Time, r jobsRetired) {
	if len(r.retried) == 0 && len(r.held) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range r.retried {
		delete(h.since, id)
	}
	for _, id := range r.held {
		h.since[id] = now
	}
}

// jobsRetired is what one change's deletions of done jobs came to, for
// heldJobs once it commits: held jobs it retried and deleted, and the jobs
// it was asked to delete that someone held.
type jobsRetired struct {
	retried, held []int64
}
