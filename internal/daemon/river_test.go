package daemon

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// The reconcile schedule is evaluated in UTC whatever zone the time River
// hands it is in: "0 3 * * *" is 03:00 UTC, not 03:00 in Berlin.
func TestUTCSchedule(t *testing.T) {
	t.Parallel()
	sched, err := cron.ParseStandard("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	berlin := time.FixedZone("CEST", 2*3600)
	from := time.Date(2026, 7, 1, 1, 30, 0, 0, berlin) // 23:30 UTC the day before
	got := utcSchedule{sched}.Next(from)
	if want := time.Date(2026, 7, 1, 3, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Next(%v) = %v, want %v", from, got, want)
	}
	if plain := sched.Next(from); plain.Equal(got) {
		t.Fatalf("the test does not tell zones apart: plain schedule gives %v too", plain)
	}
}
