// Package chaos_test drives real trialsd processes through faults. It
// watches another process's progress the only way it can, by polling the
// database; every wait is bounded.
package chaos_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/testdb"
)

// built is the daemon's binary, built once for the package's tests.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// trialsdBinary builds the daemon, once for every test of the package, as
// make build and the benchmark do (CGO_ENABLED=0, -trimpath): the binary
// production runs, and one the go command's cache shares with them, not a
// second compile of everything.
func trialsdBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "trialsd-chaos-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "trialsd")
		cmd := exec.Command("go", "build", "-trimpath", "-o", built.bin, "github.com/trialsd/trialsd/cmd/trialsd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building trialsd: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDaemon runs `trialsd serve` on the database, its log in a file;
// extra are more TRIALSD_* settings.
func startDaemon(t *testing.T, bin, dbURL, name string, extra ...string) *exec.Cmd {
	t.Helper()
	logFile, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"TRIALSD_DATABASE_URL="+dbURL,
		"TRIALSD_HTTP_ADDR="+freeAddr(t),
		"TRIALSD_AUTH_JWT_SECRET=chaos-chaos-chaos-chaos-chaos-chaos",
		"TRIALSD_TURNSTILE_ENABLED=false",
		"TRIALSD_LIFECYCLE_EXPIRE_BACKSTOP="+chaosBackstop.String(),
		"TRIALSD_RIVER_JOB_TIMEOUT=2s",
		"TRIALSD_RIVER_RESCUE_STUCK_JOBS_AFTER=3s",
		"TRIALSD_RIVER_FETCH_POLL_INTERVAL=100ms",
		// Many expiry jobs running at once, as the kill points need: with
		// the default 4, a kill may find none of them mid-flight.
		"TRIALSD_RIVER_EXPIRY_WORKERS=200",
		"TRIALSD_LOG_LEVEL=warn",
	)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			// Failed requests first: River's retries would push them out of the tail.
			for _, line := range strings.Split(string(log), "\n") {
				if strings.Contains(line, `"msg":"request failed"`) {
					t.Logf("%s: %s", name, line)
				}
			}
			t.Logf("%s log:\n%s", name, tail(string(log), 3000))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// faultTest marks a test that drives real daemons (and perhaps a Postgres
// server of its own): it runs in parallel with the others, and not at all
// with -short.
func faultTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real daemons; skipped with -short")
	}
	t.Parallel()
}

// expiredCounter counts the expired trials, for waits and checks.
func expiredCounter(t *testing.T, pool *pgxpool.Pool) func() int {
	return func() int { return count(t, pool, `SELECT count(*) FROM trials WHERE state = 'expired'`) }
}

// waitFor polls cond every 50 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A daemon SIGKILLed in the middle of an expiry storm loses nothing and
// doubles nothing: after a restart every trial is expired, with exactly one
// trial.expired event and exactly one live Delete job.
func TestCrashMidStorm(t *testing.T) {
	faultTest(t)
	trials := 10_000
	if n, err := strconv.Atoi(os.Getenv("TRIALSD_CHAOS_TRIALS")); err == nil {
		trials = n
	}
	bin := trialsdBinary(t)
	pool, dbURL := testdb.NewWithURL(t)
	createDueTrials(t, pool, trials, 2*time.Second)
	g := holdLastTrial(t, pool, dbURL)

	expired := expiredCounter(t, pool)
	first := startDaemon(t, bin, dbURL, "first")
	waitFor(t, 60*time.Second, "a fifth of the storm", func() bool { return expired() >= trials/5 })
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	g.open()
	t.Logf("SIGKILL with %d of %d trials expired", expired(), trials)

	startDaemon(t, bin, dbURL, "second")
	waitFor(t, 120*time.Second, "every trial to expire", func() bool { return expired() == trials })

	checkExpiredOnce(t, pool, trials)
}

// createDueTrials creates n trials due after in, concurrently, with the
// daemon's own code.
// chaosBackstop is lifecycle.expire_backstop in the fault tests, for the
// trials they create and the daemons they start.
const chaosBackstop = 2 * time.Second

// noEligibilityRules turns the eligibility rules off: the fault tests give
// one admin user all their trials.
func noEligibilityRules(cfg *config.Config) {
	e := &cfg.Eligibility
	e.OnePerAddress, e.ActivePerDomain, e.TrialsPerDomain, e.BlockDisposable = false, 0, 0, false
}

