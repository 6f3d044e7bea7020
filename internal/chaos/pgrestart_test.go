package chaos_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/database"
)

// cluster is a PostgreSQL server of the test's own, so that crashing it
// does not touch the databases other tests share on 127.0.0.1:5432.
type cluster struct {
	t    *testing.T
	bin  string // the server's bin directory
	dir  string
	port int
}

// newCluster initialises and starts a throw-away cluster with trust auth.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: pgBinDir(t), dir: serverDir(t), port: freePort(t)}
	c.run("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	c.start()
	t.Cleanup(c.stopIfRunning)
	return c
}

// stopIfRunning stops the server unless a fault already did.
func (c *cluster) stopIfRunning() {
	// pg_ctl status exits 3 when no server runs on the directory.
	if serverCommand(filepath.Join(c.bin, "pg_ctl"), "status", "-D", c.data()).Run() == nil {
		c.pgctl("stop", "-m", "immediate")
	}
}

// migrated creates database name on the cluster and migrates it, and
// returns a pool on it for the test's own reads and writes.
func (c *cluster) migrated(name string) *pgxpool.Pool {
	c.t.Helper()
	ctx := context.Background()
	pool, err := database.Open(ctx, database.PoolConfig{URL: c.url(name), MaxConns: 8, CreateIfMissing: true})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(pool.Close)
	if err := database.MigrateUp(ctx, pool, slog.New(slog.DiscardHandler)); err != nil {
		c.t.Fatal(err)
	}
	return pool
}

// pgBinDir is the bin directory of the PostgreSQL server installed here.
func pgBinDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		t.Skipf("no PostgreSQL server binaries to run a cluster of the test's own (pg_config --bindir: %v)", err)
	}
	return strings.TrimSpace(string(out))
}

// asPostgres says whether servers run as the postgres user: initdb and
// pgbouncer refuse to run as root, as the tests do in CI.
func asPostgres() bool { return os.Geteuid() == 0 }

// serverDir is a directory for a server's files, removed after the test.
// Not t.TempDir: its parents are private to this user, and the server may
// run as another.
func serverDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "trialsd-server-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if asPostgres() {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("the tests run as root and there is no postgres user to run a server as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// serverCommand runs a server program, as the postgres user when the
// tests run as root.
func serverCommand(path string, args ...string) *exec.Cmd {
	if asPostgres() {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// url is the connection string of database name on the cluster.
func (c *cluster) url(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=5", c.port, name)
}

func (c *cluster) start() {
	c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "server.log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", c.port, c.dir))
}

// crash stops the server the way a power cut would: no checkpoint, every
// backend killed in the middle of whatever transaction it was in.
func (c *cluster) crash() { c.pgctl("stop", "-m", "immediate") }

func (c *cluster) pgctl(args ...string) {
	c.run("pg_ctl", append([]string{"-D", c.data()}, args...)...)
}

func (c *cluster) run(prog string, args ...string) {
	c.t.Helper()
	cmd := serverCommand(filepath.Join(c.bin, prog), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.t.Fatalf("%s %v: %v\n%s\nserver log:\n%s", prog, args, err, out, tail(string(log), 2000))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := strings.Cut(freeAddr(t), ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// statusOf makes one request with a deadline and returns its status; a
// request that does not answer in time fails the test (a hang is a bug).
func statusOf(t *testing.T, method, url, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Postgres crashes in the middle of an expiry storm and comes back: the
// daemon keeps running, reports the outage on /readyz, answers API
// requests 503 (promptly, neither 500 nor a hang) while the database is
// away, recovers by itself, and every trial ends expired exactly once:
// the transactions the crash cut off left nothing half-applied.
func TestPostgresCrashMidStorm(t *testing.T) {
	faultTest(t)
	const trials = 3000
	c := newCluster(t)
	dbURL := c.url("trialsd")
	pool := c.migrated("trialsd")
	bin := trialsdBinary(t)
	createDueTrials(t, pool, trials, 3*time.Second)
	// The crash releases the gate; until then the storm cannot end.
	holdLastTrial(t, pool, dbURL)

	addr := freeAddr(t)
	base := "http://" + addr
	startDaemon(t, bin, dbURL, "daemon", "TRIALSD_HTTP_ADDR="+addr)
	waitFor(t, 30*time.Second, "the daemon to be ready", func() bool { return get(base+"/readyz") == http.StatusOK })
	expired := expiredCounter(t, pool)
	waitFor(t, 60*time.Second, "a fifth of the storm", func() bool { return expired() >= trials/5 })

	c.crash()
	t.Log("PostgreSQL crashed in the middle of the storm")
	waitFor(t, 15*time.Second, "/readyz to report the outage", func() bool { return get(base+"/readyz") == http.StatusServiceUnavailable })
	if got := statusOf(t, http.MethodGet, base+"/healthz", ""); got != http.StatusOK {
		t.Errorf("/healthz answered %d during the outage, want 200: the process is fine", got)
	}
	login := `{"username":"someone","password":"a password"}`
	if got := statusOf(t, http.MethodPost, base+"/v1/api-login", login); got != http.StatusServiceUnavailable {
		t.Errorf("a login during the outage answered %d, want 503", got)
	}
	trialBody := `{"expirationDate":"2030-01-01T00:00:00Z"}`
	if got := statusOf(t, http.MethodPost, base+"/v1/api/user/trial", trialBody); got != http.StatusServiceUnavailable && got != http.StatusUnauthorized {
		t.Errorf("an unauthenticated start-trial during the outage answered %d, want 503 (or 401 before any lookup)", got)
	}

	c.start()
	t.Log("PostgreSQL is back")
	// The test's own connections died in the crash: fresh ones from here on.
	pool.Reset()
	waitFor(t, 60*time.Second, "/readyz to recover", func() bool { return get(base+"/readyz") == http.StatusOK })
	if got := statusOf(t, http.MethodPost, base+"/v1/api-login", login); got != http.StatusUnauthorized {
		t.Errorf("a bad login after the outage answered %d, want 401", got)
	}
	waitFor(t, 120*time.Second, "every trial to expire", func() bool { return expired() == trials })
	checkExpiredOnce(t, pool, trials)
}

// get returns a GET's status, 0 when the request fails.
func get(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
