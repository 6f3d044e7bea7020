// Package bench is the harness behind `make bench`: it runs trialsd and its
// peers side by side on one Postgres, each scenario on a fresh database, and
// writes what it measured as JSON reports, tables and SVG charts. It only
// drives the daemon from outside (its binary, its HTTP API, its schema), so
// it measures whatever the lifecycle does, however it is implemented.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/trialsd/trialsd/internal/config"
)

// Scenario names, which are also the names of their report files.
const (
	ScenarioStorm     = "storm"
	ScenarioRiver     = "river"
	ScenarioCron      = "cron"
	ScenarioIntake    = "intake"
	ScenarioScale     = "scale"
	ScenarioFootprint = "footprint"
)

// DefaultScenarios are those of `make bench`; scale runs on its own.
var DefaultScenarios = []string{ScenarioStorm, ScenarioRiver, ScenarioCron, ScenarioIntake, ScenarioFootprint}

// Options configure a run. The zero value is not useful: start from
// DefaultOptions or SmokeOptions.
type Options struct {
	Scenarios []string
	OutDir    string
	// AdminURL is a Postgres database the harness may create others from.
	AdminURL string
	// Trialsd is the daemon binary; empty builds one into OutDir.
	Trialsd string
	// ConfigFiles and Env are given to every daemon (and read for the
	// River baseline's queue settings).
	ConfigFiles []string
	Env         []string
	Pgbench     string

	StormTrials int
	StormWindow time.Duration
	// StormLead is how long after loading the first trial is due; 0 picks
	// one from the number of trials.
	StormLead time.Duration
	// StormReplicas is how many daemons work the storm's database: with
	// more than one, the storm runs as it does beside a second replica.
	StormReplicas int
	// StormNeighbourTrials, when set, fall due within the storm's window on
	// a database of their own with a daemon of their own, on the same
	// Postgres: the storm as it runs beside another service's burst.
	StormNeighbourTrials int
	// StormEmails sends each expiry's notice to a local SMTP server the
	// harness runs, and measures the e-mails after the window.
	StormEmails bool
	// BurstTrials are loaded already due, for the drain throughput that is
	// compared with River's no-op throughput.
	BurstTrials int
	// Timeout bounds each wait for a daemon or peer to finish its work.
	Timeout time.Duration

	CronInterval time.Duration

	IntakeDuration time.Duration
	IntakeClients  int
	IntakeUsers    int

	ScaleTrials       int
	ScaleStormTrials  int
	ScaleListRequests int
	ScaleScrapes      int

	// FootprintStarts daemons are started for the start-up time; the last
	// one's RSS is read FootprintIdle after it is ready.
	FootprintStarts int
	FootprintIdle   time.Duration

	// ProfileSeconds is the length of the daemon's CPU profiles in the
	// storm (when it can serve pprof); 0 takes none.
	ProfileSeconds int

	// Concurrent runs the scenarios all at once (smoke runs only: they
	// would skew each other's figures).
	Concurrent bool

	Logger *slog.Logger
	Stdout io.Writer
}

// DefaultOptions are the sizes of `make bench`.
func DefaultOptions() Options {
	return Options{
		Scenarios: DefaultScenarios, OutDir: "bench/out",
		AdminURL:    "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		Pgbench:     "/usr/lib/postgresql/15/bin/pgbench",
		StormTrials: 100_000, StormWindow: 60 * time.Second, StormReplicas: 1, BurstTrials: 100_000, Timeout: 10 * time.Minute,
		CronInterval:   60 * time.Second,
		IntakeDuration: 15 * time.Second, IntakeClients: 16, IntakeUsers: 100_000,
		ScaleTrials: 10_000_000, ScaleStormTrials: 20_000, ScaleListRequests: 2000, ScaleScrapes: 20,
		FootprintStarts: 3, FootprintIdle: 5 * time.Second, ProfileSeconds: 10,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Stdout: os.Stdout,
	}
}

// SmokeOptions are sizes that run every scenario in seconds, to prove the
// harness works; their figures mean nothing.
func SmokeOptions() Options {
	o := DefaultOptions()
	o.Scenarios = append(slices.Clone(DefaultScenarios), ScenarioScale)
	o.StormTrials, o.StormWindow, o.BurstTrials, o.Timeout = 200, time.Second, 200, 60*time.Second
	o.StormNeighbourTrials = 100
	o.StormEmails = true
	o.CronInterval = 500 * time.Millisecond
	o.IntakeDuration, o.IntakeClients, o.IntakeUsers = time.Second, 4, 5000
	o.ScaleTrials, o.ScaleStormTrials, o.ScaleListRequests, o.ScaleScrapes = 2000, 200, 50, 3
	o.FootprintStarts, o.FootprintIdle = 1, time.Second
	o.Concurrent, o.ProfileSeconds = true, 1
	return o
}

// harness is one run's shared state: the daemon setup and what earlier
// scenarios measured, for the ratios of later ones.
type harness struct {
	opts  Options
	setup daemonSetup
	log   *slog.Logger
	tmpl  *scratchDB
	// version is the source tree's git description.
	version string
	// storm is this run's storm, once it has run, for later scenarios'
	// ratios and charts.
	mu    sync.Mutex
	storm *StormReport
}

