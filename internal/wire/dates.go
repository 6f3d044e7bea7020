// Package wire holds the shapes trialsd shows the outside world in more than
// one place (the v1 API and webhooks), so they cannot drift apart: the
// contract's date format — RFC 3339 in UTC with exactly three fractional
// digits, which the Edge Impulse client turns into a Date — and the
// EnterpriseTrial object.
package wire

import "time"

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
