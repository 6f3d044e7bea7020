package httpapi

import (
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/wire"
)

// requestText is the one check of the text a request carries outside a
// JSON body, which decode checks (wire.CheckJSON): every name and value of
// its query and, for a form, of its form (wire.CheckText), since Postgres
// text cannot hold a NUL and refuses invalid UTF-8 with a 500. A form is
// parsed here (bounded by limitBody), and its handler reads it from
// r.PostForm as usual.
func requestText(r *http.Request) error {
	if err := valuesText(r.URL.Query()); err != nil {
		return err
	}
	if !isForm(r) {
		return nil
	}
	if err := r.ParseForm(); err != nil {
		return apperr.InvalidField("body", "the form could not be read")
	}
	return valuesText(r.PostForm)
}

func valuesText(v url.Values) error {
	for name, values := range v {
		if err := wire.CheckText(name, "a field name"); err != nil {
			return err
		}
		for _, s := range values {
			if err := wire.CheckText(s, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func isForm(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

// refuseBadText answers 400 for a request whose query or form fails
// requestText. The console's pages check their own (consoleText), so that
// the refusal is a console page.
func refuseBadText(logger *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/console/") {
			h.ServeHTTP(w, r)
			return
		}
		if err := requestText(r); err != nil {
			if strings.HasPrefix(r.URL.Path, "/api/v2/") {
				respondErrorV2(w, r, logger, err)
			} else {
				respondError(w, r, logger, err)
			}
			return
		}
		h.ServeHTTP(w, r)
	})
}
