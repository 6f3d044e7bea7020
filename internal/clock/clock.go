// Package clock is the one source of time for the domain, the workers and
// River. Production uses the wall clock; tests use a Stub they can move, so a
// trial due next month can be expired in a test without waiting for it.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time. Every decision about when a transition is due goes
// through one, never through SQL now(), so that the daemon and River agree.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns the wall-clock time.
func (Real) Now() time.Time { return time.Now() }

// NowOrNil tells River that time is not stubbed, so it keeps using the
// database's own now() in its queries.
func (Real) NowOrNil() *time.Time { return nil }

// Stub is a clock that stands still until moved. It also satisfies River's
// rivertype.TimeGenerator, so one Stub drives both River's notion of "due"
// and the domain's.
type Stub struct {
	mu  sync.Mutex
	now time.Time
}

// NewStub returns a clock stopped at t.
func NewStub(t time.Time) *Stub { return &Stub{now: t} }

// Now returns the stubbed time.
func (s *Stub) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// NowOrNil returns the stubbed time for River's queries.
func (s *Stub) NowOrNil() *time.Time {
	now := s.Now()
	return &now
}

// Set moves the clock to t.
func (s *Stub) Set(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = t
}

// Advance moves the clock forward by d and returns the new time.
func (s *Stub) Advance(d time.Duration) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
	return s.now
}
