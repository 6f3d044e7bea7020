package chaos_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/testdb"
	"github.com/trialsd/trialsd/internal/testsmtp"
)

// mailEnv points a daemon at srv.
func mailEnv(srv *testsmtp.Server) []string {
	return []string{"TRIALSD_EMAIL_SENDER=smtp", "TRIALSD_EMAIL_SMTP_ADDR=" + srv.Addr, "TRIALSD_EMAIL_SMTP_TLS=none"}
}

// byMessageID counts the server's messages by Message-ID.
func byMessageID(srv *testsmtp.Server) map[string]int {
	out := map[string]int{}
	for _, m := range srv.Messages() {
		out[m.Header.Get("Message-ID")]++
	}
	return out
}

// undelivered counts the e-mails the outbox still owes.
func undelivered(t *testing.T, pool *pgxpool.Pool) int {
	return count(t, pool, `SELECT count(*) FROM outbox WHERE channel = 'email' AND delivered_at IS NULL`)
}

// waitForMail waits until the outbox owes nothing and the server holds n
// distinct messages.
func waitForMail(t *testing.T, pool *pgxpool.Pool, srv *testsmtp.Server, n int) map[string]int {
	t.Helper()
	waitFor(t, 120*time.Second, "every e-mail delivered", func() bool {
		return count(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'trial.notify' AND state NOT IN ('completed', 'cancelled', 'discarded')`) == 0 &&
			undelivered(t, pool) == 0 && len(byMessageID(srv)) >= n
	})
	return byMessageID(srv)
}

// A daemon SIGKILLed while 1,000 trials each owe their welcome loses none:
// after a restart the SMTP server holds every one of the 1,000 notices,
// and a notice arrives twice only if the kill fell between the relay's
// acceptance and its record, the same Message-ID both times, so a
// receiver that drops repeated Message-IDs (as Gmail and Mailpit's
// --ignore-duplicate-ids do) shows it once. The doubles are counted, and
// bounded by the e-mails in flight at the kill (river.email_workers).
func TestCrashMidSend(t *testing.T) {
	faultTest(t)
	const trials = 1000
	bin := trialsdBinary(t)
	pool, dbURL := testdb.NewWithURL(t)
	createDueTrials(t, pool, trials, time.Hour) // each owes its welcome, nothing else for an hour
	srv := testsmtp.Start(t, testsmtp.Options{})

	first := startDaemon(t, bin, dbURL, "first", mailEnv(srv)...)
	waitFor(t, 60*time.Second, "a third of the e-mails", func() bool { return len(srv.Messages()) >= trials/3 })
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := len(srv.Messages())
	t.Logf("SIGKILL with %d of %d e-mails at the server", atKill, trials)

	startDaemon(t, bin, dbURL, "second", mailEnv(srv)...)
	ids := waitForMail(t, pool, srv, trials)
	doubles := len(srv.Messages()) - len(ids)
	t.Logf("%d messages at the server, %d distinct, %d sent again after the kill", len(srv.Messages()), len(ids), doubles)
	if len(ids) != trials {
		t.Errorf("%d distinct notices at the server, want %d", len(ids), trials)
	}
	if maxInFlight := 10; doubles > maxInFlight {
		t.Errorf("%d notices sent twice: more than the %d e-mail workers could have had in flight at the kill", doubles, maxInFlight)
	}
	if n := count(t, pool, `SELECT count(*) FROM trial_events WHERE kind = 'trial.email_sent'`); n != trials {
		t.Errorf("%d trial.email_sent events for %d notices", n, trials)
	}
}

// Two replicas working the same queue send each notice exactly once.
func TestReplicasSendEachEmailOnce(t *testing.T) {
	faultTest(t)
	const trials = 300
	bin := trialsdBinary(t)
	pool, dbURL := testdb.NewWithURL(t)
	createDueTrials(t, pool, trials, time.Hour)
	srv := testsmtp.Start(t, testsmtp.Options{})
	startDaemon(t, bin, dbURL, "replica-1", mailEnv(srv)...)
	startDaemon(t, bin, dbURL, "replica-2", mailEnv(srv)...)
	ids := waitForMail(t, pool, srv, trials)
	if len(ids) != trials || len(srv.Messages()) != trials {
		t.Errorf("%d messages, %d distinct, at the server; want %d, once each", len(srv.Messages()), len(ids), trials)
	}
}
