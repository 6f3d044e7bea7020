package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/testdb"
)

// emails preview renders the sample or a real trial's e-mail, as text or
// HTML; an unknown template is refused with the list.
func TestEmailsPreview(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	expires := time.Now().Add(3*24*time.Hour + time.Hour).UTC()
	_, started := rootTrial(t, pool, &expires)

	r := mustRun(t, env, "", "emails", "preview", "ending")
	if !strings.HasPrefix(r.stdout, "Subject: Your enterprise trial of Analytical Engines Ltd ends in 3 days\n\nHello Ada Lovelace,") {
		t.Errorf("the sample's preview:\n%s", r.stdout)
	}
	r = mustRun(t, env, "", "emails", "preview", "ending", "--trial", strconv.FormatInt(started.TrialID, 10), "--html")
	if !strings.Contains(r.stdout, "ends in 3 days") || !strings.Contains(r.stdout, "<p>Hello root,</p>") || !strings.Contains(r.stdout, "/v1/emails/unsubscribe?token=") {
		t.Errorf("the trial's preview:\n%s", r.stdout)
	}
	r = mustFail(t, env, "", "emails", "preview", "farewell")
	if !strings.Contains(r.stderr, "welcome, ending, expired") {
		t.Errorf("an unknown template: %s", r.stderr)
	}
}

// A template override that does not parse stops serve before it serves,
// naming the file and the line.
func TestServeStopsOnABrokenTemplate(t *testing.T) {
	t.Parallel()
	_, url := testdb.NewWithURL(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "expired.txt")
	if err := os.WriteFile(broken, []byte("{{define \"subject\"}}Gone{{end}}\nYour data goes on {{date .DataDeletedOn}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := dbEnv(url)
	env["TRIALSD_AUTH_JWT_SECRET"] = strings.Repeat("s", 32)
	env["TRIALSD_TURNSTILE_SECRET"] = "turnstile-secret"
	env["TRIALSD_HTTP_ADDR"] = "127.0.0.1:0"
	env["TRIALSD_EMAIL_TEMPLATES_DIR"] = dir
	env["TRIALSD_EMAIL_SENDER"], env["TRIALSD_EMAIL_SMTP_ADDR"] = "smtp", "127.0.0.1:25"
	r := run(t, env, "", "serve")
	if r.code == exitOK || !strings.Contains(r.stderr, "trialsd: e-mail template: "+broken+":2") {
		t.Errorf("stderr %q, want it to name %s:2", r.stderr, broken)
	}
	// And it warned of the unsubscribe links' loopback base on the way.
	if !strings.Contains(r.stderr, "email.public_url is a loopback address") {
		t.Errorf("stderr %q: no warning of email.public_url's default", r.stderr)
	}
}
