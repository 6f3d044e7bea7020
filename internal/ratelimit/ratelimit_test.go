package ratelimit

import (
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	clk := clock.NewStub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(config.RateLimit{Events: 3, Per: time.Minute}, clk)

	for i := range 3 {
		if ok, _ := l.Allow("1.2.3.4"); !ok {
			t.Fatalf("event %d refused within the burst", i+1)
		}
	}
	ok, retry := l.Allow("1.2.3.4")
	if ok || retry <= 0 || retry > 20*time.Second {
		t.Fatalf("4th event: allowed=%v retry=%v; want refused, retry within 20s (one token per 20s)", ok, retry)
	}
	if ok, _ := l.Allow("5.6.7.8"); !ok {
		t.Fatal("another key is limited by the first one")
	}
	clk.Advance(20 * time.Second)
	if ok, _ := l.Allow("1.2.3.4"); !ok {
		t.Fatal("refused after a token came back")
	}
	if ok, _ := l.Allow("1.2.3.4"); ok {
		t.Fatal("a refused event must not have consumed a token for later")
	}

	// Idle keys are forgotten, bounding memory.
	clk.Advance(2 * time.Minute)
	l.Allow("9.9.9.9")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys tracked after the others went idle, want 1", n)
	}
}
