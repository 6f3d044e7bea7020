package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/internal/store"
)

// LogSender "sends" e-mails by logging them: the development sender. The
// address is masked; the body (which holds activation codes) is logged at
// debug level only, so a developer reads codes with log.level debug and a
// production log at info never holds them. Production uses SMTPSender.
type LogSender struct {
	Logger *slog.Logger
}

// Send logs m.
func (s LogSender) Send(ctx context.Context, m Email) error {
	s.Logger.InfoContext(ctx, "e-mail not delivered (email.sender is log)", "to", logging.MaskEmail(m.To), "subject", m.Subject)
	s.Logger.DebugContext(ctx, "e-mail body (log sender)", "to", logging.MaskEmail(m.To), "body", m.Body)
	return nil
}

// Logged is the outcome of an e-mail the log sender wrote to the log: done
// with, and delivered to nobody, which the counter of deliveries says.
const Logged = "logged"

// sentOutcome is what a successful attempt at m achieved: Logged for an
// e-mail the log sender took, else Delivered.
func (d *Deliverer) sentOutcome(m store.OutboxMessage) string {
	if _, logs := d.mail.(LogSender); logs && m.Channel == store.ChannelEmail {
		return Logged
	}
	return Delivered
}

// SMTPSender sends e-mails through an SMTP relay, with PLAIN auth when a
// username is set (net/smtp refuses it over an unencrypted remote link).
type SMTPSender struct {
	Addr, From, Username, Password string
	Clock                          func() time.Time
}

// Send delivers m to the relay.
func (s SMTPSender) Send(_ context.Context, m Email) error {
	var auth smtp.Auth
	if s.Username != "" {
		host, _, _ := strings.Cut(s.Addr, ":")
		auth = smtp.PlainAuth("", s.Username, s.Password, host)
	}
	for _, v := range []string{m.To, m.Subject} {
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("e-mail header contains a line break")
		}
	}
	// The envelope takes the bare address; the header keeps the display name.
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return fmt.Errorf("email.from %q is not an address: %w", s.From, err)
	}
	msg := "From: " + s.From + "\r\n" +
		"To: " + m.To + "\r\n" +
		"Subject: " + m.Subject + "\r\n" +
		"Date: " + s.Clock().UTC().Format(time.RFC1123Z) + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(m.Body, "\n", "\r\n")
	if err := smtp.SendMail(s.Addr, auth, from.Address, []string{m.To}, []byte(msg)); err != nil {
		return fmt.Errorf("sending e-mail through %s: %w", s.Addr, err)
	}
	return nil
}
