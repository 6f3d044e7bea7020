package console

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/trialsd/trialsd/internal/apperr"
)

// RedirectToLogin sends a browser to the login page, which brings it back
// here once logged in (to the trials after a form posted with an expired
// login: a form's address is not a page). River's UI sends its browsers
// here too.
func RedirectToLogin(w http.ResponseWriter, r *http.Request) {
	next := "/console/trials"
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	http.Redirect(w, r, "/console/login?next="+url.QueryEscape(next), http.StatusSeeOther)
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

// loginForm is what the login form shows: where it goes on to, and the
// name a failed attempt gave.
type loginForm struct{ Next, Username string }

// loginPage is the login form.
func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", page{Title: "Log in", Data: loginForm{Next: safeNext(r.URL.Query().Get("next"))}})
}

// loginSubmit logs an admin in through the host's login (the API's rate
// limits, password and session cookie) and goes on to next.
func (c *console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	u, token, err := c.host.LogIn(r, r.PostFormValue("username"), r.PostFormValue("password"))
	if err == nil && !u.IsAdmin {
		err = apperr.Errorf(apperr.Forbidden, "The console is for admins")
	}
	if err != nil {
		status, msg := c.host.Describe(w, r, err)
		// The name stays, so a mistyped password costs only the password;
		// the password is never sent back.
		form := loginForm{Next: next, Username: r.PostFormValue("username")}
		c.render(w, r, status, "login", page{Title: "Log in", Error: msg, Data: form})
		return
	}
	c.host.StartSession(w, r, token)
	c.logger.InfoContext(r.Context(), "admin logged in to the console", "user_id", u.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session (revoked on every replica, until it expires;
// the admin's other sessions stay).
func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	if err := c.host.LogOut(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
