package httpapi

import (
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
)

// parseDate accepts RFC 3339 with any offset and normalises it to UTC,
// truncated to milliseconds. A date needs its offset: a bare local time is
// ambiguous across time zones and on the night a DST change repeats an hour,
// so it is refused rather than guessed.
func parseDate(field string, s *string) (*time.Time, error) {
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
	t = t.UTC().Truncate(time.Millisecond)
	return &t, nil
}
