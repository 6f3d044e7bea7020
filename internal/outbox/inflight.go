package outbox

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// minBusyWait is the shortest a delivery waits for its endpoint to have a
// free slot: about a fetch of River's, so a fast endpoint's backlog flows.
const minBusyWait = 50 * time.Millisecond

// EndpointBusyError says an attempt was not made because its endpoint had
// as many attempts in flight from this process as it may: the job is to be
// tried again after Wait (River's snooze), without holding a worker
// meanwhile, and without counting as an attempt.
type EndpointBusyError struct {
	EndpointID int64
	Wait       time.Duration
}

func (e *EndpointBusyError) Error() string {
	return fmt.Sprintf("webhook endpoint %d has every slot in flight; again in %s", e.EndpointID, e.Wait)
}

// inFlight counts the attempts in flight to each endpoint from this
// process, so a slow endpoint holds at most its cap of the outbox queue's
// workers and the others' deliveries find workers free. It measures real
// time (the monotonic clock): how long a receiver takes is a fact of the
// network, not of a trial's clock.
type inFlight struct {
	mu        sync.Mutex
	endpoints map[int64]*endpointLoad
}

// endpointLoad is one endpoint's attempts in flight and how long its
// last attempt took.
type endpointLoad struct {
	started map[*time.Time]struct{}
	last    time.Duration
}

func newInFlight() *inFlight { return &inFlight{endpoints: map[int64]*endpointLoad{}} }

// take claims one of the endpoint's limit slots and returns the function
// that gives it back; or, when every slot is taken, how long to wait before
// trying again: about how long a slot stays taken (the last attempt's
// duration, or the oldest one in flight's so far, whichever is longer),
// within [minBusyWait, maxWait], with up to 50 % of jitter so waiting jobs
// come back spread out.
func (f *inFlight) take(endpointID int64, limit int, maxWait time.Duration) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	load := f.endpoints[endpointID]
	if load == nil {
		load = &endpointLoad{started: map[*time.Time]struct{}{}}
		f.endpoints[endpointID] = load
	}
	now := time.Now()
	if len(load.started) >= limit {
		busy := load.last
		for s := range load.started {
			busy = max(busy, now.Sub(*s))
		}
		wait := min(max(busy, minBusyWait), max(maxWait, minBusyWait))
		wait += time.Duration(rand.Float64() * 0.5 * float64(wait))
		return nil, &EndpointBusyError{EndpointID: endpointID, Wait: wait}
	}
	started := &now
	load.started[started] = struct{}{}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(load.started, started)
		load.last = time.Since(*started)
		if len(load.started) == 0 && load.last < minBusyWait {
			delete(f.endpoints, endpointID) // an idle, fast endpoint costs nothing
		}
	}, nil
}
