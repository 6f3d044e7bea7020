package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/testdb"
)

// The harness runs every scenario at smoke sizes and writes a report of
// each that parses and holds what was measured. It asserts that the harness
// works, never a speed: the figures of a smoke run mean nothing.
func TestBenchSmoke(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := SmokeOptions()
	opts.OutDir = t.TempDir()
	if url := os.Getenv(testdb.EnvURL); url != "" {
		opts.AdminURL = url
	}
	var stdout bytes.Buffer
	opts.Stdout = &stdout
	opts.Logger = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	began := time.Now()
	if err := Run(ctx, opts); err != nil {
		t.Fatalf("running the harness: %v\n%s", err, stdout.String())
	}
	t.Logf("smoke run took %s", time.Since(began).Round(time.Millisecond))

	var storm StormReport
	read(t, opts.OutDir, ScenarioStorm, &storm)
	if storm.Expired != opts.StormTrials || storm.Lag.N != opts.StormTrials || storm.Lag.Max < storm.Lag.P50 {
		t.Errorf("storm: %d expired, lag %+v; want all %d", storm.Expired, storm.Lag, opts.StormTrials)
	}
	if storm.NeighbourTrials != opts.StormNeighbourTrials || storm.NeighbourLag.N != opts.StormNeighbourTrials {
		t.Errorf("storm: neighbour of %d trials, lag %+v; want all %d", storm.NeighbourTrials, storm.NeighbourLag, opts.StormNeighbourTrials)
	}
	// The sweeps delete the backlog's jobs; those River held meanwhile run.
	if storm.BurstJobs.Done > opts.BurstTrials || storm.QueueEmptyAfterS < 0 {
		t.Errorf("storm: of the backlog's %d expiry jobs %d ran (queue empty %.3fs after the last transition)",
			opts.BurstTrials, storm.BurstJobs.Done, storm.QueueEmptyAfterS)
	}
	if storm.Burst.Done != opts.BurstTrials || storm.TransitionsPerSecond <= 0 || storm.SustainedPerSecond <= 0 {
		t.Errorf("storm: backlog %+v, transitions/s %v, sustained %v", storm.Burst, storm.TransitionsPerSecond, storm.SustainedPerSecond)
	}
	if storm.Daemon.PeakRSSBytes <= 0 || storm.RSSIdleBytes <= 0 || storm.Daemon.Samples == 0 || len(storm.LagOverTime) == 0 {
		t.Errorf("storm: daemon usage %+v, idle RSS %d, %d lag points", storm.Daemon, storm.RSSIdleBytes, len(storm.LagOverTime))
	}
	if storm.Emails == nil || storm.Emails.N != opts.StormTrials || storm.Emails.PerSecond <= 0 {
		t.Errorf("storm: e-mails %+v; want one per trial, %d", storm.Emails, opts.StormTrials)
	}
	if storm.River.MaxWorkers <= 0 {
		t.Errorf("storm: river settings not recorded: %+v", storm.River)
	}

	var river RiverReport
	read(t, opts.OutDir, ScenarioRiver, &river)
	if river.Drain.Done != opts.BurstTrials || river.Drain.PerSecond <= 0 || river.Ratio <= 0 || river.River != storm.River {
		t.Errorf("river: %+v", river)
	}

	var cron CronReport
	read(t, opts.OutDir, ScenarioCron, &cron)
	if cron.Expired != opts.StormTrials || len(cron.Sweeps) == 0 || cron.Lag.N != opts.StormTrials || cron.Ours.N != opts.StormTrials {
		t.Errorf("cron: %d expired in %d sweeps, lag %+v, ours %+v", cron.Expired, len(cron.Sweeps), cron.Lag, cron.Ours)
	}

	var intake IntakeReport
	read(t, opts.OutDir, ScenarioIntake, &intake)
	if intake.OK == 0 || intake.Failed != 0 || intake.Latency.N != int(intake.OK) || intake.Pgbench.TPS <= 0 || intake.Ratio <= 0 {
		t.Errorf("intake: %d ok, %d failed (%s), latency %+v, pgbench %+v, ratio %v",
			intake.OK, intake.Failed, intake.FirstFailure, intake.Latency, intake.Pgbench.TPS, intake.Ratio)
	}

	var fp FootprintReport
	read(t, opts.OutDir, ScenarioFootprint, &fp)
	if fp.BinaryBytes < 1<<20 || len(fp.StartToReady) != opts.FootprintStarts || fp.StartToReadyP50 <= 0 || fp.RSSIdleBytes <= 0 || fp.RSSStormBytes <= 0 {
		t.Errorf("footprint: %+v", fp)
	}

	var scale ScaleReport
	read(t, opts.OutDir, ScenarioScale, &scale)
	if scale.ListTrials.N != opts.ScaleListRequests || scale.ListTrialsCold.N != opts.ScaleListRequests || scale.Metrics.N != opts.ScaleScrapes || scale.ReconcileS <= 0 ||
		scale.StormBig.Done != opts.ScaleStormTrials || scale.StormSmall.Done != opts.ScaleStormTrials || scale.StormRatio <= 0 {
		t.Errorf("scale: %+v", scale)
	}

	for _, chart := range []string{ScenarioStorm + ".svg", ScenarioCron + ".svg"} {
		b, err := os.ReadFile(filepath.Join(opts.OutDir, chart))
		if err != nil || !strings.HasPrefix(string(b), "<svg") || !strings.Contains(string(b), "<polyline") {
			t.Errorf("%s is not a chart (%v): %.100s", chart, err, b)
		}
	}
	for _, name := range append(DefaultScenarios, ScenarioScale) {
		if !strings.Contains(stdout.String(), "== "+name) {
			t.Errorf("no table printed for %s", name)
		}
	}
}

func read(t *testing.T, dir, scenario string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, scenario+".json"))
	if err != nil {
		t.Fatalf("report of %s: %v", scenario, err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("report of %s does not parse: %v", scenario, err)
	}
	var meta Meta
	if err := json.Unmarshal(b, &meta); err != nil || meta.Scenario != scenario || meta.At.IsZero() || meta.ElapsedS <= 0 {
		t.Errorf("report of %s: header %+v (%v)", scenario, meta, err)
	}
}

// testWriter sends the harness's warnings to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// BenchmarkLoadTrials is the COPY loader's cost per trial (six rows in six
// tables), which bounds how fast a scenario can set up.
func BenchmarkLoadTrials(b *testing.B) {
	pool := testdb.New(b)
	ctx := context.Background()
	adminID, err := createAdmin(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if _, err := loadTrials(ctx, pool, trialLoad{N: b.N, From: time.Now().Add(time.Hour), Window: time.Hour, AdminID: adminID, Config: config.Default()}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDistOf is the cost of summarising 100k lags.
func BenchmarkDistOf(b *testing.B) {
	src := make([]float64, 100_000)
	for i := range src {
		src[i] = float64((i * 7919) % 100_000)
	}
	buf := make([]float64, len(src))
	for b.Loop() {
		copy(buf, src)
		distOf(buf)
	}
}
