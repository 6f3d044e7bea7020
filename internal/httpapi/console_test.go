package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
)

// browser is a client with cookies that does not follow redirects, so a
// test sees each answer of the console.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) send(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	req, _ := http.NewRequest("GET", b.base+path, nil)
	return b.send(req)
}

// post sends a form as a same-origin browser page would.
func (b *browser) post(path string, form url.Values, header ...string) (*http.Response, string) {
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.send(req)
}

// The console's doors: a browser not logged in is sent to the login page
// (an API client keeps its JSON 401), the login takes an admin's password
// and sets the jwt cookie as it should be, every POST from another site
// (a sibling subdomain included) is refused, a note is shown as text, and
// logging out clears the cookie.
func TestConsoleLoginCSRFAndEscaping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, _, err := accounts.New(b.pool, clock.NewStub(t0), b.passwords).CreateAdmin(ctx, "operator", "ops@acme.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	r := b.post(t, "/v1/api/admin/trials", `{"userId":1}`)
	id := fmt.Sprint(r.body["id"])
	br := newBrowser(t, b.server.URL)

	resp, _ := br.get("/console/trials?q=x")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login?next=%2Fconsole%2Ftrials%3Fq%3Dx" {
		t.Fatalf("not logged in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if api := b.call(t, "GET", "/v1/api/admin/trials/"+id, "", ""); api.status != http.StatusUnauthorized {
		t.Errorf("API without credentials: %d, want its 401", api.status)
	}
	resp, body := br.get("/console/login?next=%2Fconsole%2Ftrials")
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'"} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("%s = %q", h, resp.Header.Get(h))
		}
	}
	login := url.Values{"username": {"operator"}, "password": {"correct horse battery"}, "next": {"/console/trials"}}
	// A login forged by another site would log the admin's browser in to
	// the forger's account.
	if resp, _ := br.post("/console/login", login, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden || hasJWT(resp) {
		t.Errorf("login from another site: %d", resp.StatusCode)
	}
	// A wrong password keeps the name typed (escaped), never the password.
	wrong := url.Values{"username": {`operator"><b>`}, "password": {"wrong horse battery"}, "next": {"/console/trials"}}
	resp, body = br.post("/console/login", wrong)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `value="operator&#34;&gt;&lt;b&gt;"`) || strings.Contains(body, "wrong horse") {
		t.Errorf("a failed login: %d, want the form again with the name kept:\n%.2000s", resp.StatusCode, body)
	}
	resp, _ = br.post("/console/login", login)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/trials" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := resp.Header.Get("Set-Cookie"); !strings.Contains(c, "jwt=") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
		t.Errorf("jwt cookie: %q", c)
	}

	act := url.Values{"confirm": {"yes"}, "note": {"<script>alert(1)</script>"}, "days": {"7"}}
	for _, from := range [][]string{
		{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://other.acme.example", "Sec-Fetch-Site", "same-site"},
		{"Origin", "https://evil.example"}, // a browser without Sec-Fetch-Site
		{"Origin", "null"},
	} {
		if resp, _ := br.post("/console/trials/"+id+"/expiration", act, from...); resp.StatusCode != http.StatusForbidden {
			t.Errorf("action with %q: %d, want 403", from, resp.StatusCode)
		}
	}
	if n := b.scalar(t, `SELECT count(*) FROM trial_events WHERE kind = 'trial.extended'`); n != "0" {
		t.Fatalf("a refused action recorded %s events", n)
	}
	if resp, body := br.post("/console/trials/"+id+"/expiration", act); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("extend: %d %.500s", resp.StatusCode, body)
	}
	_, body = br.get("/console/trials/" + id)
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(body, "<script>alert") {
		t.Errorf("the note is not shown as text")
	}

	if resp, _ = br.get("/console/trials"); resp.StatusCode != http.StatusOK {
		t.Fatalf("trials: %d", resp.StatusCode)
	}
	resp, _ = br.post("/console/logout", url.Values{})
	if c := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(c, "jwt=;") || !strings.Contains(c, "Max-Age=0") {
		t.Errorf("logout: %d %q", resp.StatusCode, c)
	}
	if resp, _ := br.get("/console/trials"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
	// A form posted once logged out leads to the login, then to the list.
	if resp, _ := br.post("/console/trials/"+id+"/upgrade", act); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/console/login?next=%2Fconsole%2Ftrials" {
		t.Errorf("a form posted logged out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// consoleLogin logs an admin in to the console and returns its browser.
func consoleLogin(t *testing.T, b *testBundle) *browser {
	t.Helper()
	if _, _, err := accounts.New(b.pool, clock.NewStub(t0), b.passwords).CreateAdmin(context.Background(), "operator", "ops@acme.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t, b.server.URL)
	login := url.Values{"username": {"operator"}, "password": {"correct horse battery"}}
	if resp, _ := br.post("/console/login", login); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return br
}

// The test clocks' page creates a clock, advances it (the page follows the
// clock while it advances), refuses a second advance, and deletes it only
// when confirmed; its forms are refused from another site like every other.
func TestConsoleTestClocks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := consoleLogin(t, b)
	if resp, body := br.get("/console/test-clocks"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "No test clock yet") {
		t.Fatalf("empty page: %d %.300s", resp.StatusCode, body)
	}
	create := url.Values{"name": {"rehearsal"}, "frozenTime": {"2031-01-01T00:00"}}
	if resp, _ := br.post("/console/test-clocks", create, "Origin", "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("create from another site: %d", resp.StatusCode)
	}
	if resp, body := br.post("/console/test-clocks", create); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d %.500s", resp.StatusCode, body)
	}
	_, body := br.get("/console/test-clocks")
	if !strings.Contains(body, "rehearsal") || !strings.Contains(body, "2031-01-01 00:00 UTC") || strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("after create: %.2000s", body)
	}
	id := b.scalar(t, `SELECT max(id) FROM test_clocks`)
	advance := url.Values{"days": {"15"}}
	if resp, body := br.post("/console/test-clocks/"+id+"/advance", advance); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("advance: %d %.500s", resp.StatusCode, body)
	}
	_, body = br.get("/console/test-clocks")
	if !strings.Contains(body, "advancing") || !strings.Contains(body, "to 2031-01-16 00:00 UTC") || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("while advancing: %.2000s", body)
	}
	if resp, body := br.post("/console/test-clocks/"+id+"/advance", advance); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already advancing") {
		t.Errorf("a second advance: %d %.300s", resp.StatusCode, body)
	}
	del := url.Values{}
	if resp, _ := br.post("/console/test-clocks/"+id+"/delete", del); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("delete unconfirmed: %d", resp.StatusCode)
	}
	del.Set("confirm", "yes")
	if resp, _ := br.post("/console/test-clocks/"+id+"/delete", del); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if n := b.scalar(t, `SELECT count(*) FROM test_clocks`); n != "0" {
		t.Errorf("%s clocks left after the delete", n)
	}
}

