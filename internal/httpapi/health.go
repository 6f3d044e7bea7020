package httpapi

import (
	"context"
	"net/http"
	"strconv"
)

// handleHealthz answers while the process is up, whatever the database does,
// so an orchestrator does not restart a daemon that is waiting out an outage.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, genericResponse{Success: true})
	})
}

// handleReadyz answers 200 only when the database is reachable and fully
// migrated, so a load balancer sends no traffic the daemon cannot serve.
func handleReadyz(ready func(ctx context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
			encode(w, http.StatusServiceUnavailable, genericResponse{Error: "not ready: " + err.Error()})
			return
		}
		encode(w, http.StatusOK, genericResponse{Success: true})
	})
}
