package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/enterprise"
)

// handleCreateEnterprise is the v2 create-enterprise operation:
// POST /api/v2/organization/{organizationId}/enterprise, answering errors in
// the v2 shape.
func handleCreateEnterprise(logger *slog.Logger, svc *enterprise.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		orgID := r.PathValue("organizationId")
		if !enterprise.ValidOrganizationID(orgID) {
			respondErrorV2(w, r, logger, apperr.InvalidField("organizationId", "organizationId must be a 32-character lowercase hex id"))
			return
		}
		var req enterprise.Request
		if err := decode(r, &req); err != nil {
			respondErrorV2(w, r, logger, err)
			return
		}
		resp, err := svc.Create(r.Context(), caller(r.Context()), orgID, req, causeOf(r))
		if err != nil {
			respondErrorV2(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, resp)
	})
}
