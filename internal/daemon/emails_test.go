package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/testsmtp"
)

// withMail points the daemon's e-mails at srv.
func withMail(srv *testsmtp.Server) func(*config.Config) {
	return func(c *config.Config) {
		c.Email.Sender, c.Email.SMTPAddr, c.Email.SMTPTLS = "smtp", srv.Addr, config.SMTPNoTLS
		c.Email.From = "Trials <trials@acme.example>"
	}
}

// sent is one notice as the SMTP server got it: its template (from its
// Message-ID), its Date, to whom.
type sent struct {
	trial, template, date, to string
}

func (s sent) String() string { return s.trial + " " + s.template + " " + s.date + " → " + s.to }

// notices reads the notices the server holds, in the order it got them.
func notices(t *testing.T, msgs []testsmtp.Message) []sent {
	t.Helper()
	var out []sent
	for _, m := range msgs {
		// notice.<trial>.<generation>.<template>.<before>.<recipient>@domain
		parts := strings.Split(strings.Trim(m.Header.Get("Message-ID"), "<>"), ".")
		if len(parts) < 6 || parts[0] != "notice" {
			t.Fatalf("a message that is no notice: %q", m.Header.Get("Message-ID"))
		}
		d, err := m.Header.Date()
		if err != nil {
			t.Fatalf("Date %q: %v", m.Header.Get("Date"), err)
		}
		out = append(out, sent{trial: parts[1], template: parts[3], date: d.UTC().Format("01-02T15"), to: strings.Join(m.To, ",")})
	}
	return out
}

// A trial's whole life on a test clock reaches its people as e-mails,
// each once, on simulated dates: the welcome, the reminders of the dates
// it has after an extension (never those of the date it had), the expiry
// with the deletion date, the warnings and the deletion. A trial upgraded
// before its end gets the confirmation and nothing after it.
func TestTestClockSendsTheTrialsEmails(t *testing.T) {
	t.Parallel()
	srv := testsmtp.Start(t, testsmtp.Options{})
	var log syncBuffer
	b := setupLogged(t, &log, withTestClocks, withMail(srv))
	if now := time.Now().UTC().Truncate(time.Second); now.After(b.clock.Now()) {
		b.clock.Set(now)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		rows, _ := b.pool.Query(context.Background(), `SELECT id, kind, state, queue, scheduled_at, args::text, errors::text FROM river_job ORDER BY id`)
		for rows.Next() {
			var id int64
			var kind, state, queue, args string
			var errs *string
			var at time.Time
			_ = rows.Scan(&id, &kind, &state, &queue, &at, &args, &errs)
			t.Logf("job %d %s %s %s %s %s %v", id, kind, state, queue, at.UTC().Format(time.RFC3339), args, errs)
		}
		rows.Close()
	})
	b.start(t)
	status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"mail","frozenTime":"2031-01-01T00:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("create clock: %d %v", status, body)
	}
	clock := int64(body["testClock"].(map[string]any)["id"].(float64))
	newTrial := func() string {
		t.Helper()
		status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+jsonInt(b.fredID(t))+`,"testClockId":`+jsonInt(clock)+`}`)
		if status != http.StatusOK {
			t.Fatalf("create trial: %d %v", status, body)
		}
		return jsonInt(int64(body["id"].(float64)))
	}
	kept, upgraded := newTrial(), newTrial() // both end 01-15
	b.advance(t, clock, "2031-01-09T00:00:00.000Z")
	if status, body := b.do(t, "PUT", "/v1/api/admin/trials/"+kept, b.admin, `{"expirationDate":"2031-01-29T00:00:00Z"}`); status != http.StatusOK {
		t.Fatalf("extend: %d %v", status, body)
	}
	if status, body := b.do(t, "POST", "/v1/api/admin/trials/"+upgraded+"/upgrade", b.admin, `{}`); status != http.StatusOK {
		t.Fatalf("upgrade: %d %v", status, body)
	}
	b.advance(t, clock, "2031-03-05T00:00:00.000Z")

	fred := "fred@acme.example"
	want := []sent{
		{kept, "welcome", "01-01T00", fred}, {upgraded, "welcome", "01-01T00", fred},
		{kept, "ending", "01-08T00", fred}, {upgraded, "ending", "01-08T00", fred},
		{upgraded, "upgraded", "01-09T00", fred},
		{kept, "ending", "01-22T00", fred}, {kept, "ending", "01-28T00", fred},
		{kept, "expired", "01-29T00", fred},
		{kept, "deletion_warning", "02-21T00", fred}, {kept, "deletion_warning", "02-27T00", fred},
		{kept, "deleted", "02-28T00", fred},
	}
	got := notices(t, srv.WaitFor(t, len(want), 20*time.Second))
	key := func(s sent) string { return s.date + s.trial + s.template }
	slices.SortFunc(got, func(a, b sent) int { return strings.Compare(key(a), key(b)) })
	slices.SortFunc(want, func(a, b sent) int { return strings.Compare(key(a), key(b)) })
	if !slices.Equal(got, want) {
		t.Errorf("the SMTP server got\n%v\nwant\n%v", got, want)
	}
	for _, m := range srv.Messages() {
		if strings.Contains(m.Header.Get("Message-ID"), ".expired.") &&
			(!strings.Contains(m.Subject(), "deleted on Friday 28 February 2031") || !strings.Contains(m.HTML, "<b>Friday 28 February 2031")) {
			t.Errorf("the expiry's e-mail does not give the deletion date: %q\n%s", m.Subject(), m.HTML)
		}
	}
	evs := b.eventsAt(t, mustAtoi(t, kept))
	if got := evs["trial.email_sent"]; len(got) != 8 || got[0] != "2031-01-01T00:00:00.000Z" || got[7] != "2031-02-28T00:00:00.000Z" {
		t.Errorf("trial.email_sent in the kept trial's history at %v, want its 8 notices' simulated times", got)
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
