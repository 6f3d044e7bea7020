package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/trialsd/trialsd/migrations"
)

// migrationLockID is the advisory lock every migrating process holds, so
// replicas starting together migrate one after the other. ("trialsd" in ASCII.)
const migrationLockID int64 = 0x74_72_69_61_6c_73_64

// migrationTable records which of our migrations have been applied.
const migrationTable = "trialsd_migrations"

// MigrationState is one migration of one of the two schemas trialsd owns.
type MigrationState struct {
	Schema  string // "river" or "trialsd"
	Version int64
	Name    string
	Applied bool
}

// MigrateUp applies every pending migration: River's tables first, then the
// application's, under an advisory lock.
func MigrateUp(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	return withMigrationLock(ctx, pool, func() error {
		river, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: logger})
		if err != nil {
			return fmt.Errorf("creating River migrator: %w", err)
		}
		res, err := river.Migrate(ctx, rivermigrate.DirectionUp, nil)
		if err != nil {
			return fmt.Errorf("migrating River tables: %w", err)
		}
		for _, v := range res.Versions {
			logger.InfoContext(ctx, "applied migration", "schema", "river", "version", v.Version, "name", v.Name)
		}
		return withProvider(pool, func(p *goose.Provider) error {
			results, err := p.Up(ctx)
			for _, r := range results {
				logger.InfoContext(ctx, "applied migration", "schema", "trialsd", "version", r.Source.Version, "file", r.Source.Path)
			}
			if err != nil {
				return fmt.Errorf("migrating trialsd tables: %w", err)
			}
			return nil
		})
	})
}

// MigrateDown rolls back the latest application migration. River's tables are
// left alone: removing them would discard every scheduled transition.
func MigrateDown(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	return withMigrationLock(ctx, pool, func() error {
		return withProvider(pool, func(p *goose.Provider) error {
			r, err := p.Down(ctx)
			if errors.Is(err, goose.ErrNoNextVersion) {
				logger.InfoContext(ctx, "no trialsd migration left to roll back")
				return nil
			}
			if err != nil {
				return fmt.Errorf("rolling back trialsd migration: %w", err)
			}
			logger.InfoContext(ctx, "rolled back migration", "schema", "trialsd", "version", r.Source.Version, "file", r.Source.Path)
			return nil
		})
	})
}

// MigrationStatus lists every known migration of both schemas and whether it
// has been applied.
func MigrationStatus(ctx context.Context, pool *pgxpool.Pool) ([]MigrationState, error) {
	river, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, fmt.Errorf("creating River migrator: %w", err)
	}
	existing, err := river.ExistingVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading River migrations: %w", err)
	}
	applied := make(map[int]bool, len(existing))
	for _, m := range existing {
		applied[m.Version] = true
	}
	var out []MigrationState
	for _, m := range river.AllVersions() {
		out = append(out, MigrationState{Schema: "river", Version: int64(m.Version), Name: m.Name, Applied: applied[m.Version]})
	}
	err = withProvider(pool, func(p *goose.Provider) error {
		statuses, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("reading trialsd migrations: %w", err)
		}
		for _, s := range statuses {
			out = append(out, MigrationState{Schema: "trialsd", Version: s.Source.Version, Name: s.Source.Path, Applied: s.State == goose.StateApplied})
		}
		return nil
	})
	return out, err
}

// Pending reports whether any migration of either schema is not applied yet:
// a daemon in that state is not ready to serve.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	states, err := MigrationStatus(ctx, pool)
	if err != nil {
		return false, err
	}
	for _, s := range states {
		if !s.Applied {
			return true, nil
		}
	}
	return false, nil
}

func withMigrationLock(ctx context.Context, pool *pgxpool.Pool, fn func() error) (err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring connection for migration lock: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockID); err != nil {
		return fmt.Errorf("taking migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even if ctx was cancelled.
		var held bool
		unlockErr := conn.QueryRow(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockID).Scan(&held)
		switch {
		case unlockErr != nil:
			err = errors.Join(err, fmt.Errorf("releasing migration lock: %w", unlockErr))
		case !held:
			// The lock was taken on another server session: a pooler in
			// transaction mode sits in between, and the lock is now stuck
			// on a session it keeps open.
			err = errors.Join(err, errors.New("the migration lock was not held by this session at the end: "+
				"migrations went through a pooler in transaction mode; point database.migrate_url at Postgres directly"))
		}
	}()
	return fn()
}

func withProvider(pool *pgxpool.Pool, fn func(*goose.Provider) error) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := newProvider(db)
	if err != nil {
		return err
	}
	return fn(p)
}

func newProvider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithDisableGlobalRegistry(true),
		goose.WithTableName(migrationTable),
	)
	if err != nil {
		return nil, fmt.Errorf("loading embedded migrations: %w", err)
	}
	return p, nil
}
