package wire

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
)

// Dates arrive in every zone and across DST changes; with an offset each
// names one instant, stored in UTC. Without one, or with an offset no clock
// uses, the date is refused naming the field.
func TestParseDateZones(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     string // UTC, the contract's layout; "" when refused
	}{
		{"UTC", "2026-07-20T12:00:00Z", "2026-07-20T12:00:00.000Z"},
		{"minus zero is UTC", "2026-07-20T12:00:00-00:00", "2026-07-20T12:00:00.000Z"},
		{"summer time in Berlin", "2026-07-20T12:00:00+02:00", "2026-07-20T10:00:00.000Z"},
		// 02:30 does not exist on the wall clocks of Berlin that night (spring
		// forward); with its offset it is still one instant.
		{"inside the spring-forward gap", "2026-03-29T02:30:00+02:00", "2026-03-29T00:30:00.000Z"},
		// 02:30 happens twice in Berlin on 25 October 2026; the offsets tell
		// the first from the second, an hour apart.
		{"fall-back hour, first", "2026-10-25T02:30:00+02:00", "2026-10-25T00:30:00.000Z"},
		{"fall-back hour, second", "2026-10-25T02:30:00+01:00", "2026-10-25T01:30:00.000Z"},
		{"New York fall-back, EDT", "2026-11-01T01:30:00-04:00", "2026-11-01T05:30:00.000Z"},
		{"New York fall-back, EST", "2026-11-01T01:30:00-05:00", "2026-11-01T06:30:00.000Z"},
		{"quarter-hour offset (Nepal)", "2026-01-01T00:00:00+05:45", "2025-12-31T18:15:00.000Z"},
		{"furthest ahead (Kiribati) crosses the date line", "2026-01-01T00:00:00+14:00", "2025-12-31T10:00:00.000Z"},
		{"furthest behind", "2026-01-01T23:00:00-12:00", "2026-01-02T11:00:00.000Z"},
		{"leap day", "2028-02-29T23:30:00-01:00", "2028-03-01T00:30:00.000Z"},
		{"nanoseconds truncated to milliseconds", "2026-07-20T12:00:00.123999999+02:00", "2026-07-20T10:00:00.123Z"},
		{"no offset: a local time is ambiguous", "2026-10-25T02:30:00", ""},
		{"zone name instead of offset", "2026-10-25T02:30:00 Europe/Berlin", ""},
		{"offset without colon", "2026-07-20T12:00:00+0200", ""},
		{"offset of 24 hours", "2026-07-20T12:00:00+24:00", ""},
		{"offset of minus 30 hours", "2026-07-20T12:00:00-30:00", ""},
		{"leap second", "2026-12-31T23:59:60Z", ""},
		{"no such day", "2026-02-29T00:00:00Z", ""},
		{"date only", "2026-07-20", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDate("expirationDate", &tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseDate(%q) = %v, want it refused", tt.in, got)
				}
				if msg := err.Error(); !strings.Contains(msg, "expirationDate") {
					t.Errorf("error %q does not name the field", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDate(%q): %v", tt.in, err)
			}
			if s := got.Format("2006-01-02T15:04:05.000Z07:00"); s != tt.want || got.Location() != time.UTC {
				t.Errorf("ParseDate(%q) = %s in %v, want %s in UTC", tt.in, s, got.Location(), tt.want)
			}
		})
	}
}

// Dates in any form parse to UTC milliseconds or a 400 naming the field.
func FuzzParseDate(f *testing.F) {
	for _, seed := range []string{"2026-01-01T00:00:00Z", "2026-03-29T02:30:00+02:00", "9999-12-31T23:59:59.999999999Z", "tomorrow", "", "2026-13-45T99:99:99Z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate("expirationDate", &s)
		if err != nil {
			var e *apperr.Error
			if !strings.Contains(err.Error(), "expirationDate") || apperr.CodeOf(err) != apperr.Invalid || !errors.As(err, &e) {
				t.Fatalf("bad date answered %v", err)
			}
			return
		}
		if d.Location().String() != "UTC" || d.Nanosecond()%1_000_000 != 0 {
			t.Fatalf("%q parsed to %v: not UTC milliseconds", s, d)
		}
	})
}

// A date outside [1970, 9000) is refused: what trialsd derives from it (a
// trial's expiry, its grace period, its purge) would leave RFC 3339's
// four-digit years.
func TestParseDateBounds(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"9999-12-31T23:59:59Z": false, "9000-01-01T00:00:00Z": false, "8999-12-31T23:59:59.999Z": true,
		"1970-01-01T00:00:00Z": true, "1969-12-31T23:59:59Z": false, "0001-01-01T00:00:00Z": false,
		"1970-01-01T00:30:00+01:00": false,
	} {
		_, err := ParseDate("frozenTime", &in)
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "frozenTime must be from 1970-01-01 up to 9000-01-01")) {
			t.Errorf("ParseDate(%q) = %v, want ok %v", in, err, ok)
		}
	}
}
