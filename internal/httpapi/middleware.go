package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/internal/metrics"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	userKey
)

// saneRequestID is what a client-supplied X-Request-Id must look like to be
// reused in our logs and answers.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// withRequestID gives every request an id (the client's when it is sane),
// echoes it in X-Request-Id and puts it in the context for logs and events.
func withRequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID.MatchString(id) {
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", id)
		ctx := logging.With(context.WithValue(r.Context(), requestIDKey, id), "request_id", id)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// RequestID returns the id of the request ctx belongs to.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// limitBody caps every request body at maxBodyBytes; decode turns the
// overflow into a 413 without reading the rest.
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			w.Header().Set("Connection", "close")
			encode(w, http.StatusRequestEntityTooLarge, genericResponse{Error: errBodyTooLarge.Error()})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		h.ServeHTTP(w, r)
	})
}

// recoverPanics turns a handler panic into a logged 500 instead of a dropped
// connection.
func recoverPanics(logger *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(r.Context(), "handler panicked", "panic", p)
				encode(w, http.StatusInternalServerError, genericResponse{Error: "Internal error."})
			}
		}()
		h.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// observeRequests logs one line per request with its route pattern, path,
// status, duration in seconds and request id, and records it in the HTTP
// metrics.
func observeRequests(logger *slog.Logger, obs Observer, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		done := obs.HTTPStarted()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		route := r.Pattern
		if route == unrouted {
			route = "" // one label value for every path no route serves
		}
		done(route, r.Method, rec.status)
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		if rec.status >= 500 {
			level = slog.LevelError
		}
		logger.Log(r.Context(), level, "http request",
			"method", metrics.MethodLabel(r.Method), "route", route, "path", loggedPath(r), "status", rec.status,
			"duration_s", time.Since(start).Seconds())
	})
}

// maxLoggedPath bounds the path a log line repeats: it is the client's to
// choose, and a line per request must not grow with it.
const maxLoggedPath = 256

// loggedPath is the request's path, escaped, for its log line, cut to
// maxLoggedPath bytes.
func loggedPath(r *http.Request) string {
	p := r.URL.EscapedPath()
	if len(p) <= maxLoggedPath {
		return p
	}
	return p[:maxLoggedPath] + "…"
}
