package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/database"
)

// maxBodyBytes is the contract's body limit; larger bodies get 413.
const maxBodyBytes = 1 << 20

// retryAfterSeconds is what 503 answers tell clients to wait.
const retryAfterSeconds = 5

// encode writes v as JSON with the status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client has gone if this fails
}

// errBodyTooLarge is answered with 413.
var errBodyTooLarge = errors.New("request body is larger than 1 MiB")

// genericResponse is the contract's GenericApiResponse.
type genericResponse struct {
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
}

// errorResponder answers an error in one API version's shape.
type errorResponder func(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error)

// respondError answers err in the v1 shape {success: false, error}.
func respondError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status, msg := describeError(w, r, logger, err)
	encode(w, status, genericResponse{Success: false, Error: msg})
}

// v2Error is the v2 API's error body.
type v2Error struct {
	Name      string         `json:"name"`
	Context   map[string]any `json:"context"`
	Error     string         `json:"error"`
	RequestID string         `json:"requestId"`
}

// v2Names are the v2 API's error codes by status.
var v2Names = map[int]string{
	http.StatusBadRequest:            "InvalidRequest",
	http.StatusRequestEntityTooLarge: "InvalidRequest",
	http.StatusUnauthorized:          "Unauthorized",
	http.StatusForbidden:             "Forbidden",
	http.StatusNotFound:              "OrganizationNotFound",
	http.StatusConflict:              "IdempotencyKeyConflict",
	http.StatusTooManyRequests:       "Unavailable",
	http.StatusServiceUnavailable:    "Unavailable",
}

// respondErrorV2 answers err in the v2 shape {name, context, error, requestId}.
func respondErrorV2(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status, msg := describeError(w, r, logger, err)
	name, ok := v2Names[status]
	if !ok {
		name = "InternalError"
	}
	ctx := map[string]any{}
	var e *apperr.Error
	if errors.As(err, &e) && e.Field != "" {
		ctx["field"] = e.Field
	}
	if e != nil && e.Reason != "" && status < 500 {
		name = e.Reason
	}
	encode(w, status, v2Error{Name: name, Context: ctx, Error: msg, RequestID: RequestID(r.Context())})
}

// describeError works out err's status and caller-safe message, sets the
// headers they call for, and logs what an operator needs: internal errors
// with the request id, and answers that reveal nothing.
func describeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) (int, string) {
	status, msg := statusOf(err), apperr.MessageOf(err)
	switch status {
	case http.StatusRequestEntityTooLarge:
		msg = errBodyTooLarge.Error()
	case http.StatusTooManyRequests:
		var limited errRateLimited
		errors.As(err, &limited)
		w.Header().Set("Retry-After", retryAfterHeader(limited.retryAfter))
		msg = limited.Error()
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		if apperr.CodeOf(err) != apperr.Unavailable {
			msg = "Service temporarily unavailable, retry later."
		}
		logger.WarnContext(r.Context(), "dependency unavailable", "error", err)
	case http.StatusInternalServerError:
		logger.ErrorContext(r.Context(), "request failed", "error", err)
	}
	return status, msg
}

// statusOf maps an error to the contract's status code; this is the only
// place that does.
func statusOf(err error) int {
	if errors.Is(err, errBodyTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	if errors.As(err, new(errRateLimited)) {
		return http.StatusTooManyRequests
	}
	if database.IsUnavailable(err) {
		return http.StatusServiceUnavailable
	}
	switch apperr.CodeOf(err) {
	case apperr.Invalid:
		return http.StatusBadRequest
	case apperr.Unauthorized:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// unrouted is the catch-all pattern: requests no route serves.
const unrouted = "/"

// methods are the methods a route may serve, in the order Allow lists them.
var methods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// handleUnrouted answers a request no route serves: 405 with Allow when its
// path is served under other methods (mux decides, as it routes), else 404.
// Neither echoes the method or path, which are the client's to choose.
func handleUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			probe := &http.Request{Method: m, URL: r.URL, Host: r.Host}
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != unrouted {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			encode(w, http.StatusMethodNotAllowed, genericResponse{Error: "Method not allowed; this path takes " + strings.Join(allow, ", ")})
			return
		}
		encode(w, http.StatusNotFound, genericResponse{Error: "No such operation"})
	})
}
