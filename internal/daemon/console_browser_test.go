package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trialsd/trialsd/internal/config"
)

// chromium finds Debian's chromium (or another Chrome), or skips the test:
// TRIALSD_REQUIRE_CHROMIUM (set by .ci/run) makes a missing browser a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TRIALSD_REQUIRE_CHROMIUM") != "" {
		t.Fatal("no chromium binary on PATH, and TRIALSD_REQUIRE_CHROMIUM is set: apt-get install chromium")
	}
	t.Skip("no chromium binary on PATH (apt-get install chromium): the console's browser test needs one")
	return ""
}

// newBrowserTab starts a headless Chromium of its own (a fresh profile,
// nothing fetched from the network) and returns a tab, bounded by timeout.
func newBrowserTab(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(cancel)
	return ctx
}

// screenshot saves the page as name.png under the test's artifacts, and
// under docs/console/ when TRIALSD_UPDATE_SCREENSHOTS is set (how the
// documentation's pictures are made).
func screenshot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		png, err := chromedp.CaptureScreenshot()(ctx, tab)
		if err != nil {
			return fmt.Errorf("screenshot %s: %w", name, err)
		}
		dirs := []string{t.ArtifactDir()}
		if os.Getenv("TRIALSD_UPDATE_SCREENSHOTS") != "" {
			dirs = append(dirs, "../../docs/console")
		}
		for _, dir := range dirs {
			if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

// An operator with only a browser: River's UI sends them to the login
// page and, once logged in, shows River's jobs; they find a user's trial
// by e-mail, extend it by 7 days with a note (a <script> in it stays
// text), see trial.extended with the note in the timeline, are not made
// to upgrade it by another site's form, upgrade it themselves (which a
// forged upgrade would have made a conflict) and find it under
// "upgraded".
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	ctx := newBrowserTab(t, 30*time.Second)
	b := setup(t, func(c *config.Config) { c.Console.Enabled, c.HTTP.RiverUI = true, true })
	b.start(t)
	if _, _, err := b.daemon.Services().Accounts.CreateAdmin(context.Background(), "operator", "operator@acme.example", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	var fred int64
	if err := b.pool.QueryRow(context.Background(), `SELECT id FROM users WHERE username = 'fred'`).Scan(&fred); err != nil {
		t.Fatal(err)
	}
	status, body := b.do(t, "POST", "/v1/api/admin/trials", b.admin, fmt.Sprintf(`{"userId":%d}`, fred))
	if status != 200 {
		t.Fatalf("creating a trial: %d %v", status, body)
	}
	id := fmt.Sprint(body["id"])
	trialLink := `a[href="/console/trials/` + id + `"]`
	const note = `prospect asked <script>window.pwned = 1</script>`
	var location, timeline, riverText string
	var pwned int

	run(t, ctx, "River's UI behind the login",
		chromedp.Navigate(b.server.URL+"/riverui/"),
		chromedp.WaitVisible(chromedp.CSS(`#username`)), into(&location, chromedp.Location()), screenshot(t, "login"))
	if !strings.Contains(location, "/console/login?next=%2Friverui%2F") {
		t.Errorf("an unauthenticated /riverui/ landed on %s", location)
	}
	run(t, ctx, "log in",
		chromedp.SendKeys(chromedp.CSS(`#username`), "operator"), chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
	)
	load(t, ctx, "log in", chromedp.Click(chromedp.CSS(`form.login button`)))
	run(t, ctx, "River's jobs",
		chromedp.Poll[chromedp.Void](`location.pathname.startsWith("/riverui/") && document.body.innerText.includes("Jobs")`),
		into(&riverText, chromedp.Text(chromedp.CSS(`body`))), screenshot(t, "riverui"))
	run(t, ctx, "search by e-mail",
		chromedp.Navigate(b.server.URL+"/console/trials"),
		chromedp.SendKeys(chromedp.CSS(`#q`), "Fred@acme.example"))
	load(t, ctx, "search", chromedp.Submit(chromedp.CSS(`#q`)))
	run(t, ctx, "the search's result",
		chromedp.WaitVisible(chromedp.CSS(trialLink)), screenshot(t, "trials"))
	load(t, ctx, "open the trial", chromedp.Click(chromedp.CSS(trialLink)))
	run(t, ctx, "extend by 7 days with a note",
		chromedp.WaitVisible(chromedp.CSS(`#days`)),
		chromedp.SendKeys(chromedp.CSS(`#days`), "7"), chromedp.SendKeys(chromedp.CSS(`#note-exp`), note),
		chromedp.Click(chromedp.CSS(`form[action$="/expiration"] input[name=confirm]`)))
	load(t, ctx, "extend", chromedp.Click(chromedp.CSS(`form[action$="/expiration"] button`)))
	run(t, ctx, "the timeline",
		chromedp.WaitVisible(chromedp.CSS(`.flash`)), into(&timeline, chromedp.Text(chromedp.CSS(`.timeline`))),
		into(&pwned, chromedp.Evaluate[int](`window.pwned === undefined ? 0 : 1`)), screenshot(t, "trial"),
		chromedp.ScrollIntoView(chromedp.CSS(`.timeline`)), screenshot(t, "timeline"))
	if !strings.Contains(timeline, "trial.extended") || !strings.Contains(timeline, note) {
		t.Errorf("the timeline does not show trial.extended with the note:\n%s", timeline)
	}
	if pwned != 0 {
		t.Error("the note's script ran")
	}
	// Another site's page (another port of 127.0.0.1: another origin, the
	// same site, so the browser sends the login cookie along) posts the
	// console's upgrade form; Sec-Fetch-Site tells the console it is not
	// its own page.
	forger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<form method="post" action="%s/console/trials/%s/upgrade"><input name="confirm" value="yes"><button id="forge">win a prize</button></form>`, b.server.URL, id)
	}))
	t.Cleanup(forger.Close)
	run(t, ctx, "another site's page", chromedp.Navigate(forger.URL), chromedp.WaitVisible(chromedp.CSS(`#forge`)))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`#forge`)))
	if err != nil || resp.Status != http.StatusForbidden {
		t.Errorf("another site's form posted to the console: %v, %v; want 403", err, resp)
	}
	run(t, ctx, "back to the trial", chromedp.Navigate(b.server.URL+"/console/trials/"+id), chromedp.WaitVisible(chromedp.CSS(`#days`)))
	run(t, ctx, "confirm the upgrade", chromedp.Click(chromedp.CSS(`form[action$="/upgrade"] input[name=confirm]`)))
	load(t, ctx, "upgrade", chromedp.Click(chromedp.CSS(`form[action$="/upgrade"] button`)))
	run(t, ctx, "find it under upgraded",
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
		chromedp.Navigate(b.server.URL+"/console/trials?state=upgraded"), chromedp.WaitVisible(chromedp.CSS(trialLink)),
		screenshot(t, "upgraded"),
		chromedp.Navigate(b.server.URL+"/console/upcoming?within=7d"), chromedp.WaitVisible(chromedp.CSS(`main h1`)),
		screenshot(t, "upcoming"))
}

// run runs a step's actions in the tab, failing the test with the step's name.
func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// load runs an action that loads a page (a click on a link or a button)
// and waits until the page has loaded.
func load(t *testing.T, ctx context.Context, step string, action chromedp.Action[chromedp.Void]) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if resp.Status >= 400 {
		t.Fatalf("%s: %d %s", step, resp.Status, resp.URL)
	}
}

// into is an action that stores what a reads in *dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tab *chromedp.Target) (err error) {
		*dst, err = a(ctx, tab)
		return err
	})
}
