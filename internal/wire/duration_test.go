package wire_test

import (
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/wire"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour,
		" 30d ": 30 * 24 * time.Hour, "90m": 90 * time.Minute, "0d": 0,
	} {
		if got, err := wire.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7", "-7d", "1.5d", "7dd", "7d-1h", "xd", "99999d", "7days"} {
		if got, err := wire.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}