// Run runs the scenarios in order, writing a report of each into OutDir.
func Run(ctx context.Context, opts Options) (err error) {
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", opts.OutDir, err)
	}
	h := &harness{opts: opts, log: opts.Logger}
	h.setup = daemonSetup{Bin: opts.Trialsd, Files: opts.ConfigFiles, Env: opts.Env, LogDir: opts.OutDir}
	if h.setup.Bin == "" {
		h.log.InfoContext(ctx, "building trialsd")
		bin, err := buildTrialsd(ctx, opts.OutDir)
		if err != nil {
			return err
		}
		h.setup.Bin = bin
	}
	if out, err := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		h.version = strings.TrimSpace(string(out))
	}
	if h.tmpl, err = newTemplateDB(ctx, opts.AdminURL); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, h.tmpl.Drop(context.WithoutCancel(ctx))) }()
	scenarios := map[string]func(context.Context) (report, error){
		ScenarioStorm: h.runStorm, ScenarioRiver: h.runRiver, ScenarioCron: h.runCron,
		ScenarioIntake: h.runIntake, ScenarioScale: h.runScale, ScenarioFootprint: h.runFootprint,
	}
	for _, name := range opts.Scenarios {
		if _, ok := scenarios[name]; !ok {
			return fmt.Errorf("unknown scenario %q (known: storm, river, cron, intake, scale, footprint)", name)
		}
	}
	if opts.Concurrent {
		return h.runConcurrently(ctx, scenarios)
	}
	for _, name := range opts.Scenarios {
		rep, err := h.runOne(ctx, name, scenarios[name])
		if err != nil {
			return err
		}
		if err := h.write(name, rep); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) runOne(ctx context.Context, name string, run func(context.Context) (report, error)) (report, error) {
	h.log.InfoContext(ctx, "scenario starting", "scenario", name)
	began := time.Now()
	rep, err := run(ctx)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	h.log.InfoContext(ctx, "scenario done", "scenario", name, "took", time.Since(began).Round(time.Millisecond))
	if storm, ok := rep.(*StormReport); ok {
		h.mu.Lock()
		h.storm = storm
		h.mu.Unlock()
	}
	return rep, nil
}

// runConcurrently runs every scenario at once and writes the reports when
// all are done: for smoke runs, whose figures do not matter but whose
// duration does.
func (h *harness) runConcurrently(ctx context.Context, scenarios map[string]func(context.Context) (report, error)) error {
	reps := make([]report, len(h.opts.Scenarios))
	errs := make([]error, len(h.opts.Scenarios))
	var wg sync.WaitGroup
	for i, name := range h.opts.Scenarios {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = h.runOne(ctx, name, scenarios[name])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, name := range h.opts.Scenarios {
		if err := h.write(name, reps[i]); err != nil {
			return err
		}
	}
	return nil
}

// report is what a scenario hands back: its JSON body and its table.
type report interface {
	table() [][2]string
}

// stormRelative is a report with figures relative to the storm's.
type stormRelative interface {
	withStorm(*StormReport)
}

// charted is a report with charts, by file name.
type charted interface {
	charts() map[string]string
}

// Meta is the header of every report: what ran, where, when.
type Meta struct {
	Scenario string    `json:"scenario"`
	At       time.Time `json:"at"`
	Database string    `json:"database"`
	ElapsedS float64   `json:"elapsedS"`
	// Trialsd is `git describe --always --dirty` of the tree the daemon
	// was built from: figures belong to a version.
	Trialsd string `json:"trialsd"`
	// LoadAvg is /proc/loadavg when the scenario ended: on a shared
	// machine, a busy neighbour shows here before it skews a ratio.
	LoadAvg string `json:"loadAvg"`
}

func (m *Meta) header() *Meta { return m }

// write completes rep with the storm's figures, if any, and writes its
// JSON, its charts and its table.
func (h *harness) write(name string, rep report) error {
	h.mu.Lock()
	storm := h.storm
	h.mu.Unlock()
	if r, ok := rep.(stormRelative); ok && storm != nil {
		r.withStorm(storm)
	}
	if m, ok := rep.(interface{ header() *Meta }); ok {
		m.header().Trialsd = h.version
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			m.header().LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
		}
	}
	if c, ok := rep.(charted); ok {
		for file, svg := range c.charts() {
			if err := h.writeFile(file, svg); err != nil {
				return err
			}
		}
	}
	body, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s report: %w", name, err)
	}
	path := filepath.Join(h.opts.OutDir, name+".json")
	if err := os.WriteFile(path, append(body, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	out := h.opts.Stdout
	fmt.Fprintf(out, "\n== %s (%s)\n", name, path)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, row := range rep.table() {
		fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

func (h *harness) writeFile(name, content string) error {
	path := filepath.Join(h.opts.OutDir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// riverSettings are the daemon's queue settings, recorded in each report
// that depends on them.
type riverSettings struct {
	MaxWorkers          int     `json:"maxWorkers"`
	FetchCooldownMs     float64 `json:"fetchCooldownMs"`
	FetchPollIntervalMs float64 `json:"fetchPollIntervalMs"`
	MaxConns            int32   `json:"databaseMaxConns"`
}

func (s riverSettings) String() string {
	return fmt.Sprintf("max_workers=%d fetch_cooldown=%gms fetch_poll_interval=%gms max_conns=%d",
		s.MaxWorkers, s.FetchCooldownMs, s.FetchPollIntervalMs, s.MaxConns)
}

func fmtDist(d Dist) string {
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (n=%d)", fmtMs(d.P50), fmtMs(d.P95), fmtMs(d.P99), fmtMs(d.Max), d.N)
}

func fmtMs(v float64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	default:
		return fmt.Sprintf("%.1fms", v)
	}
}

func fmtRate(v float64, unit string) string { return fmt.Sprintf("%.0f %s", v, unit) }

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

func settingsOf(cfg *config.Config) riverSettings {
	return riverSettings{
		MaxWorkers: cfg.River.MaxWorkers, FetchCooldownMs: ms(cfg.River.FetchCooldown),
		FetchPollIntervalMs: ms(cfg.River.FetchPollInterval), MaxConns: cfg.Database.MaxConns,
	}
}
