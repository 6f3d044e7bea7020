package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/wire"
)

// actorOf is the authenticated caller as the lifecycle records them.
func actorOf(r *http.Request) domain.Actor {
	u := caller(r.Context())
	return domain.Actor{UserID: u.ID, Admin: u.IsAdmin}
}

func causeOf(r *http.Request) string { return domain.RequestCause(RequestID(r.Context())) }

// handleAdminUpdateTrial is adminUpdateTrial: PUT /v1/api/admin/trials/{enterpriseTrialId}.
func handleAdminUpdateTrial(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "enterpriseTrialId")
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		var body struct {
			ExpirationDate *string `json:"expirationDate"`
			Notes          *string `json:"notes"`
		}
		if err := decode(r, &body); err != nil {
			respondError(w, r, logger, err)
			return
		}
		exp, err := wire.ParseDate("expirationDate", body.ExpirationDate)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		err = lc.UpdateTrial(r.Context(), actorOf(r), id, lifecycle.UpdateTrialRequest{ExpirationDate: exp, Notes: body.Notes}, causeOf(r))
		respondGeneric(w, r, logger, err)
	})
}

// handleAdminDeleteTrial is adminDeleteTrial: Delete applied now.
func handleAdminDeleteTrial(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "enterpriseTrialId")
		if err == nil {
			err = lc.DeleteTrialNow(r.Context(), actorOf(r), id, causeOf(r))
		}
		respondGeneric(w, r, logger, err)
	})
}

// handleAdminUpgradeTrial is adminUpgradeTrial.
func handleAdminUpgradeTrial(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "enterpriseTrialId")
		if err == nil {
			err = lc.Upgrade(r.Context(), actorOf(r), id, causeOf(r))
		}
		respondGeneric(w, r, logger, err)
	})
}

type eventJSON struct {
	ID    int64           `json:"id"`
	Kind  string          `json:"kind"`
	At    string          `json:"at"`
	Actor string          `json:"actor"`
	Cause string          `json:"cause"`
	Data  json.RawMessage `json:"data"`
}

// Pages of a trial's history in the events API: ?limit= events (at most
// maxEventsListed), after the event ?after=.
const (
	eventsListed    = 50
	maxEventsListed = 200
)

// handleAdminTrialEvents is the trial's history, oldest first, a page at a
// time: next is the after= of the next page, null on the last.
func handleAdminTrialEvents(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "enterpriseTrialId")
		var after int64
		var limit int
		if err == nil {
			after, err = queryID(r, "after")
		}
		if err == nil {
			limit, err = queryLimit(r, eventsListed, maxEventsListed)
		}
		var events []domain.Event
		if err == nil {
			events, err = lc.EventsAfter(r.Context(), id, after, limit+1)
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		var next *int64
		if len(events) > limit {
			events = events[:limit]
			next = &events[limit-1].ID
		}
		out := make([]eventJSON, len(events))
		for i, e := range events {
			out[i] = eventJSON{ID: e.ID, Kind: e.Kind, At: wire.Format(e.At), Actor: e.Actor, Cause: e.Cause, Data: e.Data}
		}
		encode(w, http.StatusOK, struct {
			Success bool        `json:"success"`
			Events  []eventJSON `json:"events"`
			Next    *int64      `json:"next"`
		}{true, out, next})
	})
}

// handleAdminDeleteOrganization soft-deletes an organization, with its purge
// scheduled when fullDeletion=true.
func handleAdminDeleteOrganization(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "organizationId")
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		full := false
		if v := r.URL.Query().Get("fullDeletion"); v != "" {
			if full, err = strconv.ParseBool(v); err != nil {
				respondError(w, r, logger, apperr.InvalidField("fullDeletion", "fullDeletion must be true or false"))
				return
			}
		}
		respondGeneric(w, r, logger, lc.DeleteOrganization(r.Context(), actorOf(r), id, full, causeOf(r)))
	})
}

// handleAdminRestoreOrganization is adminRestoreOrganization.
func handleAdminRestoreOrganization(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "organizationId")
		if err == nil {
			err = lc.RestoreOrganization(r.Context(), actorOf(r), id, causeOf(r))
		}
		respondGeneric(w, r, logger, err)
	})
}

// respondGeneric answers a GenericApiResponse: success, or err.
func respondGeneric(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	if err != nil {
		respondError(w, r, logger, err)
		return
	}
	encode(w, http.StatusOK, genericResponse{Success: true})
}

type upcomingJSON struct {
	Hour  string `json:"hour"`
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
}

// handleAdminUpcoming lists the transitions due within ?within= (default
// 24h), by hour and kind, from the jobs River holds.
func handleAdminUpcoming(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		within := 24 * time.Hour
		if v := r.URL.Query().Get("within"); v != "" {
			d, err := wire.ParseDuration(v)
			if err != nil {
				respondError(w, r, logger, apperr.InvalidField("within", "within must be a duration such as 24h or 7d"))
				return
			}
			within = d
		}
		counts, err := lc.UpcomingTransitions(r.Context(), within)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		out := make([]upcomingJSON, len(counts))
		for i, c := range counts {
			out[i] = upcomingJSON{Hour: wire.Format(c.Hour), Kind: c.Kind, Count: c.N}
		}
		encode(w, http.StatusOK, struct {
			Success  bool           `json:"success"`
			Upcoming []upcomingJSON `json:"upcoming"`
		}{true, out})
	})
}
