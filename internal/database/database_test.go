package database_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/internal/testdb"
	"github.com/trialsd/trialsd/migrations"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// A fresh install: the database is created, replicas migrating at the same
// time all succeed, and nothing is left pending.
func TestOpenCreatesAndMigratesConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.NewEmpty(t)

	const replicas = 3
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := database.Open(ctx, database.PoolConfig{URL: url, MaxConns: 4, CreateIfMissing: true})
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = database.MigrateUp(ctx, pool, discard)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}

	pool, err := database.Open(ctx, database.PoolConfig{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pending, err := database.Pending(ctx, pool)
	if err != nil || pending {
		t.Fatalf("Pending() = %v, %v; want false, nil", pending, err)
	}
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM trialsd_migrations WHERE version_id > 0").Scan(&n); err != nil || n != len(files) {
		t.Fatalf("applied trialsd migrations = %d, %v; want each of the %d applied once", n, err, len(files))
	}
}

func TestStatusAndDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.New(t)

	states, err := database.MigrationStatus(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]int{}
	for _, s := range states {
		if !s.Applied {
			t.Errorf("%s migration %d not applied on a migrated database", s.Schema, s.Version)
		}
		schemas[s.Schema]++
	}
	if schemas["river"] == 0 || schemas["trialsd"] == 0 {
		t.Fatalf("status lists %v, want both schemas", schemas)
	}

	if err := database.MigrateDown(ctx, pool, discard); err != nil {
		t.Fatal(err)
	}
	if pending, err := database.Pending(ctx, pool); err != nil || !pending {
		t.Fatalf("after down, Pending() = %v, %v; want true", pending, err)
	}
	// Down rolls back the newest migration only: the eligibility tables
	// are gone; the e-mail opt-out column stays (the migration before).
	var history, optOut int
	if err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_tables WHERE tablename = 'eligibility_history'),
			(SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'reminders_unsubscribed_at')`).
		Scan(&history, &optOut); err != nil || history != 0 || optOut != 1 {
		t.Fatalf("after down: eligibility_history %d (want 0), users.reminders_unsubscribed_at %d (want 1) (%v)", history, optOut, err)
	}
	if err := database.MigrateUp(ctx, pool, discard); err != nil {
		t.Fatalf("up after down: %v", err)
	}
}

func TestIsUnavailable(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "08006"}), true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		// A server killed under a pooled connection: the query was written,
		// the answer is the end of the stream.
		{"connection ended mid-query", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), true},
		{"connection ended between messages", fmt.Errorf("reading: %w", io.EOF), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := database.IsUnavailable(tt.err); got != tt.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}

	ctx := context.Background()
	_, err := database.Open(ctx, database.PoolConfig{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", MaxConns: 1})
	if !database.IsUnavailable(err) {
		t.Fatalf("IsUnavailable(%v) = false for a refused connection", err)
	}
}
