// Command trialsbench runs trialsd's benchmark scenarios side by side on one
// Postgres and writes their reports to bench/out. See docs/performance.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/trialsd/trialsd/cmd/trialsbench/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "trialsbench:", err)
		os.Exit(1)
	}
}

// run parses the flags into bench.Options and runs the harness.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trialsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := fs.Bool("smoke", false, "tiny sizes that prove the harness works in seconds (figures mean nothing)")
	o := bench.DefaultOptions()
	if len(args) > 0 && contains(args, "-smoke", "--smoke", "-smoke=true", "--smoke=true") {
		o = bench.SmokeOptions()
	}
	scenarios := fs.String("scenarios", strings.Join(o.Scenarios, ","), "comma-separated: storm,river,cron,intake,scale,footprint")
	var configFiles, env multiFlag
	fs.Var(&configFiles, "config", "config file given to every daemon (repeatable)")
	fs.Var(&env, "env", "extra KEY=value for every daemon, e.g. TRIALSD_RIVER_MAX_WORKERS=500 (repeatable)")
	fs.StringVar(&o.OutDir, "out", o.OutDir, "directory of the reports")
	fs.StringVar(&o.AdminURL, "admin-url", o.AdminURL, "Postgres database to create the scenarios' databases from")
	fs.StringVar(&o.Trialsd, "trialsd", o.Trialsd, "trialsd binary (default: build one into -out)")
	fs.StringVar(&o.Pgbench, "pgbench", o.Pgbench, "pgbench binary")
	fs.IntVar(&o.StormTrials, "storm-trials", o.StormTrials, "trials due within the storm window")
	fs.DurationVar(&o.StormWindow, "storm-window", o.StormWindow, "span the storm's due dates are spread over")
	fs.DurationVar(&o.StormLead, "storm-lead", o.StormLead, "from loading to the first due date (0: from the trial count)")
	fs.IntVar(&o.StormReplicas, "storm-replicas", o.StormReplicas, "daemons working the storm's database (the lag is the whole storm's; the CPU figures the first daemon's)")
	fs.BoolVar(&o.StormEmails, "storm-emails", o.StormEmails, "send each expiry's e-mail to a local SMTP server and measure the e-mails")
	fs.IntVar(&o.StormNeighbourTrials, "storm-neighbour-trials", o.StormNeighbourTrials, "trials of a second daemon's storm on a database of its own, due within the same window on the same Postgres (0: none)")
	fs.IntVar(&o.BurstTrials, "burst-trials", o.BurstTrials, "trials already due (backlog) and River no-op jobs, for the throughput ratio")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "longest wait for a daemon or peer to finish its work")
	fs.DurationVar(&o.CronInterval, "cron-interval", o.CronInterval, "interval of the cron-sweep peer")
	fs.DurationVar(&o.IntakeDuration, "intake-duration", o.IntakeDuration, "how long intake and pgbench run")
	fs.IntVar(&o.IntakeClients, "intake-clients", o.IntakeClients, "concurrent HTTP clients and pgbench clients")
	fs.IntVar(&o.IntakeUsers, "intake-users", o.IntakeUsers, "fresh users prepared for each of HTTP and pgbench")
	fs.IntVar(&o.ScaleTrials, "scale-trials", o.ScaleTrials, "trials (and scheduled jobs) of the scale scenario")
	fs.IntVar(&o.ScaleStormTrials, "scale-storm-trials", o.ScaleStormTrials, "backlog drained on top of the big table")
	fs.IntVar(&o.ScaleListRequests, "scale-list-requests", o.ScaleListRequests, "list-trials requests timed")
	fs.IntVar(&o.ScaleScrapes, "scale-scrapes", o.ScaleScrapes, "/metrics scrapes timed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_ = *smoke // read before parsing, to pick the defaults the other flags override
	o.Scenarios = strings.Split(*scenarios, ",")
	o.ConfigFiles, o.Env = configFiles, env
	o.Stdout = stdout
	o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	return bench.Run(ctx, o)
}

func contains(args []string, any ...string) bool {
	for _, a := range args {
		for _, b := range any {
			if a == b {
				return true
			}
		}
	}
	return false
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

// Set appends one occurrence.
func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}
