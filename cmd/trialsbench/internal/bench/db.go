package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/database"
)

// scratchDB is a database created for one scenario and dropped after it, so
// no scenario sees another's rows or dead tuples.
type scratchDB struct {
	Name string
	URL  string
	Pool *pgxpool.Pool
	// admin is the maintenance URL it was created through.
	admin string
}

// newTemplateDB creates trialsbench_template_<random> and migrates it the
// way `trialsd migrate up` does. Every scenario's database is cloned from
// it, which takes a fraction of migrating each one.
func newTemplateDB(ctx context.Context, adminURL string) (*scratchDB, error) {
	db, err := createDB(ctx, adminURL, "trialsbench_template_"+randomHex(4), "")
	if err != nil {
		return nil, err
	}
	db.Pool, err = database.Open(ctx, database.PoolConfig{URL: db.URL, MaxConns: 2})
	if err != nil {
		return nil, errors.Join(err, db.Drop(ctx))
	}
	if err := database.MigrateUp(ctx, db.Pool, slog.New(slog.DiscardHandler)); err != nil {
		return nil, errors.Join(fmt.Errorf("migrating %s: %w", db.Name, err), db.Drop(ctx))
	}
	// A template must have no connections while it is cloned.
	db.Pool.Close()
	db.Pool = nil
	return db, nil
}

// newScratchDB clones trialsbench_<scenario>_<random> from the template and
// opens a pool of maxConns connections on it for the harness's own loading
// and reading.
func newScratchDB(ctx context.Context, tmpl *scratchDB, scenario string, maxConns int32) (*scratchDB, error) {
	db, err := createDB(ctx, tmpl.admin, fmt.Sprintf("trialsbench_%s_%s", scenario, randomHex(4)), tmpl.Name)
	if err != nil {
		return nil, err
	}
	db.Pool, err = database.Open(ctx, database.PoolConfig{URL: db.URL, MaxConns: maxConns})
	if err != nil {
		return nil, errors.Join(err, db.Drop(ctx))
	}
	return db, nil
}

// scenarioDB is a scenario's scratch database with the configuration a
// daemon on it gets; the caller drops it.
func (h *harness) scenarioDB(ctx context.Context, scenario string, maxConns int32) (*scratchDB, *config.Config, error) {
	db, err := newScratchDB(ctx, h.tmpl, scenario, maxConns)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := h.setup.Config(db.URL)
	if err != nil {
		return nil, nil, errors.Join(err, db.Drop(context.WithoutCancel(ctx)))
	}
	return db, cfg, nil
}

func createDB(ctx context.Context, adminURL, name, template string) (*scratchDB, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parsing admin database URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Database, err)
	}
	defer conn.Close(ctx)
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	return &scratchDB{Name: name, URL: databaseURL(cfg, name), admin: adminURL}, nil
}

// Drop closes the pool and drops the database, disconnecting anyone left.
func (db *scratchDB) Drop(ctx context.Context) error {
	if db.Pool != nil {
		db.Pool.Close()
	}
	conn, err := pgx.Connect(ctx, db.admin)
	if err != nil {
		return fmt.Errorf("connecting to drop %s: %w", db.Name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping %s: %w", db.Name, err)
	}
	return nil
}

func databaseURL(base *pgx.ConnConfig, dbname string) string {
	if base.Password != "" {
		return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", base.User, base.Password, base.Host, base.Port, dbname)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", base.User, base.Host, base.Port, dbname)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
