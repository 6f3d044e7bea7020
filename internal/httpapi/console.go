package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/outbox"
)

// consoleFiles are the console's templates and its stylesheet, in the
// binary: the console needs no file beside it and loads nothing from
// elsewhere.
//
//go:embed console
var consoleFiles embed.FS

// consolePages are the console's pages, each parsed with the layout.
var consolePages = parsePages("login", "trials", "trial", "upcoming", "testclocks", "error")

func parsePages(names ...string) map[string]*template.Template {
	pages := make(map[string]*template.Template, len(names))
	for _, n := range names {
		pages[n] = template.Must(template.New(n).Funcs(consoleFuncs).
			ParseFS(consoleFiles, "console/layout.html", "console/"+n+".html"))
	}
	return pages
}

// consoleCSP allows the console's own stylesheet and nothing else: no
// script at all, no inline style, no frame, forms posting only here.
const consoleCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// csrfCookie holds the token every console form sends back (a double
// submit: another site can neither read the cookie nor set the field).
const csrfCookie = "console_csrf"

// console is the operator console: admins' pages over the services.
type console struct {
	logger    *slog.Logger
	auth      authenticator
	gate      loginGate
	clock     clock.Clock
	lifecycle *lifecycle.Service
	endpoints *outbox.Endpoints
	// testClocks and riverUI say which links the layout shows.
	testClocks, riverUI bool
}

// page is what every template gets: the layout's part and the page's Data.
type page struct {
	Title string
	CSRF  string
	Admin domain.User
	// Now is the time the page's relative times count from: the daemon's
	// clock unless the page sets it, as a test-clock trial's page does with
	// its clock's time, which NowOf then names.
	Now        time.Time
	NowOf      string
	Flash      string
	Error      string
	TestClocks bool
	RiverUI    bool
	Data       any
}

// addConsoleRoutes serves the console under /console/. Every response
// carries the strict headers; every page but the login and the stylesheet
// is for a logged-in admin; every POST needs its CSRF token and a
// same-origin request.
func addConsoleRoutes(mux *http.ServeMux, c *console) {
	sameOrigin := sameOriginOnly(c.fail)
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, consoleHeaders(sameOrigin(c.consoleText(h))))
	}
	static, _ := fs.Sub(consoleFiles, "console/static")
	handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	handle("GET /console/login", http.HandlerFunc(c.loginPage))
	handle("POST /console/login", c.checkCSRF(http.HandlerFunc(c.loginSubmit)))
	handle("POST /console/logout", c.checkCSRF(http.HandlerFunc(c.logout)))
	handle("GET /console/{$}", c.admin(http.RedirectHandler("/console/trials", http.StatusSeeOther)))
	handle("GET /console/trials", c.admin(http.HandlerFunc(c.trials)))
	handle("GET /console/trials/{id}", c.admin(http.HandlerFunc(c.trial)))
	handle("POST /console/trials/{id}/{action}", c.admin(c.checkCSRF(http.HandlerFunc(c.act))))
	handle("GET /console/upcoming", c.admin(http.HandlerFunc(c.upcoming)))
	if c.testClocks {
		addConsoleClockRoutes(handle, c)
	}
}

// errCrossOrigin is what a refused cross-origin request is answered.
var errCrossOrigin = apperr.Errorf(apperr.Forbidden, "Cross-origin requests are refused")

// sameOriginOnly is the one home of the operator surfaces' origin rule,
// for the console and River's UI alike: an unsafe request (POST, PUT,
// PATCH, DELETE) whose Sec-Fetch-Site is not same-origin (or none), or
// whose Origin is another site's or null, is refused with fail. Cookies
// ride along on same-site requests, so SameSite alone would let a
// sibling subdomain post with an admin's cookie; this does not.
func sameOriginOnly(fail func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	cross := http.NewCrossOriginProtection()
	cross.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail(w, r, errCrossOrigin)
	}))
	return cross.Handler
}

// consoleHeaders sets the console's security headers on every response.
func consoleHeaders(h http.Handler) http.Handler { return securityHeaders(consoleCSP, h) }

// riverUICSP fits River's UI, which serves its own script and stylesheet
// bundles but, unlike the console, needs inline styles: its toasts
// (goober) and theme switch insert <style> elements, and its stylesheet
// draws icons from data: images. Scripts still come only from here.
const riverUICSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the operator surfaces' security headers, with the
// surface's own content security policy, on every response.
func securityHeaders(csp string, h http.Handler) http.Handler {
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

// admin lets a logged-in admin through (the authenticator's rules, on the
// jwt cookie) and sends anyone not logged in to the login page.
func (c *console) admin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := c.auth.resolve(r, jwtOnly)
		if apperr.CodeOf(err) == apperr.Unauthorized {
			redirectToLogin(w, r)
			return
		}
		if err == nil && !u.IsAdmin {
			err = apperr.Errorf(apperr.Forbidden, "The console is for admins; log in as one")
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
	})
}

