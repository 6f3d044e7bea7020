package domain

import "time"

// The events of a test clock itself, delivered to the webhooks (a test can
// wait for ready instead of polling); they are not a trial's history.
const (
	EventClockAdvancing = "test_clock.advancing"
	EventClockReady     = "test_clock.ready"
	EventClockDeleted   = "test_clock.deleted"
)

// ClockEventKinds lists the test clock's events.
var ClockEventKinds = []string{EventClockAdvancing, EventClockReady, EventClockDeleted}

// TestClockStatus is where a test clock stands: ready to be advanced, or
// advancing towards its target.
type TestClockStatus string

// Test clock statuses.
const (
	ClockReady     TestClockStatus = "ready"
	ClockAdvancing TestClockStatus = "advancing"
)

// TestClock is simulated time for the trials created on it. Time on a clock
// moves only when the clock is advanced, and every date trialsd stamps for
// its trials is the clock's FrozenTime; the trials' jobs are the real ones,
// run by the real workers, each at its own simulated due time.
type TestClock struct {
	ID         int64
	Name       string
	FrozenTime time.Time
	Status     TestClockStatus
	// Target is where an advancing clock is going (nil when ready).
	Target *time.Time
	// StepJobIDs are the jobs the advance's current step made runnable and
	// that have not said they are done; it steps on once they have all
	// finished.
	StepJobIDs []int64
	// CreatedAt and DeletesAfter are real time: after DeletesAfter the clock
	// is deleted with everything on it.
	CreatedAt    time.Time
	DeletesAfter time.Time
}
