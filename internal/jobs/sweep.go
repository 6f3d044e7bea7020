package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/trialsd/trialsd/internal/lifecycle"
)

// ExpirySweeper sweeps for due trials every lifecycle.expire_poll, on every
// replica, and expires them in batches (lifecycle.ExpireDue): the fast half
// of expiry, where each trial's own River job is the durable half. It keeps
// no state between sweeps, so a replica that stops costs only the time
// until another sweeps or the jobs run.
type ExpirySweeper struct {
	Lifecycle *lifecycle.Service
	Observer  Observer
	Logger    *slog.Logger
	// Every is lifecycle.expire_poll.
	Every time.Duration
}

// sweepRetry is the wait after a failed sweep: long enough not to flood a
// struggling database with retries, short beside the jobs' backstop.
const sweepRetry = time.Second

// Run sweeps at once, then until ctx is done. A sweep that came back full goes again at
// once: more are due. A sweep cut short by ctx rolls back; its trials keep
// their jobs.
func (s ExpirySweeper) Run(ctx context.Context) {
	timer := time.NewTimer(0) // a backlog left by a stop goes at once
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(s.sweep(ctx))
	}
}

// sweep sweeps once, counts what it expired, and says how long to wait
// before the next.
func (s ExpirySweeper) sweep(ctx context.Context) time.Duration {
	sw, err := s.Lifecycle.ExpireDue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.WarnContext(ctx, "expiry sweep failed; due trials wait for the next sweep or their own jobs", "err", err, "retry_in", sweepRetry)
		}
		return max(s.Every, sweepRetry)
	}
	for _, c := range sw.Expired {
		s.Observer.Transition("expire", string(lifecycle.Applied), c.At.Sub(c.Due))
	}
	if sw.Full {
		return 0
	}
	return s.Every
}
