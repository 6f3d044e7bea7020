package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/config"
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

// A sweep expires the trials due by now, longest due first, up to the
// batch size, passing over any another transaction holds and any not yet
// due; each gets its own event caused by the sweep, its enterprise
// features removed and its own Delete job, and its expiry job is deleted
// from the queue. A full sweep says so, and the next takes the rest. A
// swept trial's own job, had River started it, finds the work done.
func TestExpireDueSweepsDueTrials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.cfg.ExpireBatch = 4
	b.svc = b.newService(t)
	// Due, in expiration order: d0..d4, one of them held; then one due in
	// the future.
	trials := startTrials(t, b,
		t0.Add(1*time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute), t0.Add(4*time.Minute), t0.Add(5*time.Minute),
		t0.Add(90*time.Second), // held
		t0.Add(2*time.Hour),    // not due
	)
	held, notDue := trials[5], trials[6]
	now := b.clock.Advance(time.Hour)
	lock := b.holdTrial(t, held.ID)

	first := sweep(t, b)
	if !first.Full || len(first.Expired) != 4 {
		t.Fatalf("first sweep = %+v; want full, 4 expired", first)
	}
	for i, tr := range trials[:4] {
		if want := (lifecycle.Claim{Due: tr.ExpirationDate, At: now}); first.Expired[i] != want {
			t.Errorf("expired[%d] = %+v, want %+v (longest due first)", i, first.Expired[i], want)
		}
		checkSwept(t, b, tr, now)
	}
	if got, _ := b.svc.Trial(ctx, trials[4].ID); got.State != domain.StateActive {
		t.Errorf("trial beyond the batch is %s, want active until the next sweep", got.State)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	if second := sweep(t, b); second.Full || len(second.Expired) != 2 {
		t.Fatalf("second sweep = %+v; want not full, the 2 left (the one beyond the batch, the one let go)", second)
	}
	checkSwept(t, b, trials[4], now)
	checkSwept(t, b, held, now)
	if got, _ := b.svc.Trial(ctx, notDue.ID); got.State != domain.StateActive {
		t.Errorf("trial not due is %s, want active", got.State)
	}
	if state := b.jobState(t, *notDue.TransitionJobID); state != "scheduled" {
		t.Errorf("the not-due trial's expiry job is %q, want scheduled", state)
	}
	if third := sweep(t, b); third.Full || len(third.Expired) != 0 {
		t.Fatalf("third sweep = %+v; want nothing", third)
	}

	res, err := b.svc.Expire(ctx, trials[2].ID, trials[2].ScheduleGen, "job:100")
	if err != nil || res.Outcome != lifecycle.AlreadyApplied {
		t.Fatalf("swept trial's own Expire = %+v, %v; want already applied", res, err)
	}
	if n := len(b.events(t, trials[2].ID, domain.EventExpired)); n != 1 {
		t.Fatalf("%d expired events after the swept trial's own job, want 1", n)
	}
}

