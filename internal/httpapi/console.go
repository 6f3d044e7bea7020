package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/trialsd/trialsd/internal/console"
	"github.com/trialsd/trialsd/internal/domain"
)

// consoleHost lends the console the API's sessions, error descriptions
// and text rule (console.Host), so a console login is an API login and a
// refused form is refused as the API refuses it.
type consoleHost struct {
	logger *slog.Logger
	auth   authenticator
	gate   loginGate
}

func (h consoleHost) SessionUser(r *http.Request) (domain.User, error) {
	return h.auth.resolve(r, jwtOnly)
}

func (h consoleHost) LogIn(r *http.Request, username, password string) (domain.User, string, error) {
	return h.gate.login(r, username, password)
}

func (h consoleHost) StartSession(w http.ResponseWriter, r *http.Request, token string) {
	h.gate.setCookie(w, r, token)
}

func (h consoleHost) LogOut(w http.ResponseWriter, r *http.Request) error {
	clearCookie(w, r)
	if ck, err := r.Cookie(jwtCookie); err == nil && ck.Value != "" {
		return h.gate.tokens.Revoke(r.Context(), ck.Value)
	}
	return nil
}

func (h consoleHost) Describe(w http.ResponseWriter, r *http.Request, err error) (int, string) {
	return describeError(w, r, h.logger, err)
}

func (h consoleHost) CheckText(r *http.Request) error { return requestText(r) }

func (h consoleHost) RequestID(ctx context.Context) string { return RequestID(ctx) }

// toLoginPage answers a browser (one that asks for HTML) that is not
// logged in with the console's login page, and everyone else as respond
// does: API clients keep their 401 JSON.
func toLoginPage(respond errorResponder) errorResponder {
	return func(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
		if statusOf(err) == http.StatusUnauthorized && r.Method == http.MethodGet &&
			strings.Contains(r.Header.Get("Accept"), "text/html") {
			console.RedirectToLogin(w, r)
			return
		}
		respond(w, r, logger, err)
	}
}

// riverUICSP fits River's UI, which serves its own script and stylesheet
// bundles but, unlike the console, needs inline styles: its toasts
// (goober) and theme switch insert <style> elements, and its stylesheet
// draws icons from data: images. Scripts still come only from here.
const riverUICSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
