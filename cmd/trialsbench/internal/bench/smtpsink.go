package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpSink is the local mail server of the storm that owes e-mails: a
// real SMTP server (go-smtp) that reads each message whole and counts it,
// as a relay on loopback would take it.
type smtpSink struct {
	addr   string
	server *smtp.Server

	mu          sync.Mutex
	n           int
	first, last time.Time
}

func startSMTPSink() (*smtpSink, error) {
	s := &smtpSink{}
	s.server = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return sinkSession{s}, nil }))
	s.server.Domain, s.server.AllowInsecureAuth = "localhost", true
	s.server.ReadTimeout, s.server.WriteTimeout = time.Minute, time.Minute
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for SMTP: %w", err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = s.server.Serve(ln) }()
	return s, nil
}

// env points a daemon at the sink.
func (s *smtpSink) env() []string {
	return []string{"TRIALSD_EMAIL_SENDER=smtp", "TRIALSD_EMAIL_SMTP_ADDR=" + s.addr, "TRIALSD_EMAIL_SMTP_TLS=none"}
}

// taken is how many messages the sink accepted, the first and last when.
func (s *smtpSink) taken() (int, time.Time, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.first, s.last
}

func (s *smtpSink) close() error {
	if s == nil {
		return nil
	}
	if err := s.server.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return err
	}
	return nil
}

type sinkSession struct{ s *smtpSink }

func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }

func (ss sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	now := time.Now()
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.n == 0 {
		ss.s.first = now
	}
	ss.s.n++
	ss.s.last = now
	return nil
}
