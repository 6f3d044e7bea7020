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
	b.waitForDeliveries(t) // the server has the last message before its delivery is recorded
	evs := b.eventsAt(t, mustAtoi(t, kept))
	if got := evs["trial.email_sent"]; len(got) != 8 || got[0] != "2031-01-01T00:00:00.000Z" || got[7] != "2031-02-28T00:00:00.000Z" {
		t.Errorf("trial.email_sent in the kept trial's history at %v, want its 8 notices' simulated times", got)
	}
}

// waitForDeliveries waits until the outbox has recorded every e-mail's
// delivery.
func (b *testBundle) waitForDeliveries(t *testing.T) {
	t.Helper()
	eventually(t, "every e-mail's delivery recorded", func() bool {
		var waiting int
		_ = b.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE channel = 'email' AND delivered_at IS NULL`).Scan(&waiting)
		return waiting == 0
	})
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The reminders carry RFC 8058's one-click unsubscribe; the POST to the
// link, with no login, stops the reminders of that person and nothing
// else: the service messages about the data still reach them. Following
// the link (GET) only shows the button, and a forged or altered link is
// refused.
func TestUnsubscribeStopsTheRemindersOnly(t *testing.T) {
	t.Parallel()
	srv := testsmtp.Start(t, testsmtp.Options{})
	b := setupClocks(t, withMail(srv), func(c *config.Config) { c.Email.PublicURL = "https://trials.acme.example/" })
	b.start(t)
	status, body := b.do(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"optout","frozenTime":"2031-01-01T00:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("create clock: %d %v", status, body)
	}
	clock := int64(body["testClock"].(map[string]any)["id"].(float64))
	if status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, `{"userId":`+jsonInt(b.fredID(t))+`,"testClockId":`+jsonInt(clock)+`}`); status != http.StatusOK {
		t.Fatalf("create trial: %d %v", status, body)
	}
	b.advance(t, clock, "2031-01-02T00:00:00.000Z")
	welcome := srv.WaitFor(t, 1, 20*time.Second)[0]
	link := strings.Trim(welcome.Header.Get("List-Unsubscribe"), "<>")
	if !strings.HasPrefix(link, "https://trials.acme.example/v1/emails/unsubscribe?token=") ||
		welcome.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || !strings.Contains(welcome.Text, link) {
		t.Fatalf("the welcome's unsubscribe: %q, %q\n%s", link, welcome.Header.Get("List-Unsubscribe-Post"), welcome.Text)
	}
	path := strings.TrimPrefix(link, "https://trials.acme.example")
	post := func(path string) int {
		t.Helper()
		resp, err := http.Post(b.server.URL+path, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	resp, err := http.Get(b.server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, bad := range []string{path[:len(path)-3] + "AAA", strings.Replace(path, "token=", "token=9", 1), emailsPath("nonsense")} {
		if code := post(bad); code != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", bad, code)
		}
	}
	var unsubscribed *time.Time
	if err := b.pool.QueryRow(context.Background(), `SELECT reminders_unsubscribed_at FROM users WHERE username = 'fred'`).Scan(&unsubscribed); err != nil || unsubscribed != nil {
		t.Fatalf("fred unsubscribed (%v, %v) before the POST to his link: a GET or a forged link did it", unsubscribed, err)
	}
	if code := post(path); code != http.StatusOK {
		t.Fatalf("POST to the link: %d", code)
	}

	b.advance(t, clock, "2031-01-16T00:00:00.000Z")
	srv.WaitFor(t, 2, 20*time.Second)
	b.waitForDeliveries(t)
	got := notices(t, srv.Messages())
	if len(got) != 2 || got[1].template != "expired" {
		t.Errorf("after unsubscribing, fred got %v; want the welcome, then the expiry's notice and no reminder", got)
	}
	if h := srv.Messages()[len(srv.Messages())-1].Header.Get("List-Unsubscribe"); h != "" {
		t.Errorf("a service message carries List-Unsubscribe %q", h)
	}
}

func emailsPath(token string) string { return "/v1/emails/unsubscribe?token=" + token }
