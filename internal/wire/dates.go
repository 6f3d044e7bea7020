// Package wire holds the shapes trialsd shows the outside world in more than
// one place (the v1 API and webhooks), so they cannot drift apart: the
// contract's date format — RFC 3339 in UTC with exactly three fractional
// digits, which the Edge Impulse client turns into a Date — written by
// Format and read from requests by ParseDate, and the EnterpriseTrial
// object.
package wire

import (
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
)

// Layout is the contract's date layout.
const Layout = "2006-01-02T15:04:05.000Z"

// Format renders t in the contract's format.
func Format(t time.Time) string { return t.UTC().Format(Layout) }

// FormatNullable renders t, or nil (JSON null) when t is nil.
func FormatNullable(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := Format(*t)
	return &s
}

// ParseDate reads a request's date: it accepts RFC 3339 with any offset and normalises it to UTC,
// truncated to milliseconds. A date needs its offset: a bare local time is
// ambiguous across time zones and on the night a DST change repeats an hour,
// so it is refused rather than guessed.
func ParseDate(field string, s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return nil, apperr.InvalidField(field, "%s must be an RFC 3339 date such as 2026-01-01T00:00:00.000Z", field)
	}
	// Go accepts offsets up to +99:59; RFC 3339's hours stop at 23, and an
	// offset beyond that is a typo that would move the date by a day or more.
	if _, offset := t.Zone(); offset <= -24*3600 || offset >= 24*3600 {
		return nil, apperr.InvalidField(field, "%s has a UTC offset beyond ±23:59", field)
	}
	t = domain.Instant(t)
	if err := domain.CheckDate(field, t); err != nil {
		return nil, err
	}
	return &t, nil
}
