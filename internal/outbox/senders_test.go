package outbox_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/outbox"
)

// smtpServer is a minimal real SMTP server on loopback that accepts one
// message per connection and hands over what it received.
func smtpServer(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
		reply := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
		reply("220 localhost ESMTP test")
		var transcript strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			transcript.WriteString(line)
			switch {
			case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
				reply("250 localhost")
			case strings.HasPrefix(cmd, "DATA"):
				reply("354 go ahead")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					transcript.WriteString(l)
				}
				reply("250 queued")
				ch <- transcript.String()
			case strings.HasPrefix(cmd, "QUIT"):
				reply("221 bye")
				return
			default:
				reply("250 ok")
			}
		}
	}()
	return ln.Addr().String(), ch
}

func TestSMTPSender(t *testing.T) {
	t.Parallel()
	addr, got := smtpServer(t)
	s := outbox.SMTPSender{Addr: addr, From: "trialsd <no-reply@acme.example>", Clock: time.Now}
	err := s.Send(context.Background(), outbox.Email{To: "fred@bedrock.example", Subject: "Your code", Body: "Code: 123456\nThanks"})
	if err != nil {
		t.Fatal(err)
	}
	msg := <-got
	for _, want := range []string{"MAIL FROM:<no-reply@acme.example>", "RCPT TO:<fred@bedrock.example>", "Subject: Your code", "Code: 123456\r\nThanks"} {
		if !strings.Contains(msg, want) {
			t.Errorf("transcript lacks %q:\n%s", want, msg)
		}
	}
	if err := s.Send(context.Background(), outbox.Email{To: "x@y.example", Subject: "a\r\nBcc: victim@z.example"}); err == nil {
		t.Error("a header with a line break was sent")
	}
}
