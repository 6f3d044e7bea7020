// Package logging carries log attributes in a context, so that every line
// logged while serving a request or working a job says which one (request
// id, job id) without each function passing them along.
package logging

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

var timeZero time.Time

type ctxKey struct{}

// With returns ctx carrying attrs (key, value pairs) for every line logged
// with it.
func With(ctx context.Context, args ...any) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	r := slog.NewRecord(timeZero, 0, "", 0)
	r.Add(args...)
	attrs := append([]slog.Attr{}, prev...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	return context.WithValue(ctx, ctxKey{}, attrs)
}

// Handler adds the context's attributes to each record.
type Handler struct {
	slog.Handler
}

// NewHandler wraps h.
func NewHandler(h slog.Handler) Handler { return Handler{h} }

// Handle adds the context's attributes, then logs.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxKey{}).([]slog.Attr); ok {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper on derived handlers.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper on derived handlers.
func (h Handler) WithGroup(name string) slog.Handler { return Handler{h.Handler.WithGroup(name)} }

// MaskEmail keeps an address recognisable without logging it whole:
// fred@bedrock.example becomes f***@bedrock.example.
func MaskEmail(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	return local[:1] + "***@" + domain
}