// clockTrial creates a test clock at 2031-01-01 and the operator's trial on
// it, expiring at expires, and returns their ids.
func (b *testBundle) clockTrial(t *testing.T, expires string) (clockID, trialID int64) {
	t.Helper()
	r := b.call(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"rehearsal","frozenTime":"2031-01-01T00:00:00Z"}`)
	if r.status != http.StatusOK {
		t.Fatalf("create clock: %d %v", r.status, r.body)
	}
	clockID = int64(r.body["testClock"].(map[string]any)["id"].(float64))
	userID := b.scalar(t, `SELECT id FROM users WHERE username = 'operator'`)
	r = b.call(t, "POST", "/v1/api/admin/trials", b.admin,
		fmt.Sprintf(`{"userId":%s,"testClockId":%d,"expirationDate":%q}`, userID, clockID, expires))
	if r.status != http.StatusOK {
		t.Fatalf("create trial: %d %v", r.status, r.body)
	}
	return clockID, int64(r.body["id"].(float64))
}

// A test clock's trial is timed by its clock on its console page: "in 14d"
// from the clock's 1 January, not years from the wall clock, and the page
// says whose time it shows. The list names the clock instead of a time
// relative to the wall clock.
func TestConsoleTimesClockTrialsByTheirClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := consoleLogin(t, b)
	clockID, trialID := b.clockTrial(t, "2031-01-15T00:00:00Z")
	_, body := br.get(fmt.Sprintf("/console/trials/%d", trialID))
	for _, want := range []string{"2031-01-15 00:00 UTC <small>in 14d 0h</small>", "Now: <time", "2031-01-01 00:00 UTC</time>, on test clock " + fmt.Sprint(clockID) + " (simulated time)"} {
		if !strings.Contains(body, want) {
			t.Errorf("trial page lacks %q:\n%.3000s", want, body)
		}
	}
	if _, list := br.get("/console/trials"); !strings.Contains(list, "2031-01-15 00:00 UTC <small>test clock "+fmt.Sprint(clockID)+"</small>") {
		t.Errorf("trial list does not name the clock:\n%.3000s", list)
	}
}

// A trial's page links to the preview of each of its e-mails, which shows
// one as the trial's user would get it, by the trial's clock.
func TestConsolePreviewsTheTrialsEmails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := consoleLogin(t, b)
	_, trialID := b.clockTrial(t, "2031-01-04T00:00:00Z")
	page := fmt.Sprintf("/console/trials/%d", trialID)
	if _, body := br.get(page); !strings.Contains(body, `<a href="`+page+`/emails/deletion_warning">deletion_warning</a>`) {
		t.Errorf("the trial's page does not link to the previews:\n%.3000s", body)
	}
	resp, body := br.get(page + "/emails/ending")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "ends in 3 days") || !strings.Contains(body, "&lt;p&gt;Hello") {
		t.Errorf("the ending preview: %d\n%.3000s", resp.StatusCode, body)
	}
	if resp, _ := br.get(page + "/emails/farewell"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown e-mail's preview: %d, want 400", resp.StatusCode)
	}
}

// purgeTrial deletes trial id's organization now and purges it at its
// purge date, as the purge job would.
func purgeTrial(t *testing.T, b *testBundle, id int64) {
	t.Helper()
	ctx := t.Context()
	lc := b.services.Lifecycle
	if err := lc.DeleteTrialNow(ctx, domain.Operator, id, "test"); err != nil {
		t.Fatal(err)
	}
	tr, err := lc.Trial(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var purgeAt time.Time
	if err := b.pool.QueryRow(ctx, `SELECT purge_at FROM organizations WHERE id = $1`, tr.OrganizationID).Scan(&purgeAt); err != nil {
		t.Fatal(err)
	}
	b.clock.Set(purgeAt)
	if res, err := lc.Purge(ctx, tr.OrganizationID, purgeAt, "test"); err != nil || res.Outcome != lifecycle.Applied {
		t.Fatalf("Purge = %+v, %v", res, err)
	}
}

// The trial list's "purged" filter lists the trials whose rows are gone,
// from their history, and a purged trial's id finds it there.
func TestConsolePurgedFilter(t *testing.T) {
	t.Parallel()
	b := setup(t, manyTrials)
	var ids []int64
	for range 2 {
		r := b.post(t, "/v1/api/admin/trials", `{"userId":1,"expirationDate":"2026-07-01T00:00:00Z"}`)
		if r.status != http.StatusOK {
			t.Fatalf("create trial: %d %v", r.status, r.body)
		}
		ids = append(ids, int64(r.body["id"].(float64)))
	}
	purgeTrial(t, b, ids[0])
	br := consoleLogin(t, b) // after the purge: the clock is weeks later
	_, body := br.get("/console/trials?state=purged")
	row := fmt.Sprintf(`<td><a href="/console/trials/%d">%d</a></td>`, ids[0], ids[0])
	if !strings.Contains(body, row) || strings.Contains(body, fmt.Sprintf(`/console/trials/%d"`, ids[1])) {
		t.Errorf("purged list: want trial %d only:\n%.3000s", ids[0], body)
	}
	if !strings.Contains(body, `<option value="purged" selected>`) {
		t.Errorf("the filter does not offer purged:\n%.1000s", body)
	}
	if _, body := br.get(fmt.Sprintf("/console/trials?state=purged&q=%d", ids[1])); strings.Contains(body, "<tbody>") {
		t.Errorf("a live trial's id found a purged one:\n%.2000s", body)
	}
	if _, body := br.get(fmt.Sprintf("/console/trials?state=purged&q=%d", ids[0])); !strings.Contains(body, row) {
		t.Errorf("the purged trial's id did not find it:\n%.2000s", body)
	}
	// Its page says it was purged, and shows the history that remains.
	resp, body := br.get(fmt.Sprintf("/console/trials/%d", ids[0]))
	want := fmt.Sprintf("Trial %d was purged at ", ids[0])
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) || !strings.Contains(body, `<strong class="kind">trial.purged</strong>`) ||
		!strings.Contains(body, `<strong class="kind">trial.created</strong>`) || strings.Contains(body, "Actions") {
		t.Errorf("a purged trial's page: %d, want its purge and its history:\n%.3000s", resp.StatusCode, body)
	}
}

