package outbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/wneessen/go-mail"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
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

// RejectedError is a relay's permanent refusal of an e-mail (an SMTP 5xx
// answer): trying again would get the same answer, so the message is
// marked failed at once instead of retried.
type RejectedError struct {
	// Code is the SMTP reply code, 500–599.
	Code int
	Err  error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("the relay refused the e-mail (%d): %v", e.Code, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// SMTPSender sends e-mails through an SMTP relay with go-mail, which
// writes the MIME (multipart/alternative, encoded headers and bodies,
// Message-ID, Date), speaks STARTTLS or implicit TLS and authenticates.
type SMTPSender struct {
	cfg   config.Email
	clock clock.Clock
	host  string
	port  int
	tls   *tls.Config
}

// NewSMTPSender returns the sender of email.* (smtp_addr, smtp_tls, the
// login, smtp_ca_file), as the configuration checked them; an e-mail
// without a Date is dated by clk. An unreadable CA file is an error here,
// at start-up, not at the first e-mail.
func NewSMTPSender(cfg config.Email, clk clock.Clock) (*SMTPSender, error) {
	host, portText, _ := net.SplitHostPort(cfg.SMTPAddr)
	port, _ := strconv.Atoi(portText)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.SMTPCAFile != "" {
		pem, err := os.ReadFile(cfg.SMTPCAFile)
		if err != nil {
			return nil, fmt.Errorf("email.smtp_ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("email.smtp_ca_file %s holds no PEM certificate", cfg.SMTPCAFile)
		}
	}
	return &SMTPSender{cfg: cfg, clock: clk, host: host, port: port, tls: tc}, nil
}

// options are the go-mail client options of email.*.
func (s *SMTPSender) options() []mail.Option {
	opts := []mail.Option{mail.WithPort(s.port), mail.WithTimeout(s.cfg.SMTPTimeout),
		mail.WithTLSConfig(s.tls)}
	switch s.cfg.SMTPTLS {
	case config.SMTPImplicitTLS:
		opts = append(opts, mail.WithSSL())
	case config.SMTPStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case config.SMTPOpportunisticTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.cfg.SMTPUsername != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain),
			mail.WithUsername(s.cfg.SMTPUsername), mail.WithPassword(s.cfg.SMTPPassword))
	}
	return opts
}

// Send delivers m to the relay, on a connection of its own. A 5xx answer
// is a *RejectedError; anything else that fails (a 4xx, a dropped
// connection, a timeout) may succeed later. It returns once the relay has
// taken the message (its 250 to the data), and says goodbye (QUIT)
// afterwards, in the background: the relay is responsible for the message
// from its 250, so neither a failed QUIT nor the wait for it may make the
// outbox send the message again, and the sooner the caller records the
// hand-off, the narrower the moment a crash would (docs/emails.md).
func (s *SMTPSender) Send(ctx context.Context, m Email) error {
	msg, err := s.message(m)
	if err != nil {
		return &RejectedError{Code: 550, Err: err}
	}
	mc, err := mail.NewClient(s.host, s.options()...)
	if err != nil {
		return fmt.Errorf("configuring the SMTP client: %w", err)
	}
	conn, err := mc.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", s.cfg.SMTPAddr, err)
	}
	err = mc.SendWithSMTPClient(conn, msg)
	go func() { _ = mc.CloseWithSMTPClient(conn) }()
	if err != nil {
		var se *mail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 {
			return &RejectedError{Code: se.ErrorCode(), Err: err}
		}
		return fmt.Errorf("sending e-mail through %s: %w", s.cfg.SMTPAddr, err)
	}
	return nil
}

// message is m as go-mail's message: plain text, with the HTML as its
// alternative when m has one. A header that cannot be written (a line
// break in the subject, an address that is not one) is an error.
func (s *SMTPSender) message(m Email) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return nil, fmt.Errorf("email.from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	if err := checkHeader(m.Subject); err != nil {
		return nil, err
	}
	msg.Subject(m.Subject)
	date := m.Date
	if date.IsZero() {
		date = s.clock.Now()
	}
	msg.SetDateWithValue(date.UTC())
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	} else {
		msg.SetMessageID()
	}
	for _, h := range m.Headers {
		if err := checkHeader(h.Value); err != nil {
			return nil, err
		}
		msg.SetGenHeader(mail.Header(h.Name), h.Value)
	}
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// checkHeader refuses a header value with a line break, which would let
// the value write headers of its own.
func checkHeader(v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return errors.New("e-mail header contains a line break")
	}
	return nil
}
