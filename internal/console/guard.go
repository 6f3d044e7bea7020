package console

import (
	"context"
	"net/http"

	"github.com/trialsd/trialsd/internal/apperr"
)

// CSP allows the console's own stylesheet and nothing else: no script at
// all, no inline style, no frame, forms posting only here.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// errCrossOrigin is what a refused cross-origin request is answered.
var errCrossOrigin = apperr.Errorf(apperr.Forbidden, "Cross-origin requests are refused")

// SameOriginOnly is the one home of the operator surfaces' origin rule,
// their whole defence against cross-site request forgery, for the console
// and River's UI alike: an unsafe request (POST, PUT, PATCH, DELETE) whose
// Sec-Fetch-Site is not same-origin (or none), or whose Origin is another
// site's or null, is refused with fail. Cookies ride along on same-site
// requests, so SameSite alone would let a sibling subdomain post with an
// admin's cookie; this does not. Every browser the console supports sends
// Sec-Fetch-Site or Origin on such a request, so a token in each form
// (a double submit) would refuse nothing this does not; it is not kept.
func SameOriginOnly(fail func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	cross := http.NewCrossOriginProtection()
	cross.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail(w, r, errCrossOrigin)
	}))
	return cross.Handler
}

// SecurityHeaders sets the operator surfaces' security headers, with the
// surface's own content security policy, on every response.
func SecurityHeaders(csp string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// admin lets a logged-in admin through (the host's sessions) and sends
// anyone not logged in to the login page.
func (c *console) admin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := c.host.SessionUser(r)
		if apperr.CodeOf(err) == apperr.Unauthorized {
			RedirectToLogin(w, r)
			return
		}
		if err == nil && !u.IsAdmin {
			err = apperr.Errorf(apperr.Forbidden, "The console is for admins; log in as one")
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminKey{}, u)))
	})
}

// checkText refuses a query or form the host's text rule refuses, as a
// page.
func (c *console) checkText(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.host.CheckText(r); err != nil {
			c.fail(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}
