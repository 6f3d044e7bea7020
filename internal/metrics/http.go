package metrics

import (
	"net/http"
	"strconv"
	"time"
)

// HTTPStarted counts a request in flight and returns the function that
// records its end: its route pattern (never the raw path, which would make
// a series per trial id; "" for a request no route served), method, status
// and duration. Every label comes from a fixed set, whatever the client
// sends: a method or path of its own choosing would otherwise become a new
// series, each kept for the life of the process.
func (m *Metrics) HTTPStarted() func(route, method string, status int) {
	start := time.Now()
	m.httpInFlight.Inc()
	return func(route, method string, status int) {
		m.httpInFlight.Dec()
		if route == "" {
			route = "unmatched"
		}
		method = MethodLabel(method)
		m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.httpDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	}
}

// MethodLabel is an HTTP method as a label value: one of the methods HTTP
// defines, else "other".
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// Signup counts a public sign-up attempt by kind (enterprise_trial,
// professional) and outcome (accepted, turnstile_failed, rejected_email,
// invalid, conflict, rate_limited, error).
func (m *Metrics) Signup(kind, outcome string) {
	m.signups.WithLabelValues(kind, outcome).Inc()
}
