package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
)

// authMode says which credentials an operation accepts.
type authMode int

const (
	// anyCredential: an x-api-key or a JWT (cookie or x-jwt-token header).
	anyCredential authMode = iota
	// jwtOnly: a JWT; x-api-key is ignored, as the Edge Impulse API does.
	jwtOnly
)

// authenticator resolves a request's credentials to a user.
type authenticator struct {
	logger   *slog.Logger
	accounts *accounts.Service
	tokens   *accounts.Tokens
}

// require authenticates the caller by the contract's rules and puts them in
// the request's context: every credential presented must be valid (an
// expired, forged or revoked one is 401, never silently skipped), a JWT is
// preferred, and two valid credentials naming different users are 401.
func (a authenticator) require(mode authMode, respond errorResponder) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, err := a.resolve(r, mode)
			if err != nil {
				respond(w, r, a.logger, err)
				return
			}
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
		})
	}
}

func (a authenticator) resolve(r *http.Request, mode authMode) (domain.User, error) {
	var found *domain.User
	use := func(u domain.User) error {
		if found != nil && found.ID != u.ID {
			return apperr.Errorf(apperr.Unauthorized, "The credentials sent name different users")
		}
		if found == nil {
			found = &u
		}
		return nil
	}
	var tokens []string
	if c, err := r.Cookie("jwt"); err == nil && c.Value != "" {
		tokens = append(tokens, c.Value)
	}
	if h := r.Header.Get("x-jwt-token"); h != "" {
		tokens = append(tokens, h)
	}
	for _, tok := range tokens {
		u, err := a.tokens.Authenticate(r.Context(), tok)
		if err != nil {
			return domain.User{}, err
		}
		if err := use(u); err != nil {
			return domain.User{}, err
		}
	}
	if key := r.Header.Get("x-api-key"); key != "" && mode != jwtOnly {
		u, err := a.accounts.AuthenticateAPIKey(r.Context(), key)
		if err != nil {
			return domain.User{}, err
		}
		if err := use(u); err != nil {
			return domain.User{}, err
		}
	}
	if found == nil {
		if mode == jwtOnly {
			return domain.User{}, apperr.Errorf(apperr.Unauthorized, "Authentication required: this operation takes a JWT (log in with /v1/api-login)")
		}
		return domain.User{}, apperr.Errorf(apperr.Unauthorized, "Authentication required: send an x-api-key header or a JWT")
	}
	return *found, nil
}

// requireAdmin answers 403 to authenticated callers who are not admins.
func requireAdmin(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !caller(r.Context()).IsAdmin {
				respondError(w, r, logger, apperr.Errorf(apperr.Forbidden, "This operation requires an admin"))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// caller is the authenticated user of the request.
func caller(ctx context.Context) domain.User {
	u, _ := ctx.Value(userKey).(domain.User)
	return u
}
