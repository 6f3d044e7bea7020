package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestWithAddsAttributesToEveryLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(NewHandler(slog.NewTextHandler(&buf, nil))).With("component", "test")
	ctx := With(context.Background(), "request_id", "r1")
	ctx = With(ctx, "trial_id", int64(7))
	logger.InfoContext(ctx, "hello")
	logger.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(lines[0], "request_id=r1") || !strings.Contains(lines[0], "trial_id=7") || !strings.Contains(lines[0], "component=test") {
		t.Fatalf("line %q lacks the context's attributes", lines[0])
	}
	if strings.Contains(lines[1], "request_id") {
		t.Fatalf("line %q has attributes of another context", lines[1])
	}
}

func TestMaskEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"fred@bedrock.example": "f***@bedrock.example", "x": "***", "@y": "***"} {
		if got := MaskEmail(in); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}
