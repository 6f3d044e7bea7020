// Package emails renders the e-mails trialsd sends to a trial's people:
// one plain-text and one HTML Go template per message, embedded, each
// overridable by a file of the same name in email.templates_dir. Every
// template is parsed and rendered against a sample trial when the
// templates are loaded, at start-up, so a broken override stops the daemon
// with its file and line rather than failing the 10,000th e-mail.
package emails

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
)

// The messages, by template name.
const (
	// Welcome is sent when a trial starts, with its end date.
	Welcome = "welcome"
	// Ending is sent before the trial's expiry (email.notices.ending_before).
	Ending = "ending"
	// Expired is sent at the expiry: when the data will be deleted and how
	// to keep it.
	Expired = "expired"
	// DeletionWarning is sent before the grace period's deletion
	// (email.notices.deletion_before).
	DeletionWarning = "deletion_warning"
	// Deleted is sent when the organization is deleted.
	Deleted = "deleted"
	// Upgraded confirms an upgrade.
	Upgraded = "upgraded"
)

// Names lists every message, in the order of a trial's life.
var Names = []string{Welcome, Ending, Expired, DeletionWarning, Deleted, Upgraded}

//go:embed templates
var embedded embed.FS

// Fields are what a template may use. Dates are in UTC.
type Fields struct {
	// Name is the recipient's name, or their username when they gave none.
	Name         string
	Organization string
	// Now is when the message is written: the trial's clock, so a test
	// clock's rehearsal shows its simulated time.
	Now time.Time
	// TrialEnds is the trial's expiration date; DataDeletedOn the end of
	// its grace period, when the organization is deleted (while the trial
	// is active: the expiration date plus lifecycle.grace_period); PurgeOn
	// when a deleted organization is erased for good (zero unless deleted).
	TrialEnds, DataDeletedOn, PurgeOn time.Time
	// UpgradeURL, ExportURL and Support come from email.links.
	UpgradeURL, ExportURL, Support string
	// UnsubscribeURL is the recipient's one-click opt-out of reminders;
	// empty on a service message, which cannot be unsubscribed from.
	UnsubscribeURL string
}

// Rendered is one message, ready to send.
type Rendered struct {
	Subject, Text, HTML string
}

// Templates are the loaded templates of every message.
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// Load parses every message's templates, each from dir when it holds a
// file of that name (dir empty: the embedded ones only), and renders each
// against a sample trial: an error names the file and the line.
func Load(dir string) (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, name := range Names {
		src, file, err := source(dir, name+".txt")
		if err != nil {
			return nil, err
		}
		if t.text[name], err = texttemplate.New(file).Funcs(funcs).Option("missingkey=error").Parse(src); err != nil {
			return nil, fmt.Errorf("e-mail %w", err)
		}
		if t.text[name].Lookup("subject") == nil {
			return nil, fmt.Errorf("e-mail template %s: no {{define \"subject\"}}", file)
		}
		if src, file, err = source(dir, name+".html"); err != nil {
			return nil, err
		}
		if t.html[name], err = htmltemplate.New(file).Funcs(htmltemplate.FuncMap(funcs)).Option("missingkey=error").Parse(src); err != nil {
			return nil, fmt.Errorf("e-mail %w", err)
		}
		if _, err := t.Render(name, Sample()); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// source reads file from dir, or else the embedded default, and returns
// it with the path an error should name.
func source(dir, file string) (src, path string, err error) {
	if dir != "" {
		path = filepath.Join(dir, file)
		b, err := os.ReadFile(path)
		if err == nil {
			return string(b), path, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("email.templates_dir: %w", err)
		}
	}
	b, err := embedded.ReadFile("templates/" + file)
	if err != nil {
		return "", "", fmt.Errorf("the embedded template %s: %w", file, err)
	}
	return string(b), "templates/" + file + " (embedded)", nil
}

// Render writes message name for f.
func (t *Templates) Render(name string, f Fields) (Rendered, error) {
	text, ok := t.text[name]
	if !ok {
		return Rendered{}, fmt.Errorf("no e-mail template %q", name)
	}
	var subject, body, html bytes.Buffer
	if err := text.ExecuteTemplate(&subject, "subject", f); err != nil {
		return Rendered{}, fmt.Errorf("rendering e-mail %w", err)
	}
	if err := text.Execute(&body, f); err != nil {
		return Rendered{}, fmt.Errorf("rendering e-mail %w", err)
	}
	if err := t.html[name].Execute(&html, f); err != nil {
		return Rendered{}, fmt.Errorf("rendering e-mail %w", err)
	}
	return Rendered{
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    strings.TrimSpace(body.String()) + "\n", HTML: html.String(),
	}, nil
}

// Sample is the trial every template is rendered against when loaded, and
// what a preview without a trial shows.
func Sample() Fields {
	now := time.Date(2031, 3, 10, 9, 0, 0, 0, time.UTC)
	return Fields{
		Name: "Ada Lovelace", Organization: "Analytical Engines Ltd", Now: now,
		TrialEnds: now.Add(3 * 24 * time.Hour), DataDeletedOn: now.Add(33 * 24 * time.Hour), PurgeOn: now.Add(63 * 24 * time.Hour),
		UpgradeURL: "https://example.com/upgrade", ExportURL: "https://example.com/export", Support: "support@example.com",
		UnsubscribeURL: "https://example.com/unsubscribe?token=sample",
	}
}

// funcs are the templates' functions: date writes a date in UTC, in says
// how far it is from the message's time ("in 3 days").
var funcs = texttemplate.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("Monday 2 January 2006, 15:04 UTC") },
	"in":   in,
}

// in says how far at is after now, in whole days or hours: "in 3 days",
// "in 5 hours", "now".
func in(now, at time.Time) string {
	d := at.Sub(now)
	switch {
	case d >= 23*time.Hour:
		return plural(int((d+12*time.Hour)/(24*time.Hour)), "day")
	case d >= time.Hour:
		return plural(int((d+30*time.Minute)/time.Hour), "hour")
	case d > 0:
		return "in less than an hour"
	default:
		return "now"
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "in 1 " + unit
	}
	return fmt.Sprintf("in %d %ss", n, unit)
}
