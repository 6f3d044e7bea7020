// Package database opens the Postgres pool trialsd runs on, creating the
// database on first start, and tells whether Postgres is reachable.
package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolConfig is what a pool is opened with.
type PoolConfig struct {
	URL string
	// MaxConns bounds the pool's connections.
	MaxConns int32
	// CreateIfMissing creates a database that does not exist yet, so a
	// fresh install needs no manual step.
	CreateIfMissing bool
}

// Open connects a pool as c says.
func Open(ctx context.Context, c PoolConfig) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	cfg.MaxConns = c.MaxConns
	if c.CreateIfMissing {
		if err := ensureDatabase(ctx, cfg.ConnConfig); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to database %s on %s: %w", cfg.ConnConfig.Database, cfg.ConnConfig.Host, err)
	}
	return pool, nil
}

// ensureDatabase creates the target database through the maintenance
// database "postgres" when connecting to it says it does not exist.
func ensureDatabase(ctx context.Context, target *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, target)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connecting to database %s on %s: %w", target.Database, target.Host, err)
	}

	admin := target.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connecting to maintenance database to create %s: %w", target.Database, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{target.Database}.Sanitize())
	// Another replica won the race: duplicate_database, or, when both inserts
	// reach the catalog together, a unique violation on pg_database's name.
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.ConstraintName == "pg_database_datname_index") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating database %s: %w", target.Database, err)
	}
	return nil
}

// IsUnavailable reports whether err means Postgres could not be reached, as
// opposed to a query that failed: the first is worth a 503 and a retry.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) {
		return true
	}
	// A pooled connection whose server died under it (a crash, an immediate
	// shutdown, a cut network) ends in EOF, without an error from Postgres.
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57": // connection exception; operator intervention (shutdown, too many connections)
			return true
		}
		return pgErr.Code == "53300" // too_many_connections
	}
	return false
}
