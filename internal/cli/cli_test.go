package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/testdb"
	"github.com/trialsd/trialsd/internal/wire"
)

var keyPattern = regexp.MustCompile(`^ei_[0-9a-f]{64}$`)

// unreachableURL names a server nobody listens on: a command that should
// fail before touching the database would report a connection error instead
// of the message a test expects if it tried.
const unreachableURL = "postgres://postgres@127.0.0.1:1/trialsd?sslmode=disable&connect_timeout=5"

type result struct {
	code   int
	stdout string
	stderr string
}

// run executes the command line with an environment of exactly vars.
func run(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(t.Context(), Env{
		Args:    args,
		Getenv:  func(k string) string { return vars[k] },
		Stdin:   strings.NewReader(stdin),
		Stdout:  &stdout,
		Stderr:  &stderr,
		Version: "1.2.3",
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func dbEnv(url string) map[string]string {
	return map[string]string{"TRIALSD_DATABASE_URL": url}
}

func mustRun(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	r := run(t, vars, stdin, args...)
	if r.code != 0 {
		t.Fatalf("trialsd %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// mustFail runs a command line that must fail: any exit code but 0 (the
// codes themselves are TestExitCodes'), with a message on stderr.
func mustFail(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	r := run(t, vars, stdin, args...)
	if r.code == exitOK {
		t.Fatalf("trialsd %s: exit 0, want a failure\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "trialsd: ") {
		t.Errorf("trialsd %s: stderr %q, want a message starting with \"trialsd: \"", strings.Join(args, " "), r.stderr)
	}
	return r
}

// table splits tabwriter output into the columns of each line after the
// header. Only the one column of index free may contain spaces (a name).
func table(t *testing.T, out string, free int, header ...string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(header, " ") {
		t.Fatalf("header = %q, want %q", lines[0], header)
	}
	trail := len(header) - free - 1
	var parsed [][]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < len(header)-1 {
			t.Fatalf("line %q has %d fields, want %d", l, len(f), len(header))
		}
		row := append([]string{}, f[:free]...)
		row = append(row, strings.Join(f[free:len(f)-trail], " "))
		parsed = append(parsed, append(row, f[len(f)-trail:]...))
	}
	return parsed
}

// migrations parses the output of migrate status.
func migrations(t *testing.T, out string) [][]string {
	t.Helper()
	return table(t, out, 2, "SCHEMA", "VERSION", "NAME", "STATE")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ commit, want string }{
		{"abc1234", "trialsd 1.2.3 (commit abc1234)\n"},
		{"", "trialsd 1.2.3\n"}, // a build that knows no commit says nothing of one
	} {
		var stdout, stderr bytes.Buffer
		code := Run(t.Context(), Env{Args: []string{"version"}, Getenv: func(string) string { return "" },
			Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Version: "1.2.3", Commit: c.commit})
		if code != exitOK || stdout.String() != c.want || stderr.Len() != 0 {
			t.Errorf("version with commit %q: exit %d, stdout %q, stderr %q; want 0, %q and nothing", c.commit, code, stdout.String(), stderr.String(), c.want)
		}
	}
}

func TestMigrateUpCreatesAndMigrates(t *testing.T) {
	t.Parallel()
	url := testdb.NewEmpty(t)
	env := dbEnv(url)

	// status never creates the database.
	r := mustFail(t, env, "", "migrate", "status")
	if name := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]; !strings.Contains(r.stderr, name) {
		t.Errorf("migrate status on a missing database: stderr %q, want it to name database %s", r.stderr, name)
	}

	mustRun(t, env, "", "migrate", "up")
	mustRun(t, env, "", "migrate", "up") // idempotent

	r = mustRun(t, env, "", "migrate", "status")
	schemas := map[string]int{}
	for _, f := range migrations(t, r.stdout) {
		schemas[f[0]]++
		if f[3] != "applied" {
			t.Errorf("migration %v is %s, want applied", f, f[3])
		}
	}
	if schemas["river"] == 0 || schemas["trialsd"] == 0 || len(schemas) != 2 {
		t.Fatalf("migrate status lists schemas %v, want river and trialsd\n%s", schemas, r.stdout)
	}
}

// Operator commands refuse a database that is not fully migrated, and say
// what to do about it.
func TestOperatorCommandsNeedMigratedDatabase(t *testing.T) {
	t.Parallel()

	commands := [][]string{
		{"users", "create-admin", "--username", "root", "--email", "root@example.com"},
		{"apikeys", "create", "--username", "root"},
		{"apikeys", "list", "--username", "root"},
		{"apikeys", "revoke", "--username", "root", "1"},
	}
	states := []struct {
		name    string
		prepare func(t *testing.T, url string)
	}{
		{"trialsd migration rolled back", func(t *testing.T, url string) {
			mustRun(t, dbEnv(url), "", "migrate", "up")
			mustRun(t, dbEnv(url), "", "migrate", "down")
			r := mustRun(t, dbEnv(url), "", "migrate", "status")
			var last []string
			for _, f := range migrations(t, r.stdout) {
				if f[0] == "river" && f[3] != "applied" {
					t.Errorf("after migrate down, River migration %v is %s, want applied", f, f[3])
				}
				if f[0] == "trialsd" {
					last = f
				}
			}
			if last == nil || last[3] != "pending" {
				t.Errorf("after migrate down, the newest trialsd migration is %v, want pending", last)
			}
		}},
		{"not created yet", func(t *testing.T, url string) {}},
		{"created but never migrated", func(t *testing.T, url string) {
			pool, err := database.Open(t.Context(), database.PoolConfig{URL: url, MaxConns: 1, CreateIfMissing: true})
			if err != nil {
				t.Fatal(err)
			}
			pool.Close()
		}},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			url := testdb.NewEmpty(t)
			st.prepare(t, url)
			for _, args := range commands {
				r := mustFail(t, dbEnv(url), "", args...)
				if !strings.Contains(r.stderr, "migrate up") {
					t.Errorf("trialsd %s: stderr %q, want it to mention `migrate up`", strings.Join(args, " "), r.stderr)
				}
			}
		})
	}
}

func TestUsersCreateAdmin(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	ctx := t.Context()

	r := mustRun(t, env, "s3cret-password\n",
		"users", "create-admin", "--username", "root", "--email", "root@example.com", "--password-stdin")
	key := lastLine(r.stdout)
	if !keyPattern.MatchString(key) {
		t.Fatalf("last line of stdout = %q, want an API key (ei_ and 64 hex characters)\n%s", key, r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, "s3cret-password") {
		t.Errorf("the password was echoed:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}

	var hash *string
	var isAdmin bool
	if err := pool.QueryRow(ctx, `SELECT password_hash, is_admin FROM users WHERE username = 'root'`).Scan(&hash, &isAdmin); err != nil {
		t.Fatal(err)
	}
	if !isAdmin || hash == nil {
		t.Fatalf("stored user: is_admin = %v, password_hash = %v; want an admin with a password", isAdmin, hash)
	}
	if ok, err := argon2id.ComparePasswordAndHash("s3cret-password", *hash); err != nil || !ok {
		t.Errorf("stored hash does not verify the password read from stdin: %v, %v", ok, err)
	}
	if ok, _ := argon2id.ComparePasswordAndHash("s3cret-password\n", *hash); ok {
		t.Error("stored hash verifies the password with its newline: stdin was not trimmed")
	}

	u, err := accounts.New(pool, clock.Real{}, accounts.NewTestPasswords()).AuthenticateAPIKey(ctx, key)
	if err != nil || u.Username != "root" || !u.IsAdmin {
		t.Fatalf("AuthenticateAPIKey(printed key) = %+v, %v; want admin root", u, err)
	}

	// Again, without a password: the user is kept, with their password, and
	// a second key is issued beside the first.
	r = mustRun(t, env, "", "users", "create-admin", "--username", "root")
	second := lastLine(r.stdout)
	if !keyPattern.MatchString(second) || second == key {
		t.Fatalf("second create-admin printed %q, want a new key", second)
	}
	if !strings.Contains(r.stderr, "root now has 2 API keys and the earlier ones still work") {
		t.Errorf("second create-admin did not say the first key still works: stderr %q", r.stderr)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d users, %v; want root only", n, err)
	}
	if err := pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE username = 'root'`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if hash == nil {
		t.Error("create-admin without --password-stdin removed the existing password")
	} else if ok, _ := argon2id.ComparePasswordAndHash("s3cret-password", *hash); !ok {
		t.Error("create-admin without --password-stdin replaced the existing password")
	}
	for _, k := range []string{key, second} {
		if _, err := accounts.New(pool, clock.Real{}, accounts.NewTestPasswords()).AuthenticateAPIKey(ctx, k); err != nil {
			t.Errorf("AuthenticateAPIKey(%s…): %v", k[:11], err)
		}
	}
}

func TestUsersCreateAdminFailures(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)

	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantStderr string
	}{
		{"empty stdin", "", []string{"--username", "root", "--email", "root@example.com", "--password-stdin"}, "standard input was empty"},
		{"only a newline on stdin", "\r\n", []string{"--username", "root", "--email", "root@example.com", "--password-stdin"}, "standard input was empty"},
		{"short password", "short\n", []string{"--username", "root", "--email", "root@example.com", "--password-stdin"}, "at least 8 characters"},
		{"no username", "", []string{"--email", "root@example.com"}, "username"},
		{"new user without email", "", []string{"--username", "root"}, "email is required"},
		{"positional argument", "", []string{"--username", "root", "--email", "root@example.com", "extra"}, "extra"},
		{"password longer than accepted", strings.Repeat("p", 5000) + "\n", []string{"--username", "root", "--email", "root@example.com", "--password-stdin"}, "longer than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustFail(t, dbEnv(url), tt.stdin, append([]string{"users", "create-admin"}, tt.args...)...)
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.wantStderr)
			}
			if keyPattern.MatchString(lastLine(r.stdout)) {
				t.Errorf("a key was printed by a failed command: %q", r.stdout)
			}
		})
	}
	t.Cleanup(func() {
		// Runs after the parallel subtests: none of them created anyone.
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d users, %v after failed create-admin commands; want 0", n, err)
		}
	})
}

func TestAPIKeysCommands(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	ctx := t.Context()
	acc := accounts.New(pool, clock.Real{}, accounts.NewTestPasswords())

	adminKey := lastLine(mustRun(t, env, "", "users", "create-admin", "--username", "root", "--email", "root@example.com").stdout)

	r := mustRun(t, env, "", "apikeys", "create", "--username", "root", "--name", "ci")
	ciKey := strings.TrimSuffix(r.stdout, "\n")
	if !keyPattern.MatchString(ciKey) {
		t.Fatalf("apikeys create printed %q, want one key on its own line", r.stdout)
	}
	if _, err := acc.AuthenticateAPIKey(ctx, ciKey); err != nil {
		t.Fatalf("AuthenticateAPIKey(created key): %v", err)
	}

	// list: newest first, prefixes only.
	listed := func() [][]string {
		t.Helper()
		r := mustRun(t, env, "", "apikeys", "list", "--username", "root")
		if strings.Contains(r.stdout, ciKey) || strings.Contains(r.stdout, adminKey) {
			t.Fatalf("apikeys list shows a whole key:\n%s", r.stdout)
		}
		return table(t, r.stdout, 2, "ID", "PREFIX", "NAME", "CREATED", "REVOKED")
	}
	keys := listed()
	if len(keys) != 2 {
		t.Fatalf("apikeys list shows %d keys, want 2: %v", len(keys), keys)
	}
	ci, admin := keys[0], keys[1]
	if ci[1] != ciKey[:11]+"…" || ci[2] != "ci" || ci[4] != "-" {
		t.Errorf("first listed key = %v, want the ci key %s… unrevoked", ci, ciKey[:11])
	}
	if admin[1] != adminKey[:11]+"…" || admin[2] != "created by users create-admin" || admin[4] != "-" {
		t.Errorf("second listed key = %v, want the admin's key %s… unrevoked", admin, adminKey[:11])
	}

	// revoke by id.
	r = mustRun(t, env, "", "apikeys", "revoke", "--username", "root", ci[0])
	if r.stdout != "revoked "+ci[0]+"\n" {
		t.Errorf("apikeys revoke printed %q", r.stdout)
	}
	keys = listed()
	if keys[0][0] != ci[0] || keys[0][4] == "-" || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(keys[0][4]) {
		t.Errorf("after revoking, ci key is listed as %v, want a revocation time", keys[0])
	}
	if keys[1][4] != "-" {
		t.Errorf("after revoking the ci key, the admin's key is listed as %v, want it unrevoked", keys[1])
	}
	_, err := acc.AuthenticateAPIKey(ctx, ciKey)
	if apperr.CodeOf(err) != apperr.Unauthorized {
		t.Errorf("AuthenticateAPIKey(revoked key) = %v, want Unauthorized", err)
	}

	r = mustFail(t, env, "", "apikeys", "revoke", "--username", "root", ci[0])
	if !strings.Contains(r.stderr, "no active API key") {
		t.Errorf("revoking twice: stderr %q, want it to say there is no such active key", r.stderr)
	}

	// revoke by prefix, pasted as listed with its ellipsis.
	mustRun(t, env, "", "apikeys", "revoke", "--username", "root", admin[1])
	if keys = listed(); keys[1][4] == "-" {
		t.Errorf("after revoking by prefix, the admin's key is listed as %v", keys[1])
	}
	if _, err := acc.AuthenticateAPIKey(ctx, adminKey); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Errorf("AuthenticateAPIKey(key revoked by prefix) = %v, want Unauthorized", err)
	}
}

func TestAPIKeysCommandFailures(t *testing.T) {
	t.Parallel()
	_, url := testdb.NewWithURL(t)

	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"create for unknown user", []string{"apikeys", "create", "--username", "nobody"}, "no user named nobody"},
		{"list for unknown user", []string{"apikeys", "list", "--username", "nobody"}, "no user named nobody"},
		{"revoke for unknown user", []string{"apikeys", "revoke", "--username", "nobody", "1"}, "no user named nobody"},
		{"list without username", []string{"apikeys", "list"}, "username"},
		{"revoke without key", []string{"apikeys", "revoke", "--username", "nobody"}, "arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustFail(t, dbEnv(url), "", tt.args...)
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.wantStderr)
			}
		})
	}
}

// A value that does not parse stops every command before it does anything,
// naming the key at fault.
func TestBadConfigValue(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"TRIALSD_DATABASE_URL":           unreachableURL,
		"TRIALSD_LIFECYCLE_GRACE_PERIOD": "30 days",
		"TRIALSD_AUTH_JWT_SECRET":        strings.Repeat("s", 32),
		"TRIALSD_TURNSTILE_ENABLED":      "false",
	}
	for _, args := range [][]string{
		{"migrate", "status"},
		{"migrate", "up"},
		{"migrate", "down"},
		{"users", "create-admin", "--username", "root", "--email", "root@example.com"},
		{"apikeys", "list", "--username", "root"},
		{"serve"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := mustFail(t, env, "", args...)
			if !strings.Contains(r.stderr, "lifecycle.grace_period") || !strings.Contains(r.stderr, "TRIALSD_LIFECYCLE_GRACE_PERIOD") {
				t.Errorf("stderr %q, want it to name lifecycle.grace_period and its variable", r.stderr)
			}
			if strings.Contains(r.stderr, "connecting") {
				t.Errorf("stderr %q: the database was contacted before the config was checked", r.stderr)
			}
		})
	}
}

// serve checks its secrets before it opens the database.
func TestServeRequiresSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		vars    map[string]string
		args    []string
		wantKey string
	}{
		{"no jwt secret", map[string]string{"TRIALSD_TURNSTILE_ENABLED": "false"}, nil, "auth.jwt_secret"},
		{"jwt secret of 31 characters", map[string]string{
			"TRIALSD_TURNSTILE_ENABLED": "false", "TRIALSD_AUTH_JWT_SECRET": strings.Repeat("s", 31),
		}, nil, "auth.jwt_secret"},
		{"no jwt secret with --migrate", map[string]string{"TRIALSD_TURNSTILE_ENABLED": "false"}, []string{"--migrate"}, "auth.jwt_secret"},
		{"turnstile enabled without secret", map[string]string{"TRIALSD_AUTH_JWT_SECRET": strings.Repeat("s", 32)}, nil, "turnstile.secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.vars["TRIALSD_DATABASE_URL"] = unreachableURL
			r := mustFail(t, tt.vars, "", append([]string{"serve"}, tt.args...)...)
			if !strings.Contains(r.stderr, tt.wantKey) {
				t.Errorf("stderr %q, want it to name %s", r.stderr, tt.wantKey)
			}
			if strings.Contains(r.stderr, "connecting") || strings.Contains(r.stderr, "TURNSTILE VERIFICATION IS DISABLED") {
				t.Errorf("stderr %q: serve went on past its secrets check", r.stderr)
			}
		})
	}

	r := mustFail(t, nil, "", "serve", "--api-only", "--workers-only")
	if !strings.Contains(r.stderr, "exclude each other") {
		t.Errorf("serve --api-only --workers-only: stderr %q", r.stderr)
	}
}

func TestWebhooksListAndRetry(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	ctx := t.Context()
	var id int64
	err := pool.QueryRow(ctx, `
		INSERT INTO outbox (event_id, channel, destination, payload, created_at, attempts, last_error, failed_at)
		VALUES ('evt_1', 'webhook', 'https://hooks.example/x', '{}', now(), 12, 'https://hooks.example/x answered 500', now())
		RETURNING id`).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}

	r := mustRun(t, env, "", "webhooks", "list")
	if !strings.Contains(r.stdout, "evt_1") || !strings.Contains(r.stdout, "answered 500") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	mustFail(t, env, "", "webhooks", "retry")
	mustFail(t, env, "", "webhooks", "retry", "--all", "1")
	mustFail(t, env, "", "webhooks", "retry", "abc")

	r = mustRun(t, env, "", "webhooks", "retry", strconv.FormatInt(id, 10))
	if !strings.Contains(r.stdout, "requeued 1 of 1") {
		t.Fatalf("retry: %s", r.stdout)
	}
	var jobs int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'outbox.deliver' AND args->>'outbox_id' = $1`, strconv.FormatInt(id, 10)).Scan(&jobs); err != nil || jobs != 1 {
		t.Fatalf("%d delivery jobs after retry (%v), want 1", jobs, err)
	}
	if r := mustRun(t, env, "", "webhooks", "list"); strings.Contains(r.stdout, "evt_1") {
		t.Fatalf("still listed as failed after retry:\n%s", r.stdout)
	}
	// Retrying what is no longer failed says so.
	r = mustFail(t, env, "", "webhooks", "retry", strconv.FormatInt(id, 10))
	if !strings.Contains(r.stderr, "not failed") {
		t.Fatalf("stderr %q", r.stderr)
	}
	mustRun(t, env, "", "webhooks", "retry", "--all")
}

func TestWebhookEndpointsCommands(t *testing.T) {
	t.Parallel()
	_, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	if r := mustFail(t, env, "", "webhooks", "endpoints", "add", "http://hooks.example/x"); r.code != exitInvalid || !strings.Contains(r.stderr, "https") {
		t.Fatalf("plain http refused with %d %q", r.code, r.stderr)
	}
	env["TRIALSD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS"] = "true"
	r := mustRun(t, env, "", "webhooks", "endpoints", "add", "http://127.0.0.1:9/hook", "--description", "CRM", "--event-type", "trial.created", "--event-type", "trial.expired")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || lines[0] != "endpoint 1" || !strings.HasPrefix(lines[1], "whsec_") {
		t.Fatalf("add:\n%s", r.stdout)
	}
	r = mustRun(t, env, "", "webhooks", "endpoints", "list")
	if !strings.Contains(r.stdout, "http://127.0.0.1:9/hook") || !strings.Contains(r.stdout, "trial.created,trial.expired") || !strings.Contains(r.stdout, "CRM") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	r = mustRun(t, env, "", "webhooks", "endpoints", "rotate", "1")
	if s := strings.TrimSpace(r.stdout); !strings.HasPrefix(s, "whsec_") || s == lines[1] {
		t.Fatalf("rotate: %q", r.stdout)
	}
	if r := mustFail(t, env, "", "webhooks", "endpoints", "rm", "2"); r.code != exitNotFound {
		t.Fatalf("rm of an unknown endpoint: exit %d", r.code)
	}
	mustRun(t, env, "", "webhooks", "endpoints", "rm", "1")
	if r := mustRun(t, env, "", "webhooks", "endpoints", "list"); strings.Contains(r.stdout, "127.0.0.1") {
		t.Fatalf("listed after rm:\n%s", r.stdout)
	}
}

// rootTrial starts, with the daemon's services on pool, a trial of the
// admin root, expiring at expires (nil: the default length).
// rootSecret is auth.jwt_secret of rootTrial's services, which keys the
// eligibility history's hashes: a command that looks an address up needs
// the same.
const rootSecret = "root-secret-root-secret-root-secret"

func rootTrial(t *testing.T, pool *pgxpool.Pool, expires *time.Time) (*services.Services, lifecycle.StartedTrial) {
	t.Helper()
	cfg := config.Default()
	cfg.Auth.JWTSecret = rootSecret
	d, err := services.NewInsertOnly(services.Deps{Config: cfg, Logger: slog.New(slog.DiscardHandler), Pool: pool, Clock: clock.Real{}})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := d.Accounts.CreateAdmin(t.Context(), "root", "root@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	started, err := d.Lifecycle.StartTrial(t.Context(), domain.Actor{UserID: admin.ID, Admin: true},
		lifecycle.StartTrialRequest{ExpirationDate: expires}, "request:test")
	if err != nil {
		t.Fatal(err)
	}
	return d, started
}

func TestTrialsCommands(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	ctx := t.Context()
	expires := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Hour)
	d, started := rootTrial(t, pool, &expires)
	id := strconv.FormatInt(started.TrialID, 10)

	r := mustRun(t, env, "", "trials", "list")
	if !strings.Contains(r.stdout, "active") || !strings.Contains(r.stdout, wire.Format(expires)) {
		t.Fatalf("list:\n%s", r.stdout)
	}
	r = mustRun(t, env, "", "trials", "list", "--state", "expired", "--json")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("list --state expired --json: %s", r.stdout)
	}
	r = mustRun(t, env, "", "trials", "list", "--user", "root", "--json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 1 || rows[0]["state"] != "active" {
		t.Fatalf("list --user --json: %v %s", err, r.stdout)
	}

	r = mustRun(t, env, "", "trials", "show", id)
	for _, want := range []string{"trial.created", "trial.expire", "trial.remind", "request:test"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}

	for _, within := range []string{"300h", "12d12h"} {
		r = mustRun(t, env, "", "trials", "upcoming", "--within", within, "--json")
		var upcoming []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &upcoming); err != nil || len(upcoming) != 2 {
			t.Fatalf("upcoming --within %s: %v %s", within, err, r.stdout)
		}
	}

	later := expires.Add(48 * time.Hour)
	r = mustRun(t, env, "", "trials", "extend", id, "--until", later.Format(time.RFC3339))
	if want := fmt.Sprintf("trial %s is active and expires %s\n", id, wire.Format(later)); r.stdout != want {
		t.Errorf("extend printed %q, want %q", r.stdout, want)
	}
	tr, err := d.Lifecycle.Trial(ctx, started.TrialID)
	if err != nil || !tr.ExpirationDate.Equal(later) {
		t.Fatalf("after extend: %v, %v", tr.ExpirationDate, err)
	}
	events, _ := d.Lifecycle.Events(ctx, started.TrialID)
	if last := events[len(events)-1]; last.Kind != "trial.extended" || last.Actor != "system" || last.Cause != "cli:trials-extend" {
		t.Fatalf("extend recorded %+v", last)
	}

	// A past date is refused, saying why and how, unless --expire asks for
	// the expiry it means.
	r = mustFail(t, env, "", "trials", "extend", id, "--until", "2020-01-01T00:00:00Z")
	if !strings.Contains(r.stderr, "would expire the trial at once (pass --expire to do that)") {
		t.Errorf("extend to a past date: %q", r.stderr)
	}
	if tr, _ := d.Lifecycle.Trial(ctx, started.TrialID); tr.State != "active" || !tr.ExpirationDate.Equal(later) {
		t.Fatalf("a refused extend changed the trial: %s %v", tr.State, tr.ExpirationDate)
	}
	r = mustRun(t, env, "", "trials", "extend", id, "--until", "2020-01-01T00:00:00Z", "--expire")
	if r.stdout != fmt.Sprintf("trial %s is expired and expires 2020-01-01T00:00:00.000Z\n", id) {
		t.Errorf("extend --expire printed %q", r.stdout)
	}
	mustRun(t, env, "", "trials", "extend", id, "--until", later.Format(time.RFC3339))

	r = mustRun(t, env, "", "trials", "reconcile")
	if !strings.Contains(r.stdout, "checked") {
		t.Fatalf("reconcile: %s", r.stdout)
	}
	mustRun(t, env, "", "trials", "upgrade", id)
	if tr, _ := d.Lifecycle.Trial(ctx, started.TrialID); tr.State != "upgraded" {
		t.Fatalf("after upgrade: %s", tr.State)
	}

	for _, args := range [][]string{
		{"trials", "show", "999"},
		{"trials", "show", "abc"},
		{"trials", "extend", id},
		{"trials", "extend", id, "--until", "next week"},
		{"trials", "list", "--state", "sleeping"},
		{"trials", "upcoming", "--within", "-1h"},
	} {
		mustFail(t, env, "", args...)
	}
}

// A user's JWTs stop working when an operator revokes them, and when a new
// password is set with create-admin --password-stdin; a login afterwards
// gets a token that works. API keys are untouched.
func TestRevokeTokens(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	ctx := t.Context()
	key := lastLine(mustRun(t, env, "first-password\n", "users", "create-admin", "--username", "root", "--email", "root@example.com", "--password-stdin").stdout)
	cfg := config.Default()
	cfg.Auth.JWTSecret = strings.Repeat("j", 32)
	tokens := accounts.NewTokens(pool, clock.Real{}, cfg.Auth, accounts.NewTestPasswords())
	login := func(password string) string {
		t.Helper()
		_, token, err := tokens.Login(ctx, "root", password)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		return token
	}
	valid := func(token string) bool {
		_, err := tokens.Authenticate(ctx, token)
		return err == nil
	}

	old := login("first-password")
	r := mustRun(t, env, "", "users", "revoke-tokens", "--username", "root")
	if !strings.Contains(r.stdout, "revoked") {
		t.Errorf("revoke-tokens printed %q", r.stdout)
	}
	if valid(old) {
		t.Error("a token issued before revoke-tokens still works")
	}
	fresh := login("first-password")
	if !valid(fresh) {
		t.Fatal("a token issued after revoke-tokens does not work")
	}
	mustRun(t, env, "second-password\n", "users", "create-admin", "--username", "root", "--password-stdin")
	if valid(fresh) {
		t.Error("a token issued before the password changed still works")
	}
	if !valid(login("second-password")) {
		t.Error("a token issued after the password changed does not work")
	}
	mustRun(t, env, "", "users", "create-admin", "--username", "root")
	if _, err := accounts.New(pool, clock.Real{}, accounts.NewTestPasswords()).AuthenticateAPIKey(ctx, key); err != nil {
		t.Errorf("the API key stopped working: %v", err)
	}
	if r := mustFail(t, env, "", "users", "revoke-tokens", "--username", "nobody"); !strings.Contains(r.stderr, "no user named nobody") {
		t.Errorf("revoke-tokens for an unknown user: %q", r.stderr)
	}
}

// Each kind of failure has its exit code, so that a script can tell them
// apart: the command line, a refused value, a missing object, a state that
// forbids it, the database away, and anything else.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	pool, url := testdb.NewWithURL(t)
	env := dbEnv(url)
	_, started := rootTrial(t, pool, nil)
	id := started.TrialID
	mustRun(t, env, "", "trials", "upgrade", strconv.FormatInt(id, 10))
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"an unknown command", env, []string{"frobnicate"}, exitUsage},
		{"an unknown flag", env, []string{"users", "create-admin", "--bogus"}, exitUsage},
		{"a missing required flag", env, []string{"apikeys", "list"}, exitUsage},
		{"flags that exclude each other", nil, []string{"serve", "--api-only", "--workers-only"}, exitUsage},
		{"a refused value", env, []string{"users", "create-admin", "--username", "x!", "--email", "x@example.com"}, exitInvalid},
		{"a missing user", env, []string{"apikeys", "list", "--username", "nobody"}, exitNotFound},
		{"a missing trial", env, []string{"trials", "show", "999999"}, exitNotFound},
		{"a state that forbids it", env, []string{"trials", "extend", strconv.FormatInt(id, 10), "--until", "2031-01-01T00:00:00Z"}, exitConflict},
		{"the database away", dbEnv(unreachableURL), []string{"apikeys", "list", "--username", "root"}, exitUnavailable},
	}
	for _, tc := range tests {
		if r := run(t, tc.env, "", tc.args...); r.code != tc.want {
			t.Errorf("%s (trialsd %s): exit %d, want %d; stderr %q", tc.name, strings.Join(tc.args, " "), r.code, tc.want, r.stderr)
		}
	}
}