// Dates stay within four-digit years on every way in: a test clock at
// 9999-12-31 (whose trial would expire in year 10000, which RFC 3339,
// River's job pages and the JSON logs cannot write) is refused by the API
// and by the lifecycle the console and the CLI go through, and so is an
// advance or an expiration date past 9000.
func TestDatesStayWithinFourDigitYears(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	lc := b.services.Lifecycle
	r := b.call(t, "POST", "/v1/api/admin/test-clocks", b.admin, `{"name":"edge","frozenTime":"9999-12-31T23:59:59Z"}`)
	if msg, _ := r.body["error"].(string); r.status != http.StatusBadRequest || !strings.Contains(msg, "frozenTime must be from 1970-01-01 up to 9000-01-01") {
		t.Errorf("API clock at 9999-12-31: %d %v, want 400", r.status, r.body)
	}
	if _, err := lc.CreateTestClock(ctx, lifecycle.NewTestClock{Name: "edge", FrozenTime: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}); apperr.FieldOf(err) != "frozenTime" {
		t.Errorf("CreateTestClock at 9999-12-31: %v, want a 400 on frozenTime", err)
	}
	clk, err := lc.CreateTestClock(ctx, lifecycle.NewTestClock{Name: "late", FrozenTime: time.Date(8999, 6, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.AdvanceTestClock(ctx, clk.ID, time.Date(9000, 2, 1, 0, 0, 0, 0, time.UTC)); apperr.FieldOf(err) != "frozenTime" {
		t.Errorf("an advance to 9000-02-01: %v, want a 400 on frozenTime", err)
	}
	r = b.post(t, "/v1/api/admin/trials", fmt.Sprintf(`{"userId":1,"testClockId":%d}`, clk.ID))
	if r.status != http.StatusOK {
		t.Fatalf("a trial on the clock: %d %v", r.status, r.body)
	}
	id := int64(r.body["id"].(float64))
	late := time.Date(9005, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := lc.UpdateTrial(ctx, domain.Operator, id, lifecycle.UpdateTrialRequest{ExpirationDate: &late}, "test"); apperr.FieldOf(err) != "expirationDate" {
		t.Errorf("an expiration date in 9005: %v, want a 400 on expirationDate", err)
	}
}

// NUL and invalid UTF-8 in a form or a query, which Postgres refuses with
// a 500, are a 400 on every way text enters: the console's forms and
// search, and the API's query strings.
func TestTextOutsideJSONBodiesIsChecked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if r := b.post(t, "/v1/api/user/trial", `{}`); r.status != http.StatusOK {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	br := consoleLogin(t, b)
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/console/trials/1/expiration", url.Values{"date": {"a\x00b"}, "confirm": {"yes"}}},
		{"/console/trials/1/upgrade", url.Values{"note": {"a\x00b"}, "confirm": {"yes"}}},
		{"/console/test-clocks", url.Values{"name": {"\x00"}, "frozenTime": {"2031-01-01T00:00"}}},
		{"/console/test-clocks", url.Values{"name": {"\xC0\xAF"}, "frozenTime": {"2031-01-01T00:00"}}},
	} {
		resp, body := br.post(tc.path, tc.form)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "must not contain NUL characters or invalid UTF-8") {
			t.Errorf("POST %s %q: %d, want the console's 400:\n%.500s", tc.path, tc.form.Encode(), resp.StatusCode, body)
		}
	}
	for _, q := range []string{"q=%00", "q=%FF"} {
		if resp, body := br.get("/console/trials?" + q); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "<html") {
			t.Errorf("GET /console/trials?%s: %d, want the console's 400 page", q, resp.StatusCode)
		}
	}
	for _, path := range []string{"/v1/api/admin/trials/upcoming?within=%00", "/v1/api/admin/trials/1/events?after=%FF"} {
		if r := b.call(t, "GET", path, b.admin, ""); r.status != http.StatusBadRequest || r.body["success"] != false {
			t.Errorf("GET %s: %d %v, want the API's 400", path, r.status, r.body)
		}
	}
	if n := b.scalar(t, `SELECT count(*) FROM test_clocks`); n != "0" {
		t.Errorf("%s clocks made from refused names", n)
	}
}

// A console logout revokes that session's JWT, in the database: the old
// token is refused by the console, the admin API and River's UI, while the
// admin's other sessions keep working.
func TestConsoleLogoutRevokesTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br := consoleLogin(t, b)
	u, _ := url.Parse(b.server.URL)
	var jwt string
	for _, c := range br.client.Jar.Cookies(u) {
		if c.Name == "jwt" {
			jwt = c.Value
		}
	}
	_, other, err := b.tokens.Login(context.Background(), "operator", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	withToken := func(tok, path string, header ...string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", b.server.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: "jwt", Value: tok})
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if resp, _ := br.post("/console/logout", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if status := withToken(jwt, "/console/trials", "Accept", "text/html"); status != http.StatusSeeOther {
		t.Errorf("console with the old token: %d, want the login page's 303", status)
	}
	if status := withToken(jwt, "/v1/api/admin/trials/upcoming"); status != http.StatusUnauthorized {
		t.Errorf("admin API with the old token: %d, want 401", status)
	}
	if status := withToken(jwt, "/riverui/api/jobs"); status != http.StatusUnauthorized {
		t.Errorf("River UI with the old token: %d, want 401", status)
	}
	if status := withToken(other, "/v1/api/admin/trials/upcoming"); status != http.StatusOK {
		t.Errorf("the admin's other session after the logout: %d, want 200", status)
	}
	if n := b.scalar(t, `SELECT count(*) FROM revoked_tokens`); n != "1" {
		t.Errorf("%s revoked tokens, want 1", n)
	}
}

// hasJWT reports whether resp sets a session cookie.
func hasJWT(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == "jwt" && c.Value != "" {
			return true
		}
	}
	return false
}
