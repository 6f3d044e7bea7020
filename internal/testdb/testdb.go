// Package testdb gives each test its own migrated Postgres database, cloned
// from a template in a few tens of milliseconds, so tests and packages run in
// parallel against the real server without seeing each other's rows.
//
// The template is built once per schema version (its name carries a hash of
// the embedded migrations and River's migration count) and reused by every
// later run; concurrent test binaries build it under an advisory lock.
// (pgtestdb does this, but the module proxy here does not serve it.)
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/migrations"
)

// EnvURL overrides the server the tests use; it must name a database that
// exists (the maintenance database "postgres" is fine).
const EnvURL = "TRIALSD_TEST_DATABASE_URL"

const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// templateLockID serialises template builds across test processes.
const templateLockID int64 = 0x74_72_69_61_6c_74_74

// New returns a pool on a fresh, fully migrated database that is dropped when
// the test ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, _ := NewWithURL(t)
	return pool
}

// NewWithURL is New that also returns the database's URL, for code under test
// that opens its own connections (the CLI, the daemon).
func NewWithURL(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()

	admin := adminConn(ctx, t)
	defer admin.Close(ctx)

	name := "trialsd_test_" + randomHex(8)
	if err := clone(ctx, admin, name); err != nil {
		t.Fatalf("cloning template database: %v", err)
	}
	t.Cleanup(func() { drop(t, name) })

	url := urlForConfig(admin.Config(), name)
	pool, err := database.Open(ctx, database.PoolConfig{URL: url, MaxConns: 10})
	if err != nil {
		t.Fatalf("opening test database: %v", err)
	}
	t.Cleanup(pool.Close) // cleanups run last-in first-out: closed before the drop
	return pool, url
}

// clone creates database name from the current schema's template, and
// marks the template used now.
func clone(ctx context.Context, admin *pgx.Conn, name string) error {
	tmpl, err := ensureTemplate(ctx, admin)
	if err != nil {
		return fmt.Errorf("preparing template database: %w", err)
	}
	if err := markUsed(ctx, admin, tmpl); err != nil {
		return err
	}
	_, err = admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{tmpl}.Sanitize()))
	return err
}

// templateIdle is how long a template of another schema must have gone
// unused before a build drops it: checkouts with other migrations (a
// branch, a worktree) test on the same Postgres, each with its template.
const templateIdle = time.Hour

// usedPrefix begins a template's comment, which records its last use.
const usedPrefix = "trialsd test template, last used "

// markUsed records on the template when it was last cloned.
func markUsed(ctx context.Context, admin *pgx.Conn, tmpl string) error {
	_, err := admin.Exec(ctx, fmt.Sprintf("COMMENT ON DATABASE %s IS '%s%d'",
		pgx.Identifier{tmpl}.Sanitize(), usedPrefix, time.Now().Unix()))
	if err != nil {
		return fmt.Errorf("marking template %s used: %w", tmpl, err)
	}
	return nil
}

// dropIdleTemplates drops the templates other than keep that have not
// been used for templateIdle (or never said when they were); one still
// being cloned from refuses to drop, and is left for a later build.
func dropIdleTemplates(ctx context.Context, admin *pgx.Conn, keep string) error {
	rows, err := admin.Query(ctx, `
		SELECT datname FROM pg_database d
		WHERE datname LIKE 'trialsd_tmpl_%' AND datname <> $1
		  AND coalesce(substring(shobj_description(d.oid, 'pg_database') FROM '^'||$2||'([0-9]+)$')::bigint, 0) < $3`,
		keep, usedPrefix, time.Now().Add(-templateIdle).Unix())
	if err != nil {
		return fmt.Errorf("listing idle templates: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing idle templates: %w", err)
	}
	for _, n := range names {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize())
	}
	return nil
}

// NewEmpty returns the URL of a database name that does not exist yet (and is
// dropped after the test), for testing creation and migration themselves.
func NewEmpty(t testing.TB) string {
	t.Helper()
	admin := adminConn(context.Background(), t)
	defer admin.Close(context.Background())
	name := "trialsd_test_" + randomHex(8)
	t.Cleanup(func() { drop(t, name) })
	return urlForConfig(admin.Config(), name)
}

func drop(t testing.TB, name string) {
	ctx := context.Background()
	admin := adminConn(ctx, t)
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("dropping test database %s: %v", name, err)
	}
}

func adminConn(ctx context.Context, t testing.TB) *pgx.Conn {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		url = defaultURL
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to test Postgres at %s (start it, or set %s): %v", url, EnvURL, err)
	}
	return conn
}

// ensureTemplate returns the name of a migrated template database for the
// current schema, building it if no earlier run has.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	hash, err := schemaHash()
	if err != nil {
		return "", err
	}
	name := "trialsd_tmpl_" + hash
	if ok, err := exists(ctx, admin, name); err != nil || ok {
		return name, err
	}

	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockID); err != nil {
		return "", fmt.Errorf("taking template lock: %w", err)
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLockID) //nolint:errcheck // released with the connection anyway
	if ok, err := exists(ctx, admin, name); err != nil || ok {
		return name, err
	}

	if err := dropIdleTemplates(ctx, admin, name); err != nil {
		return "", err
	}

	// Build under a scratch name and rename when complete, so a build that
	// dies half-way never leaves a template that looks usable.
	building := name + "_building"
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("dropping stale template build: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
		return "", fmt.Errorf("creating template: %w", err)
	}
	pool, err := database.Open(ctx, database.PoolConfig{URL: urlForConfig(admin.Config(), building), MaxConns: 4})
	if err != nil {
		return "", err
	}
	err = database.MigrateUp(ctx, pool, slog.New(slog.DiscardHandler))
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrating template: %w", err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s",
		pgx.Identifier{building}.Sanitize(), pgx.Identifier{name}.Sanitize())); err != nil {
		return "", fmt.Errorf("renaming template: %w", err)
	}
	return name, nil
}

func urlForConfig(base *pgx.ConnConfig, dbname string) string {
	if base.Password != "" {
		return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", base.User, base.Password, base.Host, base.Port, dbname)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", base.User, base.Host, base.Port, dbname)
}

func exists(ctx context.Context, admin *pgx.Conn, name string) (bool, error) {
	var ok bool
	err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("looking up database %s: %w", name, err)
	}
	return ok, nil
}

// schemaHash fingerprints everything that shapes the migrated schema.
func schemaHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%s\x00", path, b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing migrations: %w", err)
	}
	river, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", fmt.Errorf("creating River migrator: %w", err)
	}
	for _, m := range river.AllVersions() {
		fmt.Fprintf(h, "river\x00%d\x00%s\x00", m.Version, m.SQLUp)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
