package chaos_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/testdb"
)

// clockTrials is how many trials each clock of the fault test holds.
const clockTrials = 20

// A daemon SIGKILLed in the middle of two clocks' advances: two replicas
// started after it finish both, and every trial on each clock went through
// every transition exactly once, at its simulated due date.
func TestKillMidTestClockAdvance(t *testing.T) {
	faultTest(t)
	bin := trialsdBinary(t)
	pool, dbURL := testdb.NewWithURL(t)
	ctx := context.Background()
	cfg := config.Default()
	noEligibilityRules(cfg)
	cfg.TestClocks.Enabled = true
	svc, err := services.NewInsertOnly(services.Deps{Config: cfg, Logger: slog.New(slog.DiscardHandler), Pool: pool, Clock: clock.Real{}})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := svc.Accounts.CreateAdmin(ctx, "chaosadmin", "chaos@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	var clocks []int64
	for _, name := range []string{"first", "second"} {
		clk, err := svc.Lifecycle.CreateTestClock(ctx, lifecycle.NewTestClock{Name: name, FrozenTime: start})
		if err != nil {
			t.Fatal(err)
		}
		for range clockTrials {
			if _, err := svc.Lifecycle.StartTrial(ctx, domain.Operator,
				lifecycle.StartTrialRequest{UserID: admin.ID, TestClockID: &clk.ID}, "request:chaos"); err != nil {
				t.Fatal(err)
			}
		}
		clocks = append(clocks, clk.ID)
	}
	// The first clock's last deletion waits at the gate: its advance is
	// sure to be mid-way when the daemon dies.
	last := count(t, pool, `SELECT max(id) FROM trials WHERE test_clock_id = `+itoa(int(clocks[0])))
	g := newGate(t, pool, dbURL, "INSERT", "trial_events", `NEW.kind = 'trial.deleted' AND NEW.trial_id = `+itoa(last))
	g.close()

	env := "TRIALSD_TEST_CLOCKS_ENABLED=true"
	first := startDaemon(t, bin, dbURL, "first", env)
	target := start.AddDate(0, 0, 80)
	for _, id := range clocks {
		if _, err := svc.Lifecycle.AdvanceTestClock(ctx, id, target); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "the first clock's advance to reach the gate", func() bool { return g.waiting() > 0 })
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	g.open()

	startDaemon(t, bin, dbURL, "second", env)
	startDaemon(t, bin, dbURL, "third", env)
	waitFor(t, 90*time.Second, "both clocks ready at the target", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_clocks WHERE status = 'ready' AND frozen_time = '2031-03-22T00:00:00Z'`) == 2
	})
	checkClockLives(t, pool)
}

// checkClockLives asserts that every trial on the clocks has each event of
// its life once, at its simulated due date, and that none of them is left:
// each was purged at the end.
func checkClockLives(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	trials := 2 * clockTrials
	for kind, at := range map[string]string{
		"trial.created": "2031-01-01", "trial.will_end": "2031-01-12", "trial.expired": "2031-01-15",
		"trial.deleted": "2031-02-14", "trial.purged": "2031-03-16",
	} {
		sql := `SELECT count(*) FROM trial_events WHERE kind = '` + kind + `'`
		if n := count(t, pool, sql); n != trials {
			t.Errorf("%d %s events, want %d: one per trial", n, kind, trials)
		}
		if n := count(t, pool, `SELECT count(DISTINCT trial_id) FROM trial_events WHERE kind = '`+kind+`'`); n != trials {
			t.Errorf("%s events of %d trials, want %d", kind, n, trials)
		}
		if n := count(t, pool, sql+` AND at <> '`+at+`T00:00:00Z'`); n != 0 {
			t.Errorf("%d %s events not at %s", n, kind, at)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM trials`); n != 0 {
		t.Errorf("%d trials left after their purge", n)
	}
}
