package lifecycle

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store"
)

// Following, an expiry job goes on expiring trials as they fall due after
// its own, one batch every followStep while the next falls due within
// followHorizon, for at most lifecycle.expire_follow. River makes a
// scheduled job workable only in its scheduler's passes, every 5 s, each
// ahead by 5 s: the trials falling due while a pass runs wait for its
// commit, and every job fetched claims only the few trials due since the
// one before, a transaction each. A following job expires them within a
// step of their dates, a hundred or more per commit in a storm, and their
// own jobs are deleted before River fetches them.
const (
	followStep    = 100 * time.Millisecond
	followHorizon = time.Second
)

// follower lets one job per process follow at a time, and the daemon stop
// it when it shuts down.
type follower struct {
	busy     atomic.Bool
	stopOnce sync.Once
	stopped  chan struct{}
	// waiting, when set (by tests), hears that the follower waits for a
	// trial due at the time given.
	waiting func(due time.Time)
}

func newFollower() follower {
	return follower{stopped: make(chan struct{})}
}

// StopFollowing ends any following expiry job at its next step, and keeps
// new ones from starting: a shutdown lets running jobs finish, and a
// follower would otherwise run on for lifecycle.expire_follow.
func (s *Service) StopFollowing() {
	s.follow.stopOnce.Do(func() { close(s.follow.stopped) })
}

// followExpiries follows the job's batch committed at `at` (see follow's
// constants) and returns what it expired. A batch that came back full goes
// on at once: more are due. A failed batch ends it and is logged: the
// job's own work is done, and the trials left keep their jobs.
func (s *Service) followExpiries(ctx context.Context, cause string, at time.Time) []Claim {
	select {
	case <-s.follow.stopped:
		return nil
	default:
	}
	if s.cfg.ExpireFollow <= 0 || s.cfg.ExpireBatch <= 1 || !s.follow.busy.CompareAndSwap(false, true) {
		return nil
	}
	defer s.follow.busy.Store(false)
	// following ends the follow, not a batch under way: a batch cut short
	// would only leave its trials to their own jobs.
	following, stop := context.WithTimeout(ctx, s.cfg.ExpireFollow)
	defer stop()
	go func() {
		select {
		case <-s.follow.stopped:
			stop()
		case <-following.Done():
		}
	}()
	var out []Claim
	due := store.DueWindow{From: at.Add(-followHorizon), Order: store.OldestFirst}
	for last, full := at, false; following.Err() == nil; {
		if !full && !s.awaitNextDue(following, last) {
			break
		}
		claims, now, err := s.expireDue(ctx, cause, due)
		if err != nil {
			s.logger.WarnContext(ctx, "expiry job stops following", "cause", cause, "err", err)
			break
		}
		out, last, full = append(out, claims...), now, len(claims) == s.cfg.ExpireBatch
		// Behind, the next batch goes on from the last trial claimed;
		// caught up, from a little before now (trials due meanwhile that
		// someone held are left to their own jobs).
		due.From = now.Add(-followHorizon)
		if full {
			due.From = claims[len(claims)-1].Due
		}
	}
	return out
}

// awaitNextDue waits until the next trial due after `last` falls due, at
// least followStep, and reports whether to go on: not when none falls due
// within followHorizon, the follow ended meanwhile, or the clock is one
// real time does not move (a test's).
func (s *Service) awaitNextDue(following context.Context, last time.Time) bool {
	next, ok, err := store.New(s.pool).NextDueActiveTrial(following, last)
	if err != nil {
		if following.Err() == nil {
			s.logger.WarnContext(following, "expiry job stops following", "err", err)
		}
		return false
	}
	wait := next.Sub(s.clock.Now())
	if !ok || wait > followHorizon {
		return false
	}
	if s.follow.waiting != nil {
		s.follow.waiting(next)
	}
	select {
	case <-following.Done():
		return false
	case <-time.After(max(wait, followStep)):
	}
	return !s.clock.Now().Before(next)
}

// expireDue expires, in one change by the system, up to
// lifecycle.expire_batch active trials due from due.From to now that no one
// holds, and returns them and the change's now.
func (s *Service) expireDue(ctx context.Context, cause string, due store.DueWindow) ([]Claim, time.Time, error) {
	var trials []domain.Trial
	var now time.Time
	err := s.inChange(ctx, domain.System, cause, func(c *change) error {
		now, due.By = c.now, c.now
		var err error
		if trials, err = c.claimDue(ctx, due, 0, s.cfg.ExpireBatch); err != nil || len(trials) == 0 {
			return err
		}
		_, err = c.expireTrials(ctx, trials)
		return err
	})
	if err != nil {
		return nil, now, err
	}
	return s.claimed(trials, now), now, nil
}
