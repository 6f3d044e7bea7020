// Package cli is trialsd's command line. main calls Run with the process's
// arguments, environment and standard streams, so the whole program can be
// tested with fakes of each.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/database"
	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/internal/services"
)

// Env is what a command sees of the outside world.
type Env struct {
	Args   []string
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Version is the release (the VERSION file) and Commit the commit the
	// binary was built from, "" when unknown.
	Version string
	Commit  string
}

// app carries what every command shares.
type app struct {
	env         Env
	configFiles []string
	// started is set once the command line parsed and the command began:
	// an error before is the command line's own.
	started bool
}

// Exit codes, so that a script can tell failures apart without reading
// the message; the README lists them.
const (
	exitOK          = 0
	exitFailed      = 1 // anything else: the message says what
	exitUsage       = 2 // the command line: an unknown command or flag, a missing flag or argument
	exitInvalid     = 3 // a value refused (a bad field, a bad config value named as such)
	exitNotFound    = 4 // no such user, trial, key or delivery
	exitConflict    = 5 // the current state forbids it
	exitNotAllowed  = 6 // not permitted
	exitUnavailable = 7 // the database could not be reached: retry later
)

// Run executes the command line and returns the process's exit code.
func Run(ctx context.Context, env Env) int {
	a := &app{env: env}
	root := a.rootCommand()
	root.SetArgs(env.Args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(env.Stderr, "trialsd:", describe(err))
		return a.exitCode(err)
	}
	return exitOK
}

// exitCode maps err to the process's exit code: apperr's code where there
// is one, in this one place.
func (a *app) exitCode(err error) int {
	if !a.started || errors.As(err, new(usageError)) {
		return exitUsage
	}
	if database.IsUnavailable(err) {
		return exitUnavailable
	}
	var e *apperr.Error
	if !errors.As(err, &e) {
		return exitFailed
	}
	switch e.Code {
	case apperr.Invalid:
		return exitInvalid
	case apperr.NotFound:
		return exitNotFound
	case apperr.Conflict:
		return exitConflict
	case apperr.Unauthorized, apperr.Forbidden:
		return exitNotAllowed
	case apperr.Unavailable:
		return exitUnavailable
	default:
		return exitFailed
	}
}

// usageError is a command line that parsed but does not make sense (flags
// that exclude each other, neither of two required ways).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// describe renders an error for an operator: a domain error's message, or
// the whole chain of anything else.
func describe(err error) string {
	var e *apperr.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "trialsd",
		Short:         "Trial lifecycle scheduler daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runs once cobra has parsed the command line and checked its
		// arguments; it checks the required flags itself, which cobra does
		// only after this hook, so that the command starts only once the
		// whole command line holds.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return usageError{err.Error()}
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return usageError{err.Error()}
			}
			a.started = true
			return nil
		},
	}
	root.PersistentFlags().StringArrayVar(&a.configFiles, "config", nil,
		"config file; repeat to overlay files, later ones win (env TRIALSD_CONFIG)")
	root.AddCommand(a.serveCommand(), a.migrateCommand(), a.usersCommand(), a.apikeysCommand(), a.webhooksCommand(), a.trialsCommand(), a.testclocksCommand(), a.emailsCommand(), a.eligibilityCommand(), a.versionCommand())
	return root
}

// loadConfig reads the config files and the environment.
func (a *app) loadConfig() (*config.Config, error) {
	files := a.configFiles
	if len(files) == 0 {
		if f := a.env.Getenv("TRIALSD_CONFIG"); f != "" {
			files = []string{f}
		}
	}
	return config.Load(files, a.env.Getenv)
}

// newLogger builds the process's logger from the log.* settings.
func (a *app) newLogger(cfg *config.Config) *slog.Logger {
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.Log.Level]
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(a.env.Stderr, opts)
	if cfg.Log.Format == "text" {
		h = slog.NewTextHandler(a.env.Stderr, opts)
	}
	// Lines logged while serving a request or working a job carry its ids.
	return slog.New(logging.NewHandler(h))
}

// openMigrated opens the database for an operator command and insists it is
// migrated, so a fresh install gets a clear instruction instead of SQL errors.
func (a *app) openMigrated(ctx context.Context, cfg *config.Config) (*pgxpool.Pool, error) {
	pool, err := database.Open(ctx, database.PoolConfig{URL: cfg.Database.URL, MaxConns: 4})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name
		return nil, errors.New("the database does not exist: run `trialsd migrate up` first")
	}
	if err != nil {
		return nil, err
	}
	pending, err := database.Pending(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if pending {
		pool.Close()
		return nil, errors.New("the database has pending migrations: run `trialsd migrate up` first")
	}
	return pool, nil
}

// withServices runs fn with the domain services on a migrated database.
// Their River client only inserts: what a command causes is enqueued, and a
// daemon's workers run it.
func (a *app) withServices(cmd *cobra.Command, fn func(ctx context.Context, s *services.Services) error) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	pool, err := a.openMigrated(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	s, err := services.NewInsertOnly(services.Deps{Config: cfg, Logger: slog.New(slog.DiscardHandler), Pool: pool, Clock: clock.Real{}})
	if err != nil {
		return err
	}
	return fn(cmd.Context(), s)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the release and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.env.Commit == "" {
				fmt.Fprintln(a.env.Stdout, "trialsd", a.env.Version)
				return nil
			}
			fmt.Fprintf(a.env.Stdout, "trialsd %s (commit %s)\n", a.env.Version, a.env.Commit)
			return nil
		},
	}
}

// DefaultEnv is the real process's environment.
func DefaultEnv(version string) Env {
	return Env{Args: os.Args[1:], Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Version: version}
}
