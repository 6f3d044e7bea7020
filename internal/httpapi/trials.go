package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/wire"
)

// startTrialRequest is the wire form of StartEnterpriseTrialRequest.
type startTrialRequest struct {
	Email                       *string           `json:"email"`
	Name                        *string           `json:"name"`
	OrganizationName            *string           `json:"organizationName"`
	ExpirationDate              *string           `json:"expirationDate"`
	Notes                       *string           `json:"notes"`
	UseCase                     *string           `json:"useCase"`
	UserHasMLModelsInProduction *string           `json:"userHasMLModelsInProduction"`
	CompanyName                 *string           `json:"companyName"`
	CompanySize                 *string           `json:"companySize"`
	Country                     *string           `json:"country"`
	StateOrProvince             *string           `json:"stateOrProvince"`
	RedirectURLOrigin           *string           `json:"redirectUrlOrigin"`
	RedirectURLQueryParams      *string           `json:"redirectUrlQueryParams"`
	UTMParams                   []json.RawMessage `json:"utmParams"`
}

func (s startTrialRequest) toDomain() (lifecycle.StartTrialRequest, error) {
	exp, err := wire.ParseDate("expirationDate", s.ExpirationDate)
	if err != nil {
		return lifecycle.StartTrialRequest{}, err
	}
	return lifecycle.StartTrialRequest{
		Email: s.Email, Name: s.Name, OrganizationName: s.OrganizationName,
		ExpirationDate: exp, Notes: s.Notes,
		Details: domain.TrialDetails{
			OrganizationName: s.OrganizationName, UseCase: s.UseCase,
			UserHasMLModelsInProduction: s.UserHasMLModelsInProduction,
			CompanyName:                 s.CompanyName, CompanySize: s.CompanySize,
			Country: s.Country, StateOrProvince: s.StateOrProvince, UTMParams: s.UTMParams,
		},
	}, nil
}

type startTrialResponse struct {
	Success     bool   `json:"success"`
	ID          int64  `json:"id"`
	UserID      int64  `json:"userId"`
	RedirectURL string `json:"redirectUrl"`
}

// handleStartTrial is startEnterpriseTrial: POST /v1/api/user/trial.
func handleStartTrial(logger *slog.Logger, lc *lifecycle.Service, origins []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body startTrialRequest
		if err := decode(r, &body); err != nil {
			respondError(w, r, logger, err)
			return
		}
		req, err := body.toDomain()
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		// Validate the redirect before writing anything.
		if _, err := redirectURL(origins, body.RedirectURLOrigin, body.RedirectURLQueryParams, ""); err != nil {
			respondError(w, r, logger, err)
			return
		}
		u := caller(r.Context())
		started, err := lc.StartTrial(r.Context(), domain.Actor{UserID: u.ID, Admin: u.IsAdmin}, req,
			domain.RequestCause(RequestID(r.Context())))
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		redirect, _ := redirectURL(origins, body.RedirectURLOrigin, body.RedirectURLQueryParams, organizationPath(started.OrganizationID))
		encode(w, http.StatusOK, startTrialResponse{
			Success: true, ID: started.TrialID, UserID: started.UserID, RedirectURL: redirect,
		})
	})
}

// handleAdminGetTrial is adminGetTrial: GET /v1/api/admin/trials/{enterpriseTrialId}.
func handleAdminGetTrial(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "enterpriseTrialId")
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		t, err := lc.Trial(r.Context(), id)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, struct {
			Success bool                 `json:"success"`
			Trial   wire.EnterpriseTrial `json:"trial"`
		}{true, wire.Trial(t)})
	})
}

// pathID parses a positive integer path parameter.
func pathID(r *http.Request, name string) (int64, error) {
	return wire.ParseID(name, r.PathValue(name))
}

