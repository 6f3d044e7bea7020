package jobs

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
)

// The sweeper expires due trials without their jobs, counts each as an
// applied expiry with its lag, and goes again at once after a full sweep:
// with a batch of one and an hour between sweeps, three due trials expire
// in three sweeps straight on. A trial not due is left, and the sweeper
// stops when told.
func TestExpirySweeperDrainsWhatIsDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	cfg := config.Default().Lifecycle
	cfg.ExpireBatch = 1
	svc := lifecycle.New(lifecycle.Deps{Pool: b.pool, Jobs: b.client, Clock: b.clock, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ids := []int64{b.trialID} // due at t0+10d
	for _, exp := range []time.Time{t0.Add(10*day - time.Second), t0.Add(10*day - 2*time.Second), t0.Add(20 * day)} {
		started, err := svc.StartTrial(ctx, b.admin, lifecycle.StartTrialRequest{ExpirationDate: ptr(exp)}, "request:more")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, started.TrialID)
	}
	b.clock.Set(t0.Add(10 * day))

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ExpirySweeper{Lifecycle: svc, Observer: b.metrics, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Every: time.Hour}.Run(runCtx)
	}()
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	for !b.allExpired(t, ids[:3]) {
		if time.Now().After(deadline) {
			t.Fatal("the three due trials were not swept straight on")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done

	if tr, _ := b.svc.Trial(ctx, ids[3]); tr.State != domain.StateActive {
		t.Errorf("the trial due in 20 days is %s, want active", tr.State)
	}
	body := scrape(t, b.metrics)
	for _, line := range []string{
		`trialsd_transitions_total{kind="expire",outcome="applied"} 3`,
		`trialsd_transition_lag_seconds_count{kind="expire"} 3`,
		`trialsd_transition_lag_seconds_sum{kind="expire"} 3`, // lags 0, 1 and 2 s
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// allExpired reports whether every trial of ids is expired.
func (b *testBundle) allExpired(t *testing.T, ids []int64) bool {
	t.Helper()
	for _, id := range ids {
		tr, err := b.svc.Trial(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tr.State != domain.StateExpired {
			return false
		}
	}
	return true
}
