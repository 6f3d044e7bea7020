package emails_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/emails"
)

// Every embedded message renders, with a subject on one line, the sample's
// dates in UTC and "in 3 days", and its HTML escaped.
func TestEmbeddedTemplatesRender(t *testing.T) {
	tpl, err := emails.Load("")
	if err != nil {
		t.Fatal(err)
	}
	f := emails.Sample()
	f.Organization = `<script>alert("x")</script> & Co`
	for _, name := range emails.Names {
		r, err := tpl.Render(name, f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Subject == "" || strings.ContainsAny(r.Subject, "\r\n") {
			t.Errorf("%s: subject %q", name, r.Subject)
		}
		if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;") {
			t.Errorf("%s: the HTML does not escape the organization's name:\n%s", name, r.HTML)
		}
		if !strings.Contains(r.Text, `<script>alert("x")</script> & Co`) {
			t.Errorf("%s: the text lost the organization's name:\n%s", name, r.Text)
		}
	}
	r, _ := tpl.Render(emails.Ending, emails.Sample())
	if !strings.Contains(r.Subject, "ends in 3 days") || !strings.Contains(r.Text, "Thursday 13 March 2031, 09:00 UTC") {
		t.Errorf("ending: %q\n%s", r.Subject, r.Text)
	}
}

// An override replaces its embedded template; a broken one is refused at
// load with its file and line.
func TestOverridesAndBrokenTemplates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("welcome.txt", "{{define \"subject\"}}Hi {{.Name}}{{end}}Welcome aboard, {{.Name}}.\n")
	tpl, err := emails.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := tpl.Render(emails.Welcome, emails.Sample()); r.Subject != "Hi Ada Lovelace" || r.Text != "Welcome aboard, Ada Lovelace.\n" {
		t.Errorf("the override was not used: %+v", r)
	}
	for name, src := range map[string]string{
		"parse":   "{{define \"subject\"}}x{{end}}line one\nline two {{.Name\n",
		"field":   "{{define \"subject\"}}x{{end}}line one\n{{.Nmae}}\n",
		"subject": "no subject here\n",
	} {
		write("expired.txt", src)
		_, err := emails.Load(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "expired.txt")) {
			t.Errorf("%s: Load = %v, want an error naming the file", name, err)
		}
		if name != "subject" && !strings.Contains(err.Error(), ":2") && !strings.Contains(err.Error(), ":3") {
			t.Errorf("%s: %v does not give the line", name, err)
		}
	}
}

// "in" counts whole days from a day on, hours below.
func TestInSaysHowFar(t *testing.T) {
	tpl, err := emails.Load("")
	if err != nil {
		t.Fatal(err)
	}
	f := emails.Sample()
	for d, want := range map[time.Duration]string{24 * time.Hour: "in 1 day", 7 * 24 * time.Hour: "in 7 days", 5 * time.Hour: "in 5 hours"} {
		f.TrialEnds = f.Now.Add(d)
		if r, _ := tpl.Render(emails.Ending, f); !strings.Contains(r.Subject, want) {
			t.Errorf("%s ahead: subject %q, want %q", d, r.Subject, want)
		}
	}
}

// A link is valid for its user at their address only.
func TestUnsubscribeTokens(t *testing.T) {
	u := emails.NewUnsubscribes("secret", "https://trials.example.com/")
	link := u.URL(42, "Fred@Acme.example")
	if !strings.HasPrefix(link, "https://trials.example.com"+emails.UnsubscribePath+"?token=42.") {
		t.Fatalf("link %q", link)
	}
	token := link[strings.Index(link, "token=")+len("token="):]
	if id, ok := emails.UserOf(token); !ok || id != 42 {
		t.Errorf("UserOf = %d, %v", id, ok)
	}
	if !u.Valid(token, 42, "fred@acme.example") {
		t.Error("the link is refused for its user")
	}
	for _, bad := range []struct {
		token, email string
		id           int64
	}{
		{token, "fred@other.example", 42},                      // the address changed
		{token, "fred@acme.example", 43},                       // another user
		{strings.Replace(token, "42.", "43.", 1), "x@y.z", 43}, // the id swapped
		{token[:len(token)-2] + "AA", "fred@acme.example", 42}, // the MAC altered
	} {
		if u.Valid(bad.token, bad.id, bad.email) {
			t.Errorf("Valid(%q, %d, %q) = true", bad.token, bad.id, bad.email)
		}
	}
	if emails.NewUnsubscribes("other", "https://x").Valid(token, 42, "fred@acme.example") {
		t.Error("a link signed with another secret is accepted")
	}
}
