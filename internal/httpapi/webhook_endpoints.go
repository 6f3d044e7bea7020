package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
	"github.com/trialsd/trialsd/internal/wire"
)

// endpointJSON is a webhook endpoint as the admin API shows it: never its
// secret, which is shown once, when made.
type endpointJSON struct {
	ID             int64    `json:"id"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	EventTypes     []string `json:"eventTypes"`
	ReadOnly       bool     `json:"readOnly"`
	Disabled       bool     `json:"disabled"`
	DisabledAt     *string  `json:"disabledAt"`
	DisabledReason *string  `json:"disabledReason"`
	FailingSince   *string  `json:"failingSince"`
	Created        string   `json:"created"`
	Updated        string   `json:"updated"`
}

func endpointOf(e store.WebhookEndpoint) endpointJSON {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	return endpointJSON{
		ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: types,
		ReadOnly: e.Source == store.EndpointFromConfig, Disabled: e.DisabledAt != nil,
		DisabledAt: formatPtr(e.DisabledAt), DisabledReason: e.DisabledReason, FailingSince: formatPtr(e.FailingSince),
		Created: wire.Format(e.CreatedAt), Updated: wire.Format(e.UpdatedAt),
	}
}

func formatPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := wire.Format(*t)
	return &s
}

// endpointBody is the body of a create or an update.
type endpointBody struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	EventTypes  *[]string `json:"eventTypes"`
	Disabled    *bool     `json:"disabled"`
}

func (b endpointBody) spec() outbox.EndpointSpec {
	return outbox.EndpointSpec{URL: b.URL, Description: b.Description, EventTypes: b.EventTypes, Disabled: b.Disabled}
}

type endpointAnswer struct {
	Success  bool         `json:"success"`
	Endpoint endpointJSON `json:"endpoint"`
	Secret   string       `json:"secret,omitempty"`
}

// handleCreateEndpoint adds an endpoint; the answer holds its secret, once.
func handleCreateEndpoint(logger *slog.Logger, eps *outbox.Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body endpointBody
		if err := decode(r, &body); err != nil {
			respondError(w, r, logger, err)
			return
		}
		ep, secret, err := eps.Create(r.Context(), body.spec())
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, endpointAnswer{Success: true, Endpoint: endpointOf(ep), Secret: secret})
	})
}

// handleListEndpoints lists every endpoint, the read-only config ones too.
func handleListEndpoints(logger *slog.Logger, eps *outbox.Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := eps.List(r.Context())
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		out := make([]endpointJSON, len(list))
		for i, e := range list {
			out[i] = endpointOf(e)
		}
		encode(w, http.StatusOK, struct {
			Success   bool           `json:"success"`
			Endpoints []endpointJSON `json:"endpoints"`
		}{true, out})
	})
}

// handleGetEndpoint shows one endpoint.
func handleGetEndpoint(logger *slog.Logger, eps *outbox.Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "endpointId")
		var ep store.WebhookEndpoint
		if err == nil {
			ep, err = eps.Get(r.Context(), id)
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, endpointAnswer{Success: true, Endpoint: endpointOf(ep)})
	})
}

// handleUpdateEndpoint changes the fields the body holds.
func handleUpdateEndpoint(logger *slog.Logger, eps *outbox.Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "endpointId")
		var body endpointBody
		if err == nil {
			err = decode(r, &body)
		}
		var ep store.WebhookEndpoint
		if err == nil {
			ep, err = eps.Update(r.Context(), id, body.spec())
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, endpointAnswer{Success: true, Endpoint: endpointOf(ep)})
	})
}

// handleDeleteEndpoint removes an endpoint and its undelivered messages.
func handleDeleteEndpoint(logger *slog.Logger, eps *outbox.Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "endpointId")
		if err == nil {
			err = eps.Delete(r.Context(), id)
		}
		respondGeneric(w, r, logger, err)
	})
}

// handleRotateEndpointSecret gives an endpoint a new secret, shown once.
func handleRotateEndpointSecret(logger *slog.Logger, eps *outbox.Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "endpointId")
		var secret string
		if err == nil {
			secret, err = eps.RotateSecret(r.Context(), id)
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, struct {
			Success bool   `json:"success"`
			Secret  string `json:"secret"`
		}{true, secret})
	})
}

type attemptJSON struct {
	ID         int64   `json:"id"`
	EventID    string  `json:"eventId"`
	Attempt    int     `json:"attempt"`
	At         string  `json:"at"`
	StatusCode *int    `json:"statusCode"`
	DurationMs int64   `json:"durationMs"`
	Error      *string `json:"error"`
}

// maxAttemptsListed bounds ?limit= of the attempt log.
const maxAttemptsListed = 1000

// handleEndpointAttempts is the endpoint's delivery log, newest first.
func handleEndpointAttempts(logger *slog.Logger, eps *outbox.Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "endpointId")
		var limit int
		if err == nil {
			limit, err = queryLimit(r, 100, maxAttemptsListed)
		}
		var attempts []store.WebhookAttempt
		if err == nil {
			attempts, err = eps.Attempts(r.Context(), id, limit)
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		out := make([]attemptJSON, len(attempts))
		for i, a := range attempts {
			out[i] = attemptJSON{ID: a.ID, EventID: a.EventID, Attempt: a.Attempt, At: wire.Format(a.At),
				StatusCode: a.StatusCode, DurationMs: a.Duration.Milliseconds(), Error: a.Error}
		}
		encode(w, http.StatusOK, struct {
			Success  bool          `json:"success"`
			Attempts []attemptJSON `json:"attempts"`
		}{true, out})
	})
}

// handleRecoverEndpoint replays every delivery that failed since {since}.
func handleRecoverEndpoint(logger *slog.Logger, eps *outbox.Endpoints) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "endpointId")
		var body struct {
			Since *string `json:"since"`
		}
		if err == nil {
			err = decode(r, &body)
		}
		var since *time.Time
		if err == nil {
			if since, err = wire.ParseDate("since", body.Since); err == nil && since == nil {
				err = apperr.InvalidField("since", "since is required")
			}
		}
		var n int
		if err == nil {
			n, err = eps.Recover(r.Context(), id, *since)
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, struct {
			Success   bool `json:"success"`
			Recovered int  `json:"recovered"`
		}{true, n})
	})
}
