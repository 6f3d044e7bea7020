package lifecycle

import (
	"sync"
	"time"
)

// heldJobsTTL is how long a batch's held job (see heldJobs) is retried: a
// few of River's scheduler passes (every 5 s). One that started meanwhile
// can never be deleted and runs; it is dropped here after this.
const heldJobsTTL = 15 * time.Second

// heldJobs are the pending expiry jobs of trials that committed batches
// expired but could not delete: River deletes only the rows no one has
// locked, and its scheduler holds every job it promotes until its pass
// commits (every 5 s, a few hundred milliseconds in a storm). Left, each
// would run only to find its work done, at the head of the expiry queue,
// while trials falling due wait behind it: with a few expiry workers,
// seconds of lag after a pass. The next batches delete them with their own
// claimed trials' jobs. Only committed batches' jobs are kept: a
// rolled-back batch's trials are still active, and their jobs are theirs
// to run. A job that runs meanwhile drops its entry (done).
type heldJobs struct {
	mu   sync.Mutex
	jobs map[trialGen]heldJob // by the schedule of the job's trial
}

// heldJob is one held expiry job: its id, its trial's schedule, and when a
// batch first found it held.
type heldJob struct {
	id    int64
	trial trialGen
	since time.Time
}

func newHeldJobs() *heldJobs { return &heldJobs{jobs: make(map[trialGen]heldJob)} }

// live are the held jobs still worth retrying at now; older ones are
// dropped.
func (h *heldJobs) live(now time.Time) []heldJob {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]heldJob, 0, len(h.jobs))
	for k, j := range h.jobs {
		if now.Sub(j.since) > heldJobsTTL {
			delete(h.jobs, k)
			continue
		}
		out = append(out, j)
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
	for _, j := range r.retried {
		delete(h.jobs, j.trial)
	}
	for _, j := range r.held {
		j.since = now
		h.jobs[j.trial] = j
	}
}

// done forgets the held job of a trial's schedule, if any: it is running.
func (h *heldJobs) done(trial trialGen) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.jobs, trial)
}

// jobsRetired is what one change's deletions of done jobs came to, for
// heldJobs once it commits: the held jobs it retried and deleted, and the
// claimed trials' expiry jobs it was asked to delete that someone held.
type jobsRetired struct {
	retried, held []heldJob
}