// redirectToLogin sends a browser to the login page, which brings it back
// here once logged in (to the trials after a form posted with an expired
// login: a form's address is not a page).
func redirectToLogin(w http.ResponseWriter, r *http.Request) {
	next := "/console/trials"
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	http.Redirect(w, r, "/console/login?next="+url.QueryEscape(next), http.StatusSeeOther)
}

// toLoginPage answers a browser (one that asks for HTML) that is not
// logged in with the console's login page, and everyone else as respond
// does: API clients keep their 401 JSON.
func toLoginPage(respond errorResponder) errorResponder {
	return func(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
		if statusOf(err) == http.StatusUnauthorized && r.Method == http.MethodGet &&
			strings.Contains(r.Header.Get("Accept"), "text/html") {
			redirectToLogin(w, r)
			return
		}
		respond(w, r, logger, err)
	}
}

// safeNext is where a login goes on to: a path of the console or River's
// UI, never another site. The path is judged as http.Redirect will send
// it, cleaned: /console/..//x is /x.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || strings.HasPrefix(next, "//") {
		return "/console/trials"
	}
	clean := path.Clean(u.Path)
	if strings.HasSuffix(u.Path, "/") {
		clean += "/"
	}
	if !strings.HasPrefix(clean, "/console/") && !strings.HasPrefix(clean, "/riverui/") {
		return "/console/trials"
	}
	return next
}

// csrf returns the request's CSRF token, setting the cookie that holds it
// when the browser has none yet.
func csrf(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: tok, Path: "/console/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	return tok
}

// checkCSRF refuses a form whose csrf field is not the cookie's token.
func (c *console) checkCSRF(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(csrfCookie)
		sent := r.PostFormValue("csrf")
		if err != nil || sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(ck.Value)) != 1 {
			c.fail(w, r, apperr.Errorf(apperr.Forbidden, "The form's security token is missing or stale; reload the page and try again"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// render writes the named page with status.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.CSRF = csrf(w, r)
	p.Admin = caller(r.Context())
	if p.Now.IsZero() {
		p.Now = c.clock.Now()
	}
	p.Now = p.Now.UTC()
	p.TestClocks, p.RiverUI = c.testClocks, c.riverUI
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := consolePages[name].ExecuteTemplate(w, "layout", p); err != nil {
		c.logger.ErrorContext(r.Context(), "rendering console page", "page", name, "error", err)
	}
}

// fail answers err as a page, with the status and message the API would
// give it (describeError, which also logs what needs logging).
func (c *console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := describeError(w, r, c.logger, err)
	c.render(w, r, status, "error", page{Title: http.StatusText(status), Error: msg})
}

// loginForm is what the login form shows: where it goes on to, and the
// name a failed attempt gave.
type loginForm struct{ Next, Username string }

// loginPage is the login form.
func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", page{Title: "Log in", Data: loginForm{Next: safeNext(r.URL.Query().Get("next"))}})
}

// loginSubmit logs an admin in through the same gate as /v1/api-login
// (rate limits, password, jwt cookie) and goes on to next.
func (c *console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	u, token, err := c.gate.login(r, r.PostFormValue("username"), r.PostFormValue("password"))
	if err == nil && !u.IsAdmin {
		err = apperr.Errorf(apperr.Forbidden, "The console is for admins")
	}
	if err != nil {
		status, msg := describeError(w, r, c.logger, err)
		// The name stays, so a mistyped password costs only the password;
		// the password is never sent back.
		form := loginForm{Next: next, Username: r.PostFormValue("username")}
		c.render(w, r, status, "login", page{Title: "Log in", Error: msg, Data: form})
		return
	}
	c.gate.setCookie(w, r, token)
	c.logger.InfoContext(r.Context(), "admin logged in to the console", "user_id", u.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout revokes the session's JWT (on every replica, until it expires;
// the admin's other sessions stay) and clears the jwt cookie.
func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	clearCookie(w, r)
	if ck, err := r.Cookie(jwtCookie); err == nil && ck.Value != "" {
		if err := c.gate.tokens.Revoke(r.Context(), ck.Value); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// consoleFuncs are the templates' helpers; every value they return is
// text, which html/template escapes.
var consoleFuncs = template.FuncMap{
	"utc": func(v any) string {
		if t, ok := timeOf(v); ok {
			return t.UTC().Format("2006-01-02 15:04 UTC")
		}
		return "—"
	},
	"rel": relative,
}

// timeOf reads a time or a non-nil time pointer.
func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t != nil {
			return *t, true
		}
	}
	return time.Time{}, false
}

// relative says how far v is from now, in its two largest units: "in 6d
// 23h", "3h 5m ago".
func relative(now time.Time, v any) string {
	t, ok := timeOf(v)
	if !ok {
		return ""
	}
	d := t.Sub(now)
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		s = fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}
