package lifecycle

import (
	"context"
	"sync"
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
// step of their dates, a hundred or more per commit in a storm: their own
// jobs are deleted before River fetches them, and those River fetched
// meanwhile wait for its next batch (takenByFollower).
const (
	followStep    = 100 * time.Millisecond
	followHorizon = time.Second
)

// followWaitBatches is how many of a following job's batches another
// expiry job waits for (takenByFollower) before it expires its trial
// itself.
const followWaitBatches = 3

// follower lets one job per process follow at a time, tells the jobs River
// fetches meanwhile when each of its batches commits, and lets the daemon
// stop it when it shuts down.
type follower struct {
	mu sync.Mutex
	// batch, while a job follows, is closed when its next batch commits
	// or the follow ends; nil while none follows.
	batch chan struct{}
	// behind is set while the follower's last batch came back full: more
	// are due than it takes at once.
	behind   bool
	stopOnce sync.Once
	stopped  chan struct{}
	// waiting, when set (by tests), hears that the follower waits for a
	// trial due at the time given.
	waiting func(due time.Time)
}

func newFollower() follower {
	return follower{stopped: make(chan struct{})}
}

// start makes the caller the process's following job, unless one is.
func (f *follower) start() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.batch != nil {
		return false
	}
	f.batch, f.behind = make(chan struct{}), false
	return true
}

// committed tells the waiting jobs that a batch committed, and whether it
// came back full.
func (f *follower) committed(full bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.batch)
	f.batch, f.behind = make(chan struct{}), full
}

// end ends the follow, and the waits on it.
func (f *follower) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.batch)
	f.batch = nil
}

// nextBatch is closed when the following job's next batch commits or the
// follow ends; ok is false while none follows, or while it is behind.
func (f *follower) nextBatch() (next <-chan struct{}, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batch, f.batch != nil && !f.behind
}

// takenByFollower waits, while a job of this process follows, for up to
// followWaitBatches of its batches, and reports whether one expired trial
// id at generation gen. River fetches a due trial's job as soon as it is
// due, within the step before the follower claims it: run, the job would
// expire its trial in a transaction of its own and leave the follower's
// batches a few trials each. A job whose trial the follower passes over, or
// that is still waiting when the follow ends, goes on alone, as do all
// while the follower is behind (a backlog): their batches then drain it
// beside the follower's.
func (s *Service) takenByFollower(ctx context.Context, id, gen int64) bool {
	for range followWaitBatches {
		next, ok := s.follow.nextBatch()
		if !ok {
			return false
		}
		select {
		case <-next:
		case <-ctx.Done():
			return false
		}
		if s.applied.take(id, gen) {
			return true
		}
	}
	return false
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
	if s.cfg.ExpireFollow <= 0 || s.cfg.ExpireBatch <= 1 || !s.follow.start() {
		return nil
	}
	defer s.follow.end()
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
		full = len(claims) == s.cfg.ExpireBatch
		s.follow.committed(full)
		if err != nil {
			s.logger.WarnContext(ctx, "expiry job stops following", "cause", cause, "err", err)
			break
		}
		out, last = append(out, claims...), now
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

// awaitNextDue waits until the next trial due after `last` (the last
// batch's now) falls due, and at least until followStep after `last`, so
// that batches start a step apart however long each took, and reports
// whether to go on: not when none falls due within followHorizon, the
// follow ended meanwhile, or the clock is one real time does not move (a
// test's).
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
	case <-time.After(max(wait, last.Add(followStep).Sub(s.clock.Now()))):
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
