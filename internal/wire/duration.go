package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a window such as "24h" or "7d": a Go duration, which
// stops at hours, optionally led by whole days ("7d", "1d12h"), because the
// console, the metrics' within="7d" label and people speak of days. A day is
// 24 hours: the windows are UTC, with no daylight-saving change to skip.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	days, rest, found := strings.Cut(s, "d")
	if !found {
		return parseGoDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 7d or 36h: days must be a whole number", s)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest == "" {
		return d, nil
	}
	more, err := parseGoDuration(rest)
	if err != nil || more < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 7d or 1d12h", s)
	}
	return d + more, nil
}

func parseGoDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 7d or 36h", s)
	}
	return d, nil
}
