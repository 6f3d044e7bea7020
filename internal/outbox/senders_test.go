package outbox_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/testsmtp"
)

// smtpConfig is email.* pointing at srv.
func smtpConfig(srv *testsmtp.Server, tlsMode string) config.Email {
	cfg := config.Default().Email
	cfg.Sender, cfg.SMTPAddr, cfg.SMTPTLS, cfg.From = "smtp", srv.Addr, tlsMode, "trialsd <no-reply@acme.example>"
	cfg.SMTPTimeout = 10 * time.Second
	return cfg
}

func newSender(t *testing.T, cfg config.Email) *outbox.SMTPSender {
	t.Helper()
	s, err := outbox.NewSMTPSender(cfg, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var sample = outbox.Email{
	To: "fred@bedrock.example", Subject: "Your trial ends in 3 days — Ünïcode",
	Body: "Hello Fred,\nyour trial ends.", HTML: "<p>Hello <b>Fred</b></p>",
	Date: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC), MessageID: "notice.42.1.ending@trialsd",
	Headers: []outbox.Header{{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"}},
}

// The sender writes one multipart/alternative message with the given
// Date, Message-ID and headers, encoded so a non-ASCII subject survives.
func TestSMTPSenderWritesTheWholeMessage(t *testing.T) {
	t.Parallel()
	srv := testsmtp.Start(t, testsmtp.Options{})
	if err := newSender(t, smtpConfig(srv, config.SMTPNoTLS)).Send(context.Background(), sample); err != nil {
		t.Fatal(err)
	}
	m := srv.WaitFor(t, 1, 10*time.Second)[0]
	if m.From != "no-reply@acme.example" || len(m.To) != 1 || m.To[0] != sample.To {
		t.Errorf("envelope %s → %v", m.From, m.To)
	}
	checks := map[string]string{
		"subject": m.Subject(), "text": strings.TrimSpace(m.Text), "html": strings.TrimSpace(m.HTML),
		"Message-ID": m.Header.Get("Message-ID"), "List-Unsubscribe-Post": m.Header.Get("List-Unsubscribe-Post"),
	}
	want := map[string]string{
		"subject": sample.Subject, "text": sample.Body, "html": sample.HTML,
		"Message-ID": "<" + sample.MessageID + ">", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
	}
	for k, v := range want {
		if checks[k] != v {
			t.Errorf("%s = %q, want %q", k, checks[k], v)
		}
	}
	if d, err := m.Header.Date(); err != nil || !d.Equal(sample.Date) {
		t.Errorf("Date = %v (%v), want %v", d, err, sample.Date)
	}
	if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type = %q", ct)
	}
}

// A header value with a line break is refused before anything is sent:
// it would write headers of its own.
func TestSMTPSenderRefusesHeaderInjection(t *testing.T) {
	t.Parallel()
	srv := testsmtp.Start(t, testsmtp.Options{})
	s := newSender(t, smtpConfig(srv, config.SMTPNoTLS))
	bad := sample
	bad.Subject = "a\r\nBcc: victim@z.example"
	if err := s.Send(context.Background(), bad); !errors.As(err, new(*outbox.RejectedError)) {
		t.Errorf("Send = %v, want a permanent refusal", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

// STARTTLS (required), implicit TLS and a login, each against a server
// that offers just that; a relay without STARTTLS is refused when it is
// required.
func TestSMTPSenderTLSAndAuth(t *testing.T) {
	t.Parallel()
	serverTLS, caPEM := testsmtp.SelfSigned(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts testsmtp.Options
		mode string
	}{
		{"starttls", testsmtp.Options{TLS: serverTLS, Username: "relay", Password: "s3cret"}, config.SMTPStartTLS},
		{"implicit", testsmtp.Options{TLS: serverTLS, Implicit: true, Username: "relay", Password: "s3cret"}, config.SMTPImplicitTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testsmtp.Start(t, tc.opts)
			cfg := smtpConfig(srv, tc.mode)
			cfg.SMTPCAFile, cfg.SMTPUsername, cfg.SMTPPassword = ca, "relay", "s3cret"
			if err := newSender(t, cfg).Send(context.Background(), sample); err != nil {
				t.Fatal(err)
			}
			cfg.SMTPPassword = "wrong"
			if err := newSender(t, cfg).Send(context.Background(), sample); err == nil {
				t.Error("a wrong password was accepted")
			}
		})
	}
	plain := testsmtp.Start(t, testsmtp.Options{})
	if err := newSender(t, smtpConfig(plain, config.SMTPStartTLS)).Send(context.Background(), sample); err == nil {
		t.Error("starttls required, yet sent over a relay that offers none")
	}
}

// The relay's answers are classified: 4xx is tried again by River, 5xx
// fails the message at once and says so.
func TestSMTPAnswersAreClassified(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	srv := testsmtp.Start(t, testsmtp.Options{})
	d := outbox.NewDeliverer(outbox.DelivererDeps{
		Pool: b.pool, Clock: b.clock, Writer: b.outbox, Config: b.cfg, Logger: slog.New(slog.DiscardHandler),
		Mail: newSender(t, smtpConfig(srv, config.SMTPNoTLS)),
	})
	for _, to := range []string{"busy@acme.example", "gone@acme.example"} {
		err := store.InTx(ctx, b.pool, func(tx pgx.Tx) error {
			return b.outbox.EnqueueEmail(ctx, tx, "classified:"+to, outbox.Email{To: to, Subject: "s", Body: "b"}, b.clock.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	srv.Answer(func(rcpt string) error {
		if strings.HasPrefix(rcpt, "busy") {
			return testsmtp.Reply(451, "try again later")
		}
		return testsmtp.Reply(550, "no such mailbox")
	})
	jobs := b.jobs(t)
	outcomes := map[string]string{}
	for _, j := range jobs {
		_, outcome, err := d.Deliver(ctx, outbox.Delivery{OutboxID: j.args.OutboxID})
		m, _ := store.New(b.pool).OutboxByID(ctx, j.args.OutboxID)
		outcomes[m.Destination] = outcome
		rejected := errors.As(err, new(*outbox.RejectedError))
		if rejected != strings.HasPrefix(m.Destination, "gone") || err == nil {
			t.Errorf("%s: error %v, rejected %v", m.Destination, err, rejected)
		}
		if failed := m.FailedAt != nil; failed != rejected {
			t.Errorf("%s: failed_at set %v after %v", m.Destination, failed, err)
		}
	}
	if outcomes["busy@acme.example"] != outbox.Retrying || outcomes["gone@acme.example"] != outbox.Failed {
		t.Errorf("outcomes %v, want busy retrying and gone failed", outcomes)
	}
	srv.Answer(nil)
	for _, j := range jobs {
		_, outcome, err := d.Deliver(ctx, outbox.Delivery{OutboxID: j.args.OutboxID})
		m, _ := store.New(b.pool).OutboxByID(ctx, j.args.OutboxID)
		if m.Destination == "busy@acme.example" && (outcome != outbox.Delivered || err != nil) {
			t.Errorf("the retry of the 451: %s, %v", outcome, err)
		}
	}
}

// A relay that took the message and then hangs up at QUIT has it: the
// send succeeded, and the outbox must not send it again.
func TestSMTPSenderTakenIsTaken(t *testing.T) {
	t.Parallel()
	srv := testsmtp.Start(t, testsmtp.Options{HangUpOnQuit: true})
	if err := newSender(t, smtpConfig(srv, config.SMTPNoTLS)).Send(context.Background(), sample); err != nil {
		t.Fatalf("Send = %v after the relay took the message", err)
	}
	if n := len(srv.WaitFor(t, 1, 10*time.Second)); n != 1 {
		t.Errorf("%d messages", n)
	}
}
