package httpapi

import (
	"html/template"
	"log/slog"
	"net/http"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/lifecycle"
)

// unsubscribePage is what a reader who follows a reminder's link sees: a
// button, not an unsubscribe, because mail scanners follow links too.
var unsubscribePage = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body><p>Stop the reminders about your enterprise trials? E-mails about your
organization's data (its expiry and deletion) still reach you.</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe from reminders</button></form></body></html>
`))

// handleUnsubscribePage shows the button of a reminder's link.
func handleUnsubscribePage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
		_ = unsubscribePage.Execute(w, nil)
	})
}

// handleUnsubscribe is RFC 8058's one-click unsubscribe, which a mail
// client POSTs (List-Unsubscribe=One-Click) with no login: the token in
// the link is the credential, and it changes only the reminders' opt-out.
func handleUnsubscribe(logger *slog.Logger, lc *lifecycle.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := lc.Unsubscribe(r.Context(), r.URL.Query().Get("token"))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case err == nil:
			_, _ = w.Write([]byte("You will get no more reminders about your trials.\n"))
		case apperr.CodeOf(err) == apperr.NotFound:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("This unsubscribe link is not valid (any more).\n"))
		default:
			logger.ErrorContext(r.Context(), "unsubscribing", "error", err)
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("Something went wrong; try again later.\n"))
		}
	})
}
