package chaos_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/trialsd/trialsd/internal/testdb"
)

// gateKey is the advisory lock a gate trigger waits on. Lock waits are
// scoped to the test's database when counted, so parallel tests sharing the
// key on other databases do not see each other's waiters.
const gateKey = 7001

// gate pauses chosen statements of the daemon inside Postgres: a trigger
// takes gateKey shared, so while the test holds it exclusively, every
// statement the trigger fires for waits, its transaction open. That puts a
// SIGKILL at an exact point of a transition without a hook in the daemon.
type gate struct {
	t    *testing.T
	pool *pgxpool.Pool
	conn *pgx.Conn
}

// newGate installs the gate trigger on table for the rows when matches
// (a trigger WHEN condition over OLD/NEW); the gate starts open.
func newGate(t *testing.T, pool *pgxpool.Pool, dbURL, event, table, when string) *gate {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE FUNCTION chaos_gate() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN PERFORM pg_advisory_xact_lock_shared(` + itoa(gateKey) + `); RETURN NEW; END $$`,
		`CREATE TRIGGER chaos_gate BEFORE ` + event + ` ON ` + table + ` FOR EACH ROW WHEN (` + when + `) EXECUTE FUNCTION chaos_gate()`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("installing the gate: %v", err)
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &gate{t: t, pool: pool, conn: conn}
}

// close stops the gated statements; it returns once the transactions that
// passed the gate before it closed have finished.
func (g *gate) close() {
	if _, err := g.conn.Exec(context.Background(), `SELECT pg_advisory_lock($1)`, gateKey); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gate) open() {
	if _, err := g.conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, gateKey); err != nil {
		g.t.Fatal(err)
	}
}

// holdLastTrial closes a gate on the expiry of the newest trial, so the
// storm cannot end until the gate opens, however fast the machine: every
// batch that claims that trial waits, and the rest of the storm runs on.
// A test that waits for a share of the storm and then acts is sure to act
// in the middle of it.
func holdLastTrial(t *testing.T, pool *pgxpool.Pool, dbURL string) *gate {
	t.Helper()
	last := count(t, pool, `SELECT max(id) FROM trials`)
	g := newGate(t, pool, dbURL, "INSERT", "trial_events", `NEW.kind = 'trial.expired' AND NEW.trial_id = `+itoa(last))
	g.close()
	return g
}

// waiting counts the daemon's statements held at the gate.
func (g *gate) waiting() int {
	return count(g.t, g.pool, `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.objid = `+itoa(gateKey)+` AND NOT l.granted`)
}

// busyBackends counts the other sessions of the test's database that are
// not idle: after a kill, those of the dead daemon until Postgres notices.
func busyBackends(t *testing.T, pool *pgxpool.Pool) int {
	return count(t, pool, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`)
}

func itoa(n int) string { return strconv.Itoa(n) }

// A transition interrupted before its commit leaves nothing behind: the
// daemon is killed while transitions sit between their trial update and
// their commit; none of them is visible afterwards, and a new daemon
// applies each exactly once. The storm comes in two waves: the first
// expires in full, then the gate closes and the second is created, so
// every transition of the second is held, whatever the machine's speed.
func TestKillBeforeCommit(t *testing.T) {
	faultTest(t)
	const firstWave, secondWave = 500, 1500
	bin := trialsdBinary(t)
	pool, dbURL := testdb.NewWithURL(t)
	g := newGate(t, pool, dbURL, "INSERT", "trial_events", `NEW.kind = 'trial.expired'`)
	createDueTrials(t, pool, firstWave, 2*time.Second)
	expired := expiredCounter(t, pool)

	first := startDaemon(t, bin, dbURL, "first")
	waitFor(t, 60*time.Second, "the first wave to expire", func() bool { return expired() == firstWave })
	g.close()
	createDueTrials(t, pool, secondWave, time.Second)
	waitFor(t, 30*time.Second, "transitions held before their commit", func() bool { return g.waiting() >= 3 })
	held := g.waiting()
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	g.open()
	// The held transactions run on into the dead connection and roll back.
	waitFor(t, 30*time.Second, "the dead daemon's sessions to end", func() bool { return busyBackends(t, pool) == 0 })
	if n := expired(); n != firstWave {
		t.Fatalf("%d trials expired once the killed daemon's transactions ended, want the %d of the first wave: a transition outlived its rollback", n, firstWave)
	}
	t.Logf("SIGKILL with %d transitions held before commit, %d of %d trials expired", held, firstWave, firstWave+secondWave)

	startDaemon(t, bin, dbURL, "second")
	waitFor(t, 120*time.Second, "every trial to expire", func() bool { return expired() == firstWave+secondWave })
	checkExpiredOnce(t, pool, firstWave+secondWave)
}

