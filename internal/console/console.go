// Package console is the operator console: server-rendered pages over the
// lifecycle, for admins, mounted by the HTTP server under /console/. It has
// no sessions, error statuses or request rules of its own: the server that
// mounts it lends it the API's (Host), so a console login is an API login
// and a refused form reads as the API would refuse it.
package console

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/outbox"
)

// files are the console's templates and its stylesheet, in the binary: the
// console needs no file beside it and loads nothing from elsewhere.
//
//go:embed pages
var files embed.FS

// pages are the console's pages, each parsed with the layout.
var pages = parsePages("login", "trials", "trial", "upcoming", "testclocks", "email", "error")

func parsePages(names ...string) map[string]*template.Template {
	out := make(map[string]*template.Template, len(names))
	for _, n := range names {
		out[n] = template.Must(template.New(n).Funcs(funcs).
			ParseFS(files, "pages/layout.html", "pages/"+n+".html"))
	}
	return out
}

// Host is what the console borrows from the server that mounts it, so that
// it has one of each with the API: the sessions, the way an error becomes a
// status and a message, the rule for a request's text and the request's id.
type Host interface {
	// SessionUser is the user r's session cookie names (an API key does
	// not log in to the console); an apperr.Unauthorized error when none.
	SessionUser(r *http.Request) (domain.User, error)
	// LogIn checks a login as the API's login does, rate limits included,
	// and returns the user and their new session's token.
	LogIn(r *http.Request, username, password string) (domain.User, string, error)
	// StartSession sets the cookie of a session LogIn returned.
	StartSession(w http.ResponseWriter, r *http.Request, token string)
	// LogOut ends r's session (revoked on every replica) and clears its
	// cookie.
	LogOut(w http.ResponseWriter, r *http.Request) error
	// Describe is the status and message the API would answer err with; it
	// logs what needs logging and sets headers such as Retry-After on w.
	Describe(w http.ResponseWriter, r *http.Request, err error) (int, string)
	// CheckText refuses a query or form holding text Postgres cannot store.
	CheckText(r *http.Request) error
	// RequestID is the id the server gave the request, recorded as the
	// cause of what the request changes.
	RequestID(ctx context.Context) string
}

// Deps are what the console works with.
type Deps struct {
	Host      Host
	Logger    *slog.Logger
	Clock     clock.Clock
	Lifecycle *lifecycle.Service
	Endpoints *outbox.Endpoints
	// Eligibility shows a trial's company's history and grants trials
	// the rules refuse.
	Eligibility *eligibility.Service
	// TestClocks serves the test clocks' page and links to it; RiverUI
	// links to River's UI, which the server mounts beside the console.
	TestClocks, RiverUI bool
}

// console is the console's handlers over its Deps.
type console struct {
	host        Host
	logger      *slog.Logger
	clock       clock.Clock
	lifecycle   *lifecycle.Service
	endpoints   *outbox.Endpoints
	eligibility *eligibility.Service
	// testClocks and riverUI say which links the layout shows.
	testClocks, riverUI bool
}

// page is what every template gets: the layout's part and the page's Data.
type page struct {
	Title string
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

// render writes the named page with status.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Admin = adminOf(r.Context())
	if p.Now.IsZero() {
		p.Now = c.clock.Now()
	}
	p.Now = p.Now.UTC()
	p.TestClocks, p.RiverUI = c.testClocks, c.riverUI
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		c.logger.ErrorContext(r.Context(), "rendering console page", "page", name, "error", err)
	}
}

// fail answers err as a page, with the status and message the API would
// give it.
func (c *console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := c.host.Describe(w, r, err)
	c.render(w, r, status, "error", page{Title: http.StatusText(status), Error: msg})
}

// adminKey is the context key of the logged-in admin.
type adminKey struct{}

// adminOf is the logged-in admin of a request the admin middleware let
// through; the zero User on the login page.
func adminOf(ctx context.Context) domain.User {
	u, _ := ctx.Value(adminKey{}).(domain.User)
	return u
}

// actorOf is who a console request acts as: its admin.
func actorOf(r *http.Request) domain.Actor {
	return domain.Actor{UserID: adminOf(r.Context()).ID, Admin: true}
}

// causeOf is what a console request records as the cause of its changes.
func (c *console) causeOf(r *http.Request) string {
	return domain.RequestCause(c.host.RequestID(r.Context()))
}
