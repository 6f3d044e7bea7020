package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/wire"
)

type testClockResponse struct {
	Success   bool           `json:"success"`
	TestClock wire.TestClock `json:"testClock"`
}

// respondTestClock answers with the clock, or the error.
func respondTestClock(w http.ResponseWriter, r *http.Request, logger *slog.Logger, c domain.TestClock, err error) {
	if err != nil {
		respondError(w, r, logger, err)
		return
	}
	encode(w, http.StatusOK, testClockResponse{Success: true, TestClock: wire.Clock(c)})
}

// frozenTimeBody is the body of create and advance.
type frozenTimeBody struct {
	Name       *string `json:"name"`
	FrozenTime *string `json:"frozenTime"`
}

// decodeFrozenTime decodes a body naming a frozenTime, which it requires.
func decodeFrozenTime(r *http.Request) (lifecycle.NewTestClock, error) {
	var body frozenTimeBody
	if err := decode(r, &body); err != nil {
		return lifecycle.NewTestClock{}, err
	}
	at, err := wire.ParseDate("frozenTime", body.FrozenTime)
	if err != nil {
		return lifecycle.NewTestClock{}, err
	}
	if at == nil {
		return lifecycle.NewTestClock{}, apperr.InvalidField("frozenTime", "frozenTime is required")
	}
	req := lifecycle.NewTestClock{FrozenTime: *at}
	if body.Name != nil {
		req.Name = *body.Name
	}
	return req, nil
}

// handleCreateTestClock is POST /v1/api/admin/test-clocks {name, frozenTime}.
func handleCreateTestClock(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeFrozenTime(r)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		c, err := lc.CreateTestClock(r.Context(), req)
		respondTestClock(w, r, logger, c, err)
	})
}

// handleListTestClocks is GET /v1/api/admin/test-clocks.
func handleListTestClocks(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clocks, err := lc.TestClocks(r.Context())
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		out := make([]wire.TestClock, len(clocks))
		for i, c := range clocks {
			out[i] = wire.Clock(c)
		}
		encode(w, http.StatusOK, struct {
			Success    bool             `json:"success"`
			TestClocks []wire.TestClock `json:"testClocks"`
		}{true, out})
	})
}

// handleGetTestClock is GET /v1/api/admin/test-clocks/{testClockId}.
func handleGetTestClock(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "testClockId")
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		c, err := lc.TestClock(r.Context(), id)
		respondTestClock(w, r, logger, c, err)
	})
}

// handleAdvanceTestClock is POST /v1/api/admin/test-clocks/{testClockId}/advance
// {frozenTime}: it answers at once, with the clock advancing.
func handleAdvanceTestClock(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "testClockId")
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		req, err := decodeFrozenTime(r)
		if err != nil {
			respondError(w, r, logger, err)
			return
		}
		c, err := lc.AdvanceTestClock(r.Context(), id, req.FrozenTime)
		respondTestClock(w, r, logger, c, err)
	})
}

// handleDeleteTestClock is DELETE /v1/api/admin/test-clocks/{testClockId}.
func handleDeleteTestClock(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "testClockId")
		if err == nil {
			err = lc.DeleteTestClock(r.Context(), id)
		}
		respondGeneric(w, r, logger, err)
	})
}
