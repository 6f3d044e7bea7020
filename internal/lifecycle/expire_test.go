package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/store"
)

// startTrials starts one trial per expiration date, as an admin.
func startTrials(t *testing.T, b *testBundle, expires ...time.Time) []domain.Trial {
	t.Helper()
	ctx := context.Background()
	admin := b.user(t, "batchadmin")
	out := make([]domain.Trial, len(expires))
	for i, exp := range expires {
		started, err := b.svc.StartTrial(ctx, domain.Actor{UserID: admin, Admin: true},
			lifecycle.StartTrialRequest{ExpirationDate: &exp}, fmt.Sprintf("request:%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = b.svc.Trial(ctx, started.TrialID); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// holdTrial locks the trial's row in a transaction of its own, as another
// worker or request would, until the test rolls it back or ends.
func (b *testBundle) holdTrial(t *testing.T, id int64) pgx.Tx {
	t.Helper()
	return b.hold(t, func(ctx context.Context, tx pgx.Tx) error {
		_, err := store.New(tx).TrialByIDForUpdate(ctx, id)
		return err
	})
}

// holdJob locks River's job row in a transaction of its own, as River's
// scheduler does with every job it promotes until its pass commits.
func (b *testBundle) holdJob(t *testing.T, id int64) pgx.Tx {
	t.Helper()
	return b.hold(t, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT 1 FROM river_job WHERE id = $1 FOR UPDATE`, id)
		return err
	})
}

// hold begins a transaction that lock runs in, rolled back when the test
// ends unless the test does it first.
func (b *testBundle) hold(t *testing.T, lock func(context.Context, pgx.Tx) error) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	if err := lock(ctx, tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

// jobState is the state of River's job id, "" when there is no such job.
func (b *testBundle) jobState(t *testing.T, id int64) string {
	t.Helper()
	var state string
	err := b.pool.QueryRow(context.Background(), `SELECT state::text FROM river_job WHERE id = $1`, id).Scan(&state)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return state
}

// An expiry job claims the other trials already due since its own, up to
// the batch size, passing over any another transaction holds and any not
// yet due; each
// claimed trial gets its own event caused by the job, its enterprise
// features removed and its own Delete job; its own expiry job is deleted
// from the queue, and, had River started it, would find the transition
// applied.
func TestExpireClaimsDueTrials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.cfg.ExpireBatch = 4
	b.svc = b.newService(t)
	// Due, in expiration order: own (the job's), d1..d4; then one held by
	// another transaction, one due in the future, and one due before the
	// job's own, which River fetches first.
	trials := startTrials(t, b,
		t0.Add(1*time.Minute),                                                                      // own
		t0.Add(2*time.Minute), t0.Add(3*time.Minute), t0.Add(4*time.Minute), t0.Add(5*time.Minute), // d1..d4
		t0.Add(4*time.Minute+30*time.Second), // held
		t0.Add(2*time.Hour),                  // not due
		t0.Add(30*time.Second),               // due before own
	)
	own, held, notDue, earlier := trials[0], trials[5], trials[6], trials[7]
	now := b.clock.Advance(time.Hour)

	lock := b.holdTrial(t, held.ID)

	res, err := b.svc.Expire(ctx, own.ID, own.ScheduleGen, "job:99")
	if err != nil || res.Outcome != lifecycle.Applied {
		t.Fatalf("Expire = %+v, %v; want applied", res, err)
	}
	// Batch of 4: its own trial and the three most recently due it could
	// claim, newest first (River fetches the oldest due first).
	wantClaimed := []domain.Trial{trials[4], trials[3], trials[2]}
	if len(res.Claimed) != len(wantClaimed) {
		t.Fatalf("claimed %d trials (%v), want %d", len(res.Claimed), res.Claimed, len(wantClaimed))
	}
	for i, tr := range wantClaimed {
		if !res.Claimed[i].Due.Equal(tr.ExpirationDate) {
			t.Errorf("claimed due %d = %v, want %v", i, res.Claimed[i], tr.ExpirationDate)
		}
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	for _, tr := range append([]domain.Trial{own}, wantClaimed...) {
		got, err := b.svc.Trial(ctx, tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != domain.StateExpired || !got.ExpiredDate.Equal(now) || !got.GraceEndsAt.Equal(now.Add(b.cfg.GracePeriod)) {
			t.Errorf("trial %d = %s expired %v grace %v, want expired at %v", tr.ID, got.State, got.ExpiredDate, got.GraceEndsAt, now)
		}
		ev := b.events(t, tr.ID, domain.EventExpired)
		if len(ev) != 1 || ev[0].Cause != "job:99" || ev[0].Actor != domain.System.String() || !ev[0].At.Equal(now) {
			t.Errorf("trial %d expired events = %+v, want one caused by job:99", tr.ID, ev)
		}
		var enterprise bool
		var deleteArgs []byte
		if err := b.pool.QueryRow(ctx, `SELECT o.enterprise_features, j.args FROM trials t
			JOIN organizations o ON o.id = t.organization_id
			JOIN river_job j ON j.id = t.transition_job_id AND j.kind = 'trial.delete' AND j.state = 'scheduled'
			WHERE t.id = $1 AND j.scheduled_at = t.grace_ends_at AND j.unique_key IS NULL`, tr.ID).Scan(&enterprise, &deleteArgs); err != nil {
			t.Errorf("trial %d: no scheduled Delete job without a unique key recorded at its grace end: %v", tr.ID, err)
		} else if enterprise {
			t.Errorf("trial %d's organization keeps enterprise features", tr.ID)
		}
	}
	for _, tr := range []domain.Trial{trials[1], held, notDue, earlier} {
		if got, _ := b.svc.Trial(ctx, tr.ID); got.State != domain.StateActive {
			t.Errorf("trial %d is %s, want still active (beyond the batch, held, not due, or due before the job's own)", tr.ID, got.State)
		}
	}
	// The claimed trials' own jobs are gone from the queue, since the batch
	// did their work; the others' stay scheduled.
	for _, tr := range wantClaimed {
		if state := b.jobState(t, *tr.TransitionJobID); state != "" {
			t.Errorf("claimed trial %d's expiry job is %s, want deleted", tr.ID, state)
		}
	}
	for _, tr := range []domain.Trial{trials[1], held, notDue, earlier} {
		if state := b.jobState(t, *tr.TransitionJobID); state != "scheduled" {
			t.Errorf("trial %d's expiry job is %q, want scheduled", tr.ID, state)
		}
	}

	// A claimed trial's own job finds its transition done.
	res, err = b.svc.Expire(ctx, trials[2].ID, trials[2].ScheduleGen, "job:100")
	if err != nil || res.Outcome != lifecycle.AlreadyApplied {
		t.Fatalf("claimed trial's own Expire = %+v, %v; want already applied", res, err)
	}
	if n := len(b.events(t, trials[2].ID, domain.EventExpired)); n != 1 {
		t.Fatalf("%d expired events after the claimed trial's own job, want 1", n)
	}
}

// With a batch of 1 every expiry is a transaction of its own.
func TestExpireBatchOfOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.cfg.ExpireBatch = 1
	b.svc = b.newService(t)
	trials := startTrials(t, b, t0.Add(time.Minute), t0.Add(2*time.Minute))
	b.clock.Advance(time.Hour)
	res, err := b.svc.Expire(ctx, trials[0].ID, trials[0].ScheduleGen, "job:1")
	if err != nil || res.Outcome != lifecycle.Applied || len(res.Claimed) != 0 {
		t.Fatalf("Expire = %+v, %v; want applied alone", res, err)
	}
	if got, _ := b.svc.Trial(ctx, trials[1].ID); got.State != domain.StateActive {
		t.Fatalf("the other due trial is %s, want active", got.State)
	}
}

// The daemon that applied a batch answers the claimed trials' own jobs from
// memory, once each: the trial is not read again. Removing a claimed row
// behind the daemon's back shows it: the own job still reports the batch's
// expiry, and a second run, which reads, finds the row gone.
func TestClaimedTrialsOwnJobsAnswerFromMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	trials := startTrials(t, b, t0.Add(time.Minute), t0.Add(2*time.Minute))
	b.clock.Advance(time.Hour)
	res, err := b.svc.Expire(ctx, trials[0].ID, trials[0].ScheduleGen, "job:1")
	if err != nil || res.Outcome != lifecycle.Applied || len(res.Claimed) != 1 {
		t.Fatalf("Expire = %+v, %v; want applied with one claimed", res, err)
	}
	claimed := trials[1]
	if _, err := b.pool.Exec(ctx, `DELETE FROM trials WHERE id = $1`, claimed.ID); err != nil {
		t.Fatal(err)
	}
	for i, want := range []lifecycle.Outcome{lifecycle.AlreadyApplied, lifecycle.Skipped} {
		res, err := b.svc.Expire(ctx, claimed.ID, claimed.ScheduleGen, "job:2")
		if err != nil || res.Outcome != want {
			t.Errorf("own job, run %d = %+v, %v; want %s", i+1, res, err, want)
		}
	}
}

// A job whose trial has moved on learns it without waiting for the row
// lock (and without the commit that taking it costs): it answers even while
// another transaction holds the trial.
func TestMovedOnTrialAnswersWithoutTheLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	trials := startTrials(t, b, t0.Add(time.Minute))
	tr := trials[0]
	b.clock.Advance(time.Hour)
	if res, err := b.svc.Expire(ctx, tr.ID, tr.ScheduleGen, "job:1"); err != nil || res.Outcome != lifecycle.Applied {
		t.Fatalf("Expire = %+v, %v", res, err)
	}

	b.holdTrial(t, tr.ID)
	tests := []struct {
		name       string
		generation int64
		want       lifecycle.Outcome
	}{
		{"its own transition, done", tr.ScheduleGen, lifecycle.AlreadyApplied},
		{"a stale generation", tr.ScheduleGen - 1, lifecycle.Skipped},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := b.svc.Expire(ctx, tr.ID, tt.generation, "job:2")
		cancel()
		if err != nil || res.Outcome != tt.want {
			t.Errorf("%s: Expire = %+v, %v; want %s without waiting for the lock", tt.name, res, err, tt.want)
		}
	}
}

// followSetup is a service that follows for 15 s, with three trials: own,
// whose job runs now, next, due half a second after it, and later, due in
// an hour.
func followSetup(t *testing.T) (b *testBundle, own, next, later domain.Trial) {
	t.Helper()
	b = setup(t)
	b.cfg.ExpireFollow = 15 * time.Second
	b.svc = b.newService(t)
	trials := startTrials(t, b, t0.Add(time.Minute), t0.Add(time.Minute+500*time.Millisecond), t0.Add(time.Hour))
	b.clock.Set(trials[0].ExpirationDate)
	return b, trials[0], trials[1], trials[2]
}

// After its own batch an expiry job follows: it waits for the next trial to
// fall due, expires it in a batch of its own, caused by the job, and
// deletes that trial's job. A trial due beyond the follower's horizon is
// left to its own job.
func TestExpireFollowsTrialsFallingDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, own, next, later := followSetup(t)
	// The follower waits for next in real time; the test's clock gets there
	// at once.
	lifecycle.OnFollowWait(b.svc, func(due time.Time) { b.clock.Set(due.Add(100 * time.Millisecond)) })

	res, err := b.svc.Expire(ctx, own.ID, own.ScheduleGen, "job:7")
	if err != nil || res.Outcome != lifecycle.Applied {
		t.Fatalf("Expire = %+v, %v; want applied", res, err)
	}
	want := lifecycle.Claim{Due: next.ExpirationDate, At: next.ExpirationDate.Add(100 * time.Millisecond)}
	if len(res.Claimed) != 1 || !res.Claimed[0].Due.Equal(want.Due) || !res.Claimed[0].At.Equal(want.At) {
		t.Fatalf("claimed %+v, want only %+v: the next trial, in a batch after the job's own", res.Claimed, want)
	}
	if ev := b.events(t, next.ID, domain.EventExpired); len(ev) != 1 || ev[0].Cause != "job:7" || !ev[0].At.Equal(want.At) {
		t.Errorf("next trial's expired events = %+v, want one caused by job:7 at %v", ev, want.At)
	}
	if state := b.jobState(t, *next.TransitionJobID); state != "" {
		t.Errorf("next trial's expiry job is %s, want deleted", state)
	}
	if got, _ := b.svc.Trial(ctx, later.ID); got.State != domain.StateActive {
		t.Errorf("trial due in an hour is %s, want active", got.State)
	}
}

// A process that is stopping keeps its expiry jobs from following.
func TestStopFollowing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.cfg.ExpireFollow = 15 * time.Second
	b.svc = b.newService(t)
	trials := startTrials(t, b, t0.Add(time.Minute), t0.Add(time.Minute+500*time.Millisecond))
	b.clock.Set(trials[0].ExpirationDate)
	lifecycle.OnFollowWait(b.svc, func(due time.Time) { b.clock.Set(due) })
	b.svc.StopFollowing()
	res, err := b.svc.Expire(ctx, trials[0].ID, trials[0].ScheduleGen, "job:8")
	if err != nil || res.Outcome != lifecycle.Applied || len(res.Claimed) != 0 {
		t.Fatalf("Expire = %+v, %v; want applied, following nothing", res, err)
	}
	if got, _ := b.svc.Trial(ctx, trials[1].ID); got.State != domain.StateActive {
		t.Errorf("next trial is %s, want active", got.State)
	}
}

// A batch expires a claimed trial whose job someone holds, without waiting
// for it, and leaves the job; the next batch, once the job is let go,
// deletes it, so it never runs at the head of the queue for nothing.
func TestExpireDeletesHeldJobsLater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	trials := startTrials(t, b, t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(160*time.Second))
	first, claimed, second := trials[0], trials[1], trials[2]
	b.clock.Advance(150 * time.Second) // first and claimed due, second not yet

	lock := b.holdJob(t, *claimed.TransitionJobID)
	res, err := b.svc.Expire(ctx, first.ID, first.ScheduleGen, "job:1")
	if err != nil || res.Outcome != lifecycle.Applied || len(res.Claimed) != 1 {
		t.Fatalf("Expire = %+v, %v; want applied with the held job's trial claimed", res, err)
	}
	if state := b.jobState(t, *claimed.TransitionJobID); state != "scheduled" {
		t.Fatalf("held job is %q, want left scheduled while held", state)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	b.clock.Advance(10 * time.Second)
	if res, err := b.svc.Expire(ctx, second.ID, second.ScheduleGen, "job:2"); err != nil || res.Outcome != lifecycle.Applied {
		t.Fatalf("second Expire = %+v, %v; want applied", res, err)
	}
	if state := b.jobState(t, *claimed.TransitionJobID); state != "" {
		t.Errorf("the claimed trial's job is %q after the next batch, want deleted", state)
	}
}

// While a job follows, the job River fetches for a trial falling due
// leaves it to the follower's next batch: the trial is expired once, by
// the following job, and its own job finds the work done.
func TestExpiryJobsLeaveTheirTrialsToTheFollower(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, own, next, _ := followSetup(t)
	type result struct {
		res lifecycle.Result
		err error
	}
	fetched := make(chan result, 1)
	var once sync.Once
	// At the follower's first wait the next trial falls due, and River
	// fetches its job.
	lifecycle.OnFollowWait(b.svc, func(due time.Time) {
		once.Do(func() {
			b.clock.Set(due.Add(100 * time.Millisecond))
			go func() {
				res, err := b.svc.Expire(ctx, next.ID, next.ScheduleGen, "job:8")
				fetched <- result{res, err}
			}()
		})
	})

	res, err := b.svc.Expire(ctx, own.ID, own.ScheduleGen, "job:7")
	if err != nil || res.Outcome != lifecycle.Applied || len(res.Claimed) != 1 {
		t.Fatalf("following Expire = %+v, %v; want applied, following the next trial", res, err)
	}
	got := <-fetched
	if got.err != nil || got.res.Outcome != lifecycle.AlreadyApplied {
		t.Fatalf("the next trial's own Expire = %+v, %v; want already applied by the follower", got.res, got.err)
	}
	if ev := b.events(t, next.ID, domain.EventExpired); len(ev) != 1 || ev[0].Cause != "job:7" {
		t.Errorf("next trial's expired events = %+v, want one, caused by the following job:7", ev)
	}
}