func createDueTrials(t *testing.T, pool *pgxpool.Pool, n int, in time.Duration) {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	noEligibilityRules(cfg)
	// The fault tests wait for every expiry job to finish, a backstop
	// after its trial's date: 2 s, not the default 30 s, keeps them short.
	cfg.Lifecycle.ExpireBackstop = chaosBackstop
	d, err := services.NewInsertOnly(services.Deps{Config: cfg, Logger: slog.New(slog.DiscardHandler), Pool: pool, Clock: clock.Real{}})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := d.Accounts.CreateAdmin(ctx, "chaosadmin", "chaos@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	due := time.Now().Add(in)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := d.Lifecycle.StartTrial(ctx, domain.Actor{UserID: admin.ID, Admin: true},
					lifecycle.StartTrialRequest{ExpirationDate: &due}, "request:chaos"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A bulk load leaves river_job without statistics until autovacuum
	// comes by, and River's scheduler query then takes tens of seconds per
	// 10k jobs (docs/operations.md says to analyze after an import).
	if _, err := pool.Exec(ctx, `ANALYZE river_job, trials`); err != nil {
		t.Fatal(err)
	}
}

// checkExpiredOnce asserts that every trial expired exactly once and awaits
// exactly one Delete, the one it records.
func checkExpiredOnce(t *testing.T, pool *pgxpool.Pool, trials int) {
	t.Helper()
	if n := count(t, pool, `SELECT count(*) FROM (SELECT trial_id FROM trial_events WHERE kind = 'trial.expired' GROUP BY trial_id HAVING count(*) <> 1) x`); n != 0 {
		t.Errorf("%d trials with other than one trial.expired event", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM trial_events WHERE kind = 'trial.expired'`); n != trials {
		t.Errorf("%d trial.expired events for %d trials", n, trials)
	}
	live := `state IN ('available', 'scheduled', 'running', 'retryable', 'pending')`
	if n := count(t, pool, fmt.Sprintf(`SELECT count(*) FROM (SELECT args->>'trial_id' FROM river_job WHERE kind = 'trial.delete' AND %s GROUP BY 1 HAVING count(*) <> 1) x`, live)); n != 0 {
		t.Errorf("%d trials with more than one live Delete job", n)
	}
	if n := count(t, pool, fmt.Sprintf(`SELECT count(*) FROM river_job WHERE kind = 'trial.delete' AND %s`, live)); n != trials {
		t.Errorf("%d live Delete jobs for %d expired trials", n, trials)
	}
	if n := count(t, pool, fmt.Sprintf(`SELECT count(*) FROM trials t LEFT JOIN river_job j ON j.id = t.transition_job_id AND j.kind = 'trial.delete' AND j.%s WHERE j.id IS NULL`, live)); n != 0 {
		t.Errorf("%d trials whose recorded Delete job is not live", n)
	}
}

// Three replicas share the database through a storm and a rolling restart:
// no transition is lost or doubled, and the periodic reconcile (every
// minute here) is enqueued at most once per tick whoever leads.
func TestReplicasThroughRollingRestart(t *testing.T) {
	faultTest(t)
	const trials = 4000
	bin := trialsdBinary(t)
	pool, dbURL := testdb.NewWithURL(t)
	createDueTrials(t, pool, trials, 3*time.Second)
	g := holdLastTrial(t, pool, dbURL)
	everyMinute := "TRIALSD_LIFECYCLE_RECONCILE_SCHEDULE=* * * * *"

	replicas := []*exec.Cmd{
		startDaemon(t, bin, dbURL, "replica-1", everyMinute),
		startDaemon(t, bin, dbURL, "replica-2", everyMinute),
		startDaemon(t, bin, dbURL, "replica-3", everyMinute),
	}
	expired := expiredCounter(t, pool)
	waitFor(t, 60*time.Second, "a tenth of the storm", func() bool { return expired() >= trials/10 })
	// Rolling restart: each replica in turn stops gracefully and is
	// replaced, while the storm still runs (its last trial is held).
	for i, r := range replicas {
		_ = r.Process.Signal(syscall.SIGTERM)
		_ = r.Wait()
		startDaemon(t, bin, dbURL, fmt.Sprintf("replica-%d-new", i+1), everyMinute)
	}
	g.open()
	waitFor(t, 120*time.Second, "every trial to expire", func() bool { return expired() == trials })
	checkExpiredOnce(t, pool, trials)
	if n := count(t, pool, `SELECT count(*) FROM (SELECT args->>'tick' FROM river_job WHERE kind = 'trials.reconcile' GROUP BY 1 HAVING count(*) > 1) x`); n != 0 {
		t.Errorf("%d reconcile ticks enqueued more than once", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM river_leader`); n > 1 {
		t.Errorf("%d leaders recorded", n)
	}
}
