package cli

import (
	"context"
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/database"
)

// dbMissing says what a migration command does about a database that does
// not exist: `up` creates it, the others refuse.
type dbMissing int

const (
	refuseMissing dbMissing = iota
	createMissing
)

func (a *app) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Manage the database schema (River's tables and trialsd's)",
	}
	withPool := func(missing dbMissing, fn func(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			pool, err := database.Open(cmd.Context(), migrationPool(cfg.Database, missing))
			if err != nil {
				return err
			}
			defer pool.Close()
			return fn(cmd.Context(), cfg, pool)
		}
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Create the database if missing and apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: withPool(createMissing, func(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool) error {
			return database.MigrateUp(ctx, pool, a.newLogger(cfg))
		}),
	}, &cobra.Command{
		Use:   "down",
		Short: "Roll back the latest trialsd migration (River's tables are kept)",
		Args:  cobra.NoArgs,
		RunE: withPool(refuseMissing, func(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool) error {
			return database.MigrateDown(ctx, pool, a.newLogger(cfg))
		}),
	}, &cobra.Command{
		Use:   "status",
		Short: "List every migration and whether it is applied",
		Args:  cobra.NoArgs,
		RunE: withPool(refuseMissing, func(ctx context.Context, _ *config.Config, pool *pgxpool.Pool) error {
			states, err := database.MigrationStatus(ctx, pool)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCHEMA\tVERSION\tNAME\tSTATE")
			for _, s := range states {
				state := "pending"
				if s.Applied {
					state = "applied"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Schema, s.Version, s.Name, state)
			}
			return tw.Flush()
		}),
	})
	return cmd
}

// migrationPool is the pool every migration runs on: database.migrate_url
// (a direct connection when database.url is a pooler in transaction mode),
// small, as migrations run one at a time.
func migrationPool(db config.Database, missing dbMissing) database.PoolConfig {
	return database.PoolConfig{URL: db.MigrationURL(), MaxConns: 4, CreateIfMissing: missing == createMissing}
}

// migrateUp creates the database if missing and applies pending migrations
// on a pool of its own, closed before the daemon opens its own on
// database.url.
func migrateUp(ctx context.Context, db config.Database, logger *slog.Logger) error {
	pool, err := database.Open(ctx, migrationPool(db, createMissing))
	if err != nil {
		return err
	}
	defer pool.Close()
	return database.MigrateUp(ctx, pool, logger)
}
