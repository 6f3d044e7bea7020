package console

import (
	"io/fs"
	"net/http"
)

// Routes serves the console under /console/ on mux. Every response carries
// the strict headers; every page but the login and the stylesheet is for a
// logged-in admin; every POST must be same-origin (SameOriginOnly).
func Routes(mux *http.ServeMux, d Deps) {
	c := &console{host: d.Host, logger: d.Logger, clock: d.Clock, lifecycle: d.Lifecycle, endpoints: d.Endpoints, eligibility: d.Eligibility,
		testClocks: d.TestClocks, riverUI: d.RiverUI}
	sameOrigin := SameOriginOnly(c.fail)
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, SecurityHeaders(CSP, sameOrigin(c.checkText(h))))
	}
	static, _ := fs.Sub(files, "pages/static")
	handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	handle("GET /console/login", http.HandlerFunc(c.loginPage))
	handle("POST /console/login", http.HandlerFunc(c.loginSubmit))
	handle("POST /console/logout", http.HandlerFunc(c.logout))
	handle("GET /console/{$}", c.admin(http.RedirectHandler("/console/trials", http.StatusSeeOther)))
	handle("GET /console/trials", c.admin(http.HandlerFunc(c.trials)))
	handle("GET /console/trials/{id}", c.admin(http.HandlerFunc(c.trial)))
	handle("POST /console/trials/{id}/{action}", c.admin(http.HandlerFunc(c.act)))
	handle("POST /console/trials/{id}/eligibility-grant", c.admin(http.HandlerFunc(c.grant)))
	handle("GET /console/trials/{id}/emails/{name}", c.admin(http.HandlerFunc(c.emailPreview)))
	handle("GET /console/upcoming", c.admin(http.HandlerFunc(c.upcoming)))
	if c.testClocks {
		handle("GET /console/test-clocks", c.admin(http.HandlerFunc(c.testClocksPage)))
		handle("POST /console/test-clocks", c.admin(http.HandlerFunc(c.createTestClock)))
		handle("POST /console/test-clocks/{id}/{action}", c.admin(http.HandlerFunc(c.actOnTestClock)))
	}
}
