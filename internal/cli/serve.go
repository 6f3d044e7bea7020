package cli

import (
	"log/slog"
	"net"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/daemon"
	"github.com/trialsd/trialsd/internal/database"
)

func (a *app) serveCommand() *cobra.Command {
	var apiOnly, workersOnly, migrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API and the lifecycle workers",
		Long: `Run the HTTP API and the River workers that apply trial transitions.

Several replicas may run against one database; each transition is applied once.
With --migrate, the database is created if missing and migrated first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if apiOnly && workersOnly {
				return usagef("--api-only and --workers-only exclude each other")
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if err := cfg.ValidateForServe(); err != nil {
				return err
			}
			logger := a.newLogger(cfg)
			// What logs without a logger of its own (the store's transaction
			// retries, the unpaid sign-up sweep) goes to the same place.
			slog.SetDefault(logger)
			if !cfg.Turnstile.Enabled {
				logger.Warn("TURNSTILE VERIFICATION IS DISABLED: public sign-ups are open to bots; never run like this in production")
			}
			if cfg.Email.Sender == "smtp" && isLoopbackURL(cfg.Email.PublicURL) {
				logger.Warn("email.public_url is a loopback address: the reminders' unsubscribe links reach nobody; set it to the API's public URL",
					"email.public_url", cfg.Email.PublicURL)
			}
			ctx := cmd.Context()
			if migrate {
				if err := migrateUp(ctx, cfg.Database, logger); err != nil {
					return err
				}
			}
			pool, err := database.Open(ctx, database.PoolConfig{URL: cfg.Database.URL, MaxConns: cfg.Database.MaxConns})
			if err != nil {
				return err
			}
			defer pool.Close()
			d, err := daemon.New(cfg, logger, pool, clock.Real{}, daemon.Options{API: !workersOnly, Workers: !apiOnly})
			if err != nil {
				return err
			}
			return d.Run(ctx)
		},
	}
	cmd.Flags().BoolVar(&apiOnly, "api-only", false, "serve HTTP only; run no jobs")
	cmd.Flags().BoolVar(&workersOnly, "workers-only", false, "run jobs only; serve no API (metrics still served on http.metrics_addr)")
	cmd.Flags().BoolVar(&migrate, "migrate", false, "create the database if missing and apply pending migrations before serving")
	return cmd
}

// isLoopbackURL says u's host is localhost or a loopback address.
func isLoopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := parsed.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
