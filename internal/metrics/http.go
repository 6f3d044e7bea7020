package metrics

import (
	"strconv"
	"time"
)

// HTTPStarted counts a request in flight and returns the function that
// records its end: its route pattern (never the raw path, which would make
// a series per trial id), method, status and duration.
func (m *Metrics) HTTPStarted() func(route, method string, status int) {
	start := time.Now()
	m.httpInFlight.Inc()
	return func(route, method string, status int) {
		m.httpInFlight.Dec()
		if route == "" {
			route = "unmatched"
		}
		m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.httpDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	}
}

// Signup counts a public sign-up attempt by kind (enterprise_trial,
// professional) and outcome (accepted, turnstile_failed, rejected_email,
// invalid, conflict, rate_limited, error).
func (m *Metrics) Signup(kind, outcome string) {
	m.signups.WithLabelValues(kind, outcome).Inc()
}