// A transition committed whose job River had not yet marked completed runs
// again after the crash and finds nothing to do: River's completer is held
// at the gate from the start, the daemon killed, the stuck jobs rescued by
// the next one.
func TestKillAfterCommit(t *testing.T) {
	faultTest(t)
	const trials = 2000
	bin := trialsdBinary(t)
	pool, dbURL := testdb.NewWithURL(t)
	g := newGate(t, pool, dbURL, "UPDATE", "river_job", `OLD.kind = 'trial.expire' AND NEW.state = 'completed'`)
	createDueTrials(t, pool, trials, 2*time.Second)
	expired := expiredCounter(t, pool)
	committedNotCompleted := func() int {
		return count(t, pool, `SELECT count(*) FROM river_job j JOIN trials t ON t.id = (j.args->>'trial_id')::bigint
			WHERE j.kind = 'trial.expire' AND j.state = 'running' AND t.state = 'expired'`)
	}

	// Closed before the storm starts: no expiry job can be marked completed,
	// so committed transitions with running jobs are sure to pile up.
	g.close()
	first := startDaemon(t, bin, dbURL, "first", "TRIALSD_LIFECYCLE_EXPIRE_POLL=0s")
	waitFor(t, 60*time.Second, "committed transitions whose jobs are not completed", func() bool {
		return g.waiting() >= 1 && committedNotCompleted() >= 10
	})
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	g.open()
	waitFor(t, 30*time.Second, "the dead daemon's sessions to end", func() bool { return busyBackends(t, pool) == 0 })
	orphans := committedNotCompleted()
	t.Logf("SIGKILL with %d transitions committed whose jobs were still running", orphans)
	if orphans == 0 {
		t.Fatal("no committed transition was left with a running job: the kill missed its point")
	}

	startDaemon(t, bin, dbURL, "second")
	waitFor(t, 120*time.Second, "every trial to expire and every expiry job to finish", func() bool {
		return expired() == trials && count(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'trial.expire' AND state <> 'completed'`) == 0
	})
	checkExpiredOnce(t, pool, trials)
	if n := count(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'trial.expire' AND attempt > 1`); n < orphans {
		t.Errorf("%d expiry jobs ran again, want at least the %d left running at the kill", n, orphans)
	}
}

// webhookReceiver is a webhook endpoint that answers its first pass
// deliveries and holds every later one open until release, so the daemon
// dies in the middle of them whatever the machine's speed. It counts the
// deliveries it answered by event id, and those the Standard Webhooks
// library refused.
type webhookReceiver struct {
	pass     int64
	received atomic.Int64
	held     atomic.Int64
	release  chan struct{}
	refused  atomic.Int64

	mu        sync.Mutex
	delivered map[string]int
}

// chaosWebhookSecret signs the chaos daemons' deliveries.
const chaosWebhookSecret = "whsec_Y2hhb3Mtd2ViaG9vay1zZWNyZXQtY2hhb3Mtd2ViaG9vay0="

func newWebhookReceiver(t *testing.T, pass int64) (*webhookReceiver, string) {
	r := &webhookReceiver{pass: pass, release: make(chan struct{}), delivered: map[string]int{}}
	wh, err := standardwebhooks.NewWebhook(chaosWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Header.Get("webhook-id")
		body, _ := io.ReadAll(req.Body)
		if err := wh.Verify(body, req.Header); err != nil {
			r.refused.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.received.Add(1) > r.pass && !r.released() {
			r.held.Add(1)
			select {
			case <-r.release:
			case <-req.Context().Done():
			}
			http.Error(w, "held", http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		r.delivered[id]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/hooks"
}

// released tells whether release has been closed: deliveries pass again.
func (r *webhookReceiver) released() bool {
	select {
	case <-r.release:
		return true
	default:
		return false
	}
}

func (r *webhookReceiver) deliveredIDs() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.delivered))
	for id, n := range r.delivered {
		out[id] = n
	}
	return out
}

// A daemon killed while webhook deliveries are in flight delivers every
// event after its restart: each trial.expired event reaches the receiver,
// under the one event id the outbox gave it.
func TestKillDuringWebhookDelivery(t *testing.T) {
	faultTest(t)
	const trials = 1000
	bin := trialsdBinary(t)
	pool, dbURL := testdb.NewWithURL(t)
	recv, url := newWebhookReceiver(t, trials/10)
	hooks := []string{"TRIALSD_WEBHOOKS_ENDPOINTS=" + url, "TRIALSD_WEBHOOKS_SECRET=" + chaosWebhookSecret,
		"TRIALSD_WEBHOOKS_TIMEOUT=60s", "TRIALSD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true", "TRIALSD_WEBHOOKS_RETRY_SCHEDULE=100ms,1s,1s,1s,1s"}
	createDueTrials(t, pool, trials, 2*time.Second)

	first := startDaemon(t, bin, dbURL, "first", hooks...)
	waitFor(t, 60*time.Second, "deliveries held open", func() bool { return recv.held.Load() >= 3 })
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	held := recv.held.Load()
	close(recv.release)
	t.Logf("SIGKILL with %d deliveries in flight, %d delivered", held, len(recv.deliveredIDs()))

	startDaemon(t, bin, dbURL, "second", hooks...)
	undelivered := func() int {
		return count(t, pool, `SELECT count(*) FROM outbox WHERE channel = 'webhook' AND delivered_at IS NULL`)
	}
	waitFor(t, 120*time.Second, "every trial to expire and every webhook to be delivered", func() bool {
		return expiredCounter(t, pool)() == trials && undelivered() == 0
	})
	checkExpiredOnce(t, pool, trials)

	rows, err := pool.Query(context.Background(), `SELECT o.event_id FROM outbox o JOIN trial_events e ON o.event_id = 'evt_' || e.id
		WHERE o.channel = 'webhook' AND e.kind = 'trial.expired'`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != trials {
		t.Fatalf("%d trial.expired webhooks in the outbox for %d trials", len(ids), trials)
	}
	if n := recv.refused.Load(); n > 0 {
		t.Errorf("the Standard Webhooks library refused %d deliveries", n)
	}
	got := recv.deliveredIDs()
	for _, id := range ids {
		if got[id] == 0 {
			t.Errorf("event %s never delivered", id)
		}
	}
}
