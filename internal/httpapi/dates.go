package httpapi

import (
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
)

// parseDate accepts RFC 3339 with any offset and normalises it to UTC,
// truncated to milliseconds.
func parseDate(field string, s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return nil, apperr.InvalidField(field, "%s must be an RFC 3339 date such as 2026-01-01T00:00:00.000Z", field)
	}
	t = t.UTC().Truncate(time.Millisecond)
	return &t, nil
}
