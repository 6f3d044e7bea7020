package chaos_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/database"
)

// standby makes a streaming replica of c (pg_basebackup -R, which writes
// primary_conninfo and standby.signal) and starts it on a port of its own.
func (c *cluster) standby() *cluster {
	c.t.Helper()
	s := &cluster{t: c.t, bin: c.bin, dir: serverDir(c.t), port: freePort(c.t)}
	s.run("pg_basebackup", "-h", "127.0.0.1", "-p", itoa(c.port), "-U", "postgres",
		"-D", s.data(), "-R", "-X", "stream", "-c", "fast", "--no-sync")
	s.start()
	c.t.Cleanup(s.stopIfRunning)
	return s
}

// promote turns a standby into a primary and returns once it accepts writes.
func (c *cluster) promote() { c.pgctl("promote", "-w", "-t", "60") }

// replicateSynchronously makes the primary under pool wait for a standby's
// flush before a commit returns, and returns once a standby is
// synchronous: from then on no commit the daemon saw succeed is lost by
// failing over. Set on the primary alone (ALTER SYSTEM after the base
// backup), so the promoted standby does not wait for a standby of its own.
func replicateSynchronously(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for _, sql := range []string{`ALTER SYSTEM SET synchronous_standby_names = '*'`, `SELECT pg_reload_conf()`} {
		if _, err := pool.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "a synchronous standby", func() bool {
		return count(t, pool, `SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'`) == 1
	})
}

// multiHostURL is the URL of database name on the first of clusters that
// accepts writes: pgx tries the hosts in order and, with
// target_session_attrs=read-write, passes over a standby.
func multiHostURL(name string, clusters ...*cluster) string {
	hosts := make([]string, len(clusters))
	for i, c := range clusters {
		hosts[i] = fmt.Sprintf("127.0.0.1:%d", c.port)
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&connect_timeout=5&target_session_attrs=read-write",
		strings.Join(hosts, ","), name)
}

// The primary fails in the middle of an expiry storm and its synchronous
// standby is promoted: the daemon, given both hosts, reports the outage on
// /readyz while no primary exists, reconnects to the new primary by itself,
// and every trial ends expired exactly once.
func TestPrimaryFailoverMidStorm(t *testing.T) {
	faultTest(t)
	const trials = 3000
	primary := newCluster(t)
	pool := primary.migrated("trialsd")
	standby := primary.standby()
	replicateSynchronously(t, pool)
	bin := trialsdBinary(t)
	createDueTrials(t, pool, trials, 3*time.Second)
	// The primary's stop releases the gate (its session dies with it);
	// until then the storm cannot end.
	holdLastTrial(t, pool, primary.url("trialsd"))

	addr := freeAddr(t)
	base := "http://" + addr
	both := multiHostURL("trialsd", primary, standby)
	startDaemon(t, bin, both, "daemon", "TRIALSD_HTTP_ADDR="+addr)
	waitFor(t, 30*time.Second, "the daemon to be ready", func() bool { return get(base+"/readyz") == http.StatusOK })
	expired := expiredCounter(t, pool)
	waitFor(t, 60*time.Second, "a fifth of the storm", func() bool { return expired() >= trials/5 })

	// The test reads the standby from here on; its sessions outlive the
	// promotion.
	replica := standbyPool(t, standby)
	primary.crash()
	t.Logf("the primary stopped with %d of %d trials expired on the standby", expiredCounter(t, replica)(), trials)
	waitFor(t, 15*time.Second, "/readyz to report that no primary is left", func() bool { return get(base+"/readyz") == http.StatusServiceUnavailable })

	standby.promote()
	promoted := time.Now()
	waitFor(t, 60*time.Second, "/readyz to recover on the new primary", func() bool { return get(base+"/readyz") == http.StatusOK })
	t.Logf("ready on the new primary %s after the promotion", time.Since(promoted).Round(time.Millisecond))
	expired = expiredCounter(t, replica)
	waitFor(t, 120*time.Second, "every trial to expire", func() bool { return expired() == trials })
	t.Logf("the storm ended %s after the promotion", time.Since(promoted).Round(time.Millisecond))
	checkExpiredOnce(t, replica, trials)
}

// standbyPool is a pool of the test's own on the standby's trialsd database.
func standbyPool(t *testing.T, s *cluster) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(context.Background(), database.PoolConfig{URL: s.url("trialsd"), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
