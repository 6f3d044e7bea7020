package clock

import (
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// Both clocks must be accepted by River as its time generator.
var (
	_ rivertype.TimeGenerator = Real{}
	_ rivertype.TimeGenerator = (*Stub)(nil)
)

func TestStub(t *testing.T) {
	t.Parallel()

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewStub(start)
	if got := s.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want %v", got, start)
	}
	if got := s.Advance(time.Hour); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("Advance() = %v, want %v", got, start.Add(time.Hour))
	}
	if got := *s.NowOrNil(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("NowOrNil() = %v, want %v", got, start.Add(time.Hour))
	}
	s.Set(start)
	if got := s.Now(); !got.Equal(start) {
		t.Fatalf("after Set, Now() = %v, want %v", got, start)
	}
	if (Real{}).NowOrNil() != nil {
		t.Fatal("Real.NowOrNil() must be nil so River uses the database's now()")
	}
}
