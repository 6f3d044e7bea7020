package apperr

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodeAndMessage(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		err      error
		wantCode Code
		wantMsg  string
	}{
		{"domain error", Errorf(Conflict, "trial %d is upgraded", 3), Conflict, "trial 3 is upgraded"},
		{"wrapped", fmt.Errorf("starting trial: %w", InvalidField("email", "bad e-mail")), Invalid, "bad e-mail"},
		{"internal detail is hidden", errors.New(`pq: relation "trials" does not exist`), Internal, "Internal error."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := CodeOf(tt.err); got != tt.wantCode {
				t.Errorf("CodeOf = %q, want %q", got, tt.wantCode)
			}
			if got := MessageOf(tt.err); got != tt.wantMsg {
				t.Errorf("MessageOf = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

func TestFieldOf(t *testing.T) {
	t.Parallel()
	if got := FieldOf(fmt.Errorf("reading: %w", InvalidField("email", "bad"))); got != "email" {
		t.Errorf("FieldOf(a wrapped field error) = %q, want email", got)
	}
	if got := FieldOf(errors.New("plain")); got != "" {
		t.Errorf("FieldOf(a plain error) = %q, want none", got)
	}
}

func TestReasonOf(t *testing.T) {
	t.Parallel()
	if got := ReasonOf(fmt.Errorf("x: %w", WithReason(Conflict, "Taken", "taken"))); got != "Taken" {
		t.Errorf("ReasonOf(a wrapped named error) = %q, want Taken", got)
	}
	if got := ReasonOf(errors.New("plain")); got != "" {
		t.Errorf("ReasonOf(a plain error) = %q, want none", got)
	}
}
