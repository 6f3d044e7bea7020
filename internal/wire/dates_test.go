package wire

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "2026-01-01T00:00:00.000Z"},
		{time.Date(2026, 7, 1, 12, 0, 0, 123456789, berlin), "2026-07-01T10:00:00.123Z"},
	}
	for _, tt := range tests {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if FormatNullable(nil) != nil {
		t.Error("FormatNullable(nil) must be nil (JSON null)")
	}
}
