package cli

import (
	"strings"
	"testing"

	"github.com/trialsd/trialsd/internal/testdb"
)

// eligibility show says what the rules say of an address, with its
// company's history; grant lets the next start through, and is shown; an
// address cannot be looked up without the daemon's key.
func TestEligibilityCommands(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	env["TRIALSD_AUTH_JWT_SECRET"] = rootSecret
	rootTrial(t, pool, nil)

	r := mustRun(t, env, "", "eligibility", "show", "Root+again@example.com")
	if !strings.HasPrefix(r.stdout, "refused (address_used): This e-mail address has already had an enterprise trial") ||
		!strings.Contains(r.stdout, "domain example.com: 1 active (limit 1), 1 in the last 365 days (limit 3), limits from default") {
		t.Errorf("show:\n%s", r.stdout)
	}
	if rows := table(t, r.stdout[strings.Index(r.stdout, "TRIAL"):strings.Index(r.stdout, "\nGRANT")], 0,
		"TRIAL", "STARTED", "STATE", "PURGED", "THIS ADDRESS", "GRANT"); len(rows) != 1 || rows[0][2] != "active" || rows[0][4] != "true" {
		t.Errorf("show's history: %v", rows)
	}
	mustFail(t, env, "", "eligibility", "grant", "root@example.com")
	r = mustRun(t, env, "", "eligibility", "grant", "root@example.com", "--note", "second pilot")
	if r.stdout != "grant 1: one trial for r***@example.com\n" {
		t.Errorf("grant: %q", r.stdout)
	}
	if r := mustRun(t, env, "", "eligibility", "show", "example.com"); !strings.Contains(r.stdout, "r***@example.com  system") ||
		!strings.Contains(r.stdout, "second pilot") {
		t.Errorf("show after the grant:\n%s", r.stdout)
	}
	delete(env, "TRIALSD_AUTH_JWT_SECRET")
	if r := mustFail(t, env, "", "eligibility", "show", "root@example.com"); !strings.Contains(r.stderr, "eligibility.history_key or auth.jwt_secret") {
		t.Errorf("show without the key: %s", r.stderr)
	}
}
