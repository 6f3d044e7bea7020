package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/trialsd/trialsd/internal/billing"
	"github.com/trialsd/trialsd/internal/signature"
)

// handleBillingCallback is the payment provider's signed callback:
// POST /v1/billing/callback.
func handleBillingCallback(logger *slog.Logger, b *billing.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if errors.As(err, new(*http.MaxBytesError)) {
			respondError(w, r, logger, errBodyTooLarge)
			return
		}
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		if _, err := b.HandleCallback(r.Context(), r.Header.Get(signature.Header), raw); err != nil {
			respondError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, genericResponse{Success: true})
	})
}