// queryID reads an optional id of the query, a page's cursor: 0 when
// absent, else a positive integer.
func queryID(r *http.Request, name string) (int64, error) {
	return wire.ParseOptionalID(name, r.URL.Query().Get(name))
}

// queryLimit reads ?limit=, a page's size: def when absent, else a whole
// number from 1 to most.
func queryLimit(r *http.Request, def, most int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > most {
		return 0, apperr.InvalidField("limit", "limit must be a whole number from 1 to %d", most)
	}
	return n, nil
}

// handleListUserTrials is listEnterpriseTrialsUser: a user's trials, newest
// first. A user may list only their own; admins anyone's.
func handleListUserTrials(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "userId")
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if u := caller(r.Context()); u.ID != id && !u.IsAdmin {
			respondError(w, r, logger, apperr.Errorf(apperr.Forbidden, "You can only list your own trials"))
			return
		}
		trials, err := lc.TrialsOfUser(r.Context(), id)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		out := make([]wire.EnterpriseTrial, len(trials))
		for i, t := range trials {
			out[i] = wire.Trial(t)
		}
		encode(w, http.StatusOK, struct {
			Success bool                   `json:"success"`
			Trials  []wire.EnterpriseTrial `json:"trials"`
		}{true, out})
	})
}

// handleAdminCreateTrial is adminCreateTrial: StartEnterpriseTrialRequest
// plus userId, honouring expirationDate and notes.
func handleAdminCreateTrial(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			startTrialRequest
			UserID      *int64 `json:"userId"`
			TestClockID *int64 `json:"testClockId"`
		}
		if err := decode(r, &body); err != nil {
			respondError(w, r, logger, err)
			return
		}
		if body.UserID == nil || *body.UserID <= 0 {
			respondError(w, r, logger, apperr.InvalidField("userId", "userId is required"))
			return
		}
		req, err := body.toDomain()
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		req.UserID, req.TestClockID = *body.UserID, body.TestClockID
		started, err := lc.StartTrial(r.Context(), actorOf(r), req, causeOf(r))
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, struct {
			Success bool  `json:"success"`
			ID      int64 `json:"id"`
		}{true, started.TrialID})
	})
}

// maxExtensionRequest bounds an extension request's body: it is kept in
// the trial's history and sent to every webhook, so its size is multiplied.
const maxExtensionRequest = 16 << 10

// handleRequestExtension is requestEnterpriseTrialExtension: a member asks
// for more time; the request is recorded and sent to the webhooks. Limited
// per user and per organization, and to maxExtensionRequest bytes.
func handleRequestExtension(logger *slog.Logger, lc *lifecycle.Service, limits Limits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "organizationId")
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if err := allowExtension(r.Context(), lc, limits, actorOf(r), id); err != nil {
			respondError(w, r, logger, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxExtensionRequest)
		var body map[string]any
		if err := decode(r, &body); errors.Is(err, errBodyTooLarge) {
			respondError(w, r, logger, apperr.InvalidField("body", "an extension request may hold at most %d KiB", maxExtensionRequest>>10))
			return
		} else if err != nil {
			respondError(w, r, logger, err)
			return
		}
		var raw json.RawMessage
		if body != nil {
			raw, _ = json.Marshal(body)
		}
		respondGeneric(w, r, logger, lc.RequestExtension(r.Context(), actorOf(r), id, raw, causeOf(r)))
	})
}

// allowExtension takes one extension request of actor's for the
// organization from both their limits: the user's first, then, once they
// are known to be a member, the organization's.
func allowExtension(ctx context.Context, lc *lifecycle.Service, limits Limits, actor domain.Actor, orgID int64) error {
	if err := allow(limits.ExtensionPerUser, strconv.FormatInt(actor.UserID, 10)); err != nil {
		return err
	}
	if err := lc.MayRequestExtension(ctx, actor, orgID); err != nil {
		return err
	}
	return allow(limits.ExtensionPerOrganization, strconv.FormatInt(orgID, 10))
}
