package chaos_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/internal/testdb"
)

// behindPgBouncer is what the daemon needs in front of PgBouncer in
// transaction mode, as docs/operations.md sets it out: River polls instead
// of LISTEN (session state the pooler does not keep).
const behindPgBouncer = "TRIALSD_RIVER_POLL_ONLY=true"

// pgbouncerPoolSize is the pooler's server sessions per database: fewer
// than the two daemons' pools (database.max_conns each), so they share.
const pgbouncerPoolSize = 20

// startPgBouncer runs Debian's pgbouncer in transaction pooling mode in
// front of the Postgres at upstream (host:port), every database passed
// through, and returns the address it listens on. It skips the test when
// pgbouncer is not installed.
func startPgBouncer(t *testing.T, upstream string) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer" // Debian's, outside a non-root PATH
		if _, statErr := os.Stat(bin); statErr != nil {
			t.Skip("pgbouncer is not installed (apt-get install pgbouncer); .ci/run installs it")
		}
	}
	host, port, _ := strings.Cut(upstream, ":")
	dir := serverDir(t)
	addr := freeAddr(t)
	_, listenPort, _ := strings.Cut(addr, ":")
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %s
unix_socket_dir =
auth_type = trust
auth_file = %[4]s/userlist.txt
pool_mode = transaction
default_pool_size = %[5]d
max_client_conn = 500
logfile = %[4]s/pgbouncer.log
pidfile = %[4]s/pgbouncer.pid
`, host, port, listenPort, dir, pgbouncerPoolSize)
	for name, text := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": `"postgres" ""` + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := serverCommand(bin, filepath.Join(dir, "pgbouncer.ini"))
	// A group of its own: runuser's child is stopped with it, by its id.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pgbouncer: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Logf("pgbouncer log:\n%s", tail(string(log), 3000))
		}
	})
	waitFor(t, 15*time.Second, "pgbouncer to accept connections", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, "postgres://postgres@"+addr+"/postgres?sslmode=disable&default_query_exec_mode=exec")
		if err != nil {
			return false
		}
		_ = conn.Close(ctx)
		return true
	})
	return addr
}

// throughPooler is dbURL with its host and port replaced by the pooler's
// at addr, and pgx told to execute queries as transaction pooling allows:
// default_query_exec_mode=exec sends each query as one unnamed statement,
// parsed, bound and run in a single round trip, where pgx's default
// prepares named statements on a server connection that the next
// transaction may not get.
func throughPooler(t *testing.T, dbURL, addr string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	q := u.Query()
	q.Set("default_query_exec_mode", "exec")
	u.RawQuery = q.Encode()
	return u.String()
}

// The daemon runs through PgBouncer in transaction pooling mode, migrated
// through a direct connection (database.migrate_url), and an expiry storm
// ends with every trial expired exactly once.
func TestStormThroughPgBouncer(t *testing.T) {
	faultTest(t)
	trials := 3000
	if n, err := strconv.Atoi(os.Getenv("TRIALSD_CHAOS_TRIALS")); err == nil {
		trials = n
	}
	bin := trialsdBinary(t)
	direct := testdb.NewEmpty(t)
	u, _ := url.Parse(direct)
	pooled := throughPooler(t, direct, startPgBouncer(t, u.Host))
	env := []string{"TRIALSD_DATABASE_URL=" + pooled, "TRIALSD_DATABASE_MIGRATE_URL=" + direct}

	// The schema goes in over the direct URL: its advisory lock is held by
	// one session, which the pooler would not keep.
	migrate := exec.Command(bin, "migrate", "up")
	migrate.Env = append(os.Environ(), env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("trialsd migrate up: %v\n%s", err, out)
	}
	ctx := context.Background()
	pool, err := database.Open(ctx, database.PoolConfig{URL: direct, MaxConns: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	created := time.Now()
	createDueTrials(t, pool, trials, 2*time.Second)
	t.Logf("%d trials created in %s", trials, time.Since(created).Round(time.Millisecond))

	expired := expiredCounter(t, pool)
	started := time.Now()
	startDaemon(t, bin, pooled, "replica-1", behindPgBouncer)
	startDaemon(t, bin, pooled, "replica-2", behindPgBouncer)
	waitFor(t, 60*time.Second, "every trial to expire", func() bool { return expired() == trials })
	t.Logf("the storm expired through the pooler %s after the daemons started", time.Since(started).Round(time.Millisecond))
	checkExpiredOnce(t, pool, trials)
	if n := listeningServers(t, pooled); n != 0 {
		t.Errorf("%d of the pooler's server sessions were left LISTENing by the daemons (river.poll_only is off?)", n)
	}
}

// listeningServers counts the LISTEN channels left on the pooler's server
// sessions. A LISTEN sent through transaction pooling lands on whichever
// server session the pooler picks, stays there after the client moves on,
// and its notifications reach no one (PgBouncer logs "got packet 'A' from
// server when not linked"). It holds a transaction on every server session
// of the pool at once (default_pool_size), so each is asked once.
func listeningServers(t *testing.T, pooled string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pids := map[int]bool{}
	channels := 0
	for range pgbouncerPoolSize {
		conn, err := pgx.Connect(ctx, pooled)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck // only ends the pin
		var pid, n int
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid(), (SELECT count(*) FROM pg_listening_channels())`).Scan(&pid, &n); err != nil {
			t.Fatal(err)
		}
		pids[pid] = true
		channels += n
	}
	if len(pids) != pgbouncerPoolSize {
		t.Fatalf("asked %d server sessions, want all %d of the pool", len(pids), pgbouncerPoolSize)
	}
	return channels
}