// sweep runs one ExpireDue.
func sweep(t *testing.T, b *testBundle) lifecycle.Sweep {
	t.Helper()
	sw, err := b.svc.ExpireDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// checkSwept checks that a sweep expired tr at now: expired, with its
// grace period, one trial.expired event caused by the sweep, its
// organization's enterprise features off, a scheduled Delete job at the
// grace end recorded as its next transition, and its expiry job gone.
func checkSwept(t *testing.T, b *testBundle, tr domain.Trial, now time.Time) {
	t.Helper()
	ctx := context.Background()
	got, err := b.svc.Trial(ctx, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != domain.StateExpired || !got.ExpiredDate.Equal(now) || !got.GraceEndsAt.Equal(now.Add(b.cfg.GracePeriod)) {
		t.Errorf("trial %d = %s expired %v grace %v, want expired at %v", tr.ID, got.State, got.ExpiredDate, got.GraceEndsAt, now)
	}
	ev := b.events(t, tr.ID, domain.EventExpired)
	if len(ev) != 1 || ev[0].Cause != domain.SweepCause || ev[0].Actor != domain.System.String() || !ev[0].At.Equal(now) {
		t.Errorf("trial %d expired events = %+v, want one caused by %s", tr.ID, ev, domain.SweepCause)
	}
	var enterprise bool
	if err := b.pool.QueryRow(ctx, `SELECT o.enterprise_features FROM trials t
		JOIN organizations o ON o.id = t.organization_id
		JOIN river_job j ON j.id = t.transition_job_id AND j.kind = 'trial.delete' AND j.state = 'scheduled'
		WHERE t.id = $1 AND j.scheduled_at = t.grace_ends_at AND j.unique_key IS NULL`, tr.ID).Scan(&enterprise); err != nil {
		t.Errorf("trial %d: no scheduled Delete job without a unique key recorded at its grace end: %v", tr.ID, err)
	} else if enterprise {
		t.Errorf("trial %d's organization keeps enterprise features", tr.ID)
	}
	if state := b.jobState(t, *tr.TransitionJobID); state != "" {
		t.Errorf("swept trial %d's expiry job is %s, want deleted", tr.ID, state)
	}
}

// A trial's own expiry job expires its trial alone: the other due trials
// are the sweeps' (or their own jobs').
func TestExpireJobExpiresItsTrialAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	trials := startTrials(t, b, t0.Add(time.Minute), t0.Add(2*time.Minute))
	now := b.clock.Advance(time.Hour)
	res, err := b.svc.Expire(ctx, trials[1].ID, trials[1].ScheduleGen, "job:1")
	if err != nil || res.Outcome != lifecycle.Applied || !res.Due.Equal(trials[1].ExpirationDate) || !res.At.Equal(now) {
		t.Fatalf("Expire = %+v, %v; want applied, due %v, at %v", res, err, trials[1].ExpirationDate, now)
	}
	if ev := b.events(t, trials[1].ID, domain.EventExpired); len(ev) != 1 || ev[0].Cause != "job:1" {
		t.Errorf("expired events = %+v, want one caused by job:1", ev)
	}
	if got, _ := b.svc.Trial(ctx, trials[0].ID); got.State != domain.StateActive {
		t.Fatalf("the other due trial is %s, want active", got.State)
	}
}

// A sweep neither waits for an expiry job someone holds (River, making it
// available or running it) nor deletes it: it expires the trial, and the
// job, once let go and run, finds the work done.
func TestSweepLeavesAHeldJobToRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	trials := startTrials(t, b, t0.Add(time.Minute))
	tr := trials[0]
	now := b.clock.Advance(time.Hour)

	lock := b.holdJob(t, *tr.TransitionJobID)
	sweepCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sw, err := b.svc.ExpireDue(sweepCtx)
	if err != nil || len(sw.Expired) != 1 {
		t.Fatalf("ExpireDue = %+v, %v; want the trial expired without waiting for its held job", sw, err)
	}
	if state := b.jobState(t, *tr.TransitionJobID); state != "scheduled" {
		t.Fatalf("held job is %q, want left scheduled", state)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := b.svc.Expire(ctx, tr.ID, tr.ScheduleGen, "job:2")
	if err != nil || res.Outcome != lifecycle.AlreadyApplied {
		t.Fatalf("held job's Expire = %+v, %v; want already applied", res, err)
	}
	if ev := b.events(t, tr.ID, domain.EventExpired); len(ev) != 1 || !ev[0].At.Equal(now) {
		t.Errorf("expired events = %+v, want the sweep's alone", ev)
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

// While the replicas sweep, a trial's expiry job is due lifecycle.
// expire_backstop after its date, so the sweep that expires the trial
// deletes the job while it still waits; an extension keeps that. With
// sweeping off, and on a test clock (whose trials no sweep takes), the job
// is due at the date.
func TestExpiryJobWaitsOutTheSweeps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	admin := domain.Actor{UserID: b.user(t, "admin"), Admin: true}
	exp := t0.Add(time.Hour)
	start := func(svc *lifecycle.Service, req lifecycle.StartTrialRequest) domain.Trial {
		t.Helper()
		started, err := svc.StartTrial(ctx, admin, req, "test")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := svc.Trial(ctx, started.TrialID)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	jobAt := func(tr domain.Trial) time.Time {
		t.Helper()
		var at time.Time
		if err := b.pool.QueryRow(ctx, `SELECT scheduled_at FROM river_job WHERE id = $1`, *tr.TransitionJobID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at.UTC()
	}

	swept := start(b.svc, lifecycle.StartTrialRequest{ExpirationDate: &exp})
	if want := exp.Add(b.cfg.ExpireBackstop); b.cfg.ExpirePoll <= 0 || b.cfg.ExpireBackstop <= 0 || !jobAt(swept).Equal(want) {
		t.Errorf("sweeping every %s: the expiry job is due at %v, want %v", b.cfg.ExpirePoll, jobAt(swept), want)
	}
	later := exp.Add(24 * time.Hour)
	if err := b.svc.UpdateTrial(ctx, domain.Operator, swept.ID, lifecycle.UpdateTrialRequest{ExpirationDate: &later}, "test"); err != nil {
		t.Fatal(err)
	}
	swept, _ = b.svc.Trial(ctx, swept.ID)
	if want := later.Add(b.cfg.ExpireBackstop); !jobAt(swept).Equal(want) {
		t.Errorf("after an extension the expiry job is due at %v, want %v", jobAt(swept), want)
	}

	clocks := config.Default().TestClocks
	clocks.Enabled = true
	withClocks := lifecycle.New(lifecycle.Deps{Pool: b.pool, Jobs: b.river, Clock: b.clock, Config: b.cfg, TestClocks: clocks,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	clk, err := withClocks.CreateTestClock(ctx, lifecycle.NewTestClock{Name: "rehearsal", FrozenTime: t0})
	if err != nil {
		t.Fatal(err)
	}
	if onClock := start(withClocks, lifecycle.StartTrialRequest{ExpirationDate: &exp, TestClockID: &clk.ID}); !jobAt(onClock).Equal(exp) {
		t.Errorf("on a test clock the expiry job is due at %v, want its date %v", jobAt(onClock), exp)
	}

	b.cfg.ExpirePoll = 0
	if alone := start(b.newService(t), lifecycle.StartTrialRequest{ExpirationDate: &exp}); !jobAt(alone).Equal(exp) {
		t.Errorf("with sweeping off the expiry job is due at %v, want its date %v", jobAt(alone), exp)
	}
}
