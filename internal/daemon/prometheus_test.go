package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/billing"
	"github.com/trialsd/trialsd/internal/config"
	"github.com/trialsd/trialsd/internal/daemon"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
)

// The shipped dashboard and rules, against a real Prometheus (Debian's
// prometheus package) scraping two replicas of a daemon every second
// through a lifecycle: every dashboard query evaluates and returns series,
// the trial gauges equal the database however many replicas report them,
// and the growth panels equal what the trials' events say.
func TestDashboardAgainstPrometheus(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("TRIALSD_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("prometheus not installed, and TRIALSD_REQUIRE_PROMETHEUS is set (apt-get install prometheus)")
		}
		t.Skip("prometheus not installed (apt-get install prometheus): the dashboard is not checked against it")
	}
	b := setup(t, func(c *config.Config) { c.Lifecycle.PurgeAfter = time.Hour })
	// A second replica on the same database serves the API only: it
	// reports the same trial gauges, which the dashboard must not add up.
	api, err := daemon.New(config.Default(), slog.New(slog.DiscardHandler), b.pool, b.clock, daemon.Options{API: true})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api.Handler())
	t.Cleanup(apiSrv.Close)
	worker := hostPort(t, b.server.URL)
	prom := startPrometheus(t, bin, []string{worker, hostPort(t, apiSrv.URL)})

	// Every counter is scraped at 0 before anything happens, so increase()
	// sees each first event whole.
	prom.waitFor(t, `count(trialsd_trials_started_total)`, func(v float64) bool { return v == 6 })

	events := b.start(t)
	driveLifecycle(t, b, events)

	want := expectations(t, b)
	// The look-ahead gauges are counted by each replica's refresher (every
	// metrics.refresh_interval), not when scraped: refresh them now.
	for _, d := range []*daemon.Daemon{b.daemon, api} {
		d.Metrics().Refresh(context.Background(), d.MetricSources(), slog.New(slog.DiscardHandler))
	}
	byState := panelQuery(t, "Trials by state")
	var at float64
	prom.eventually(t, "the trials-by-state panel equals the database", func() error {
		// At the worker's last scrape, which saw every change: its counters'
		// increase() then needs no extrapolation, and is exact.
		at = prom.scalar(t, `max(timestamp(trialsd_workers_enabled{instance="`+worker+`"}))`, 0)
		res, err := prom.query(grafana(byState), at)
		if err != nil {
			return err
		}
		got := map[string]float64{}
		for _, r := range res {
			got[r.Metric["state"]] = r.value(t)
		}
		for state, n := range want.byState {
			if got[state] != n {
				return fmt.Errorf("the panel shows %v trials %s, the database has %v", got[state], state, n)
			}
		}
		if got := prom.scalar(t, `sum(trialsd_trials_started_total)`, at); got != want.started {
			return fmt.Errorf("%v starts scraped, %v committed", got, want.started)
		}
		if got := prom.scalar(t, `max(trialsd_trials_ending{within="7d"})`, at); got != want.ending7d {
			return fmt.Errorf("%v trials ending within 7 days scraped, the database has %v", got, want.ending7d)
		}
		return nil
	})
	checkPanels(t, prom, at, want)
}

// growth is what the database and the trials' events say the dashboard
// should show.
type growth struct {
	byState                             map[string]float64
	started, converted, ended, ending7d float64
	// convertAfter are the conversions' times from start, in seconds.
	convertAfter []float64
}

// driveLifecycle starts trials from every source, expires, upgrades (by an
// admin and by a payment), extends, deletes, restores and purges some.
func driveLifecycle(t *testing.T, b *testBundle, events <-chan *river.Event) {
	t.Helper()
	ctx := context.Background()
	s := b.daemon.Services()
	for i := range 3 {
		name := "signup" + strconv.Itoa(i)
		if _, err := s.Signup.StartEnterpriseTrial(ctx, signUp(name), "request:s"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if status, body := b.do(t, "POST", "/v1/api/user/trial", b.user, `{}`); status != http.StatusOK {
		t.Fatalf("self-service start: %d %v", status, body)
	}
	var ids []int64
	for _, d := range []time.Duration{time.Second, time.Second, time.Second, 3 * 24 * time.Hour, 20 * 24 * time.Hour} {
		status, body := b.do(t, "POST", "/v1/api/user/trial", b.admin, `{"expirationDate":"`+t0.Add(d).Format(time.RFC3339Nano)+`"}`)
		if status != http.StatusOK {
			t.Fatalf("admin start: %d %v", status, body)
		}
		ids = append(ids, int64(body["id"].(float64)))
	}
	b.clock.Advance(2 * time.Second)
	for range 3 {
		waitForJob(t, events, "trial.expire")
	}
	admin := domain.Actor{UserID: 1, Admin: true}
	b.clock.Advance(2 * 24 * time.Hour)
	must(t, s.Lifecycle.Upgrade(ctx, admin, ids[3], "request:u"))
	org := trialOrg(t, b, ids[0])
	raw := fmt.Sprintf(`{"id":"evt_1","type":"payment.succeeded","organizationId":%d}`, org)
	if _, err := s.Billing.Apply(ctx, billing.Event{ID: "evt_1", Type: billing.TypePaymentSucceeded, OrganizationID: &org}, json.RawMessage(raw)); err != nil {
		t.Fatal(err)
	}
	until := t0.Add(5 * 24 * time.Hour)
	must(t, s.Lifecycle.UpdateTrial(ctx, admin, ids[1], lifecycle.UpdateTrialRequest{ExpirationDate: &until}, "request:x"))
	must(t, s.Lifecycle.DeleteTrialNow(ctx, admin, ids[2], "request:d"))
	org = trialOrg(t, b, ids[2])
	must(t, s.Lifecycle.RestoreOrganization(ctx, admin, org, "request:r"))
	must(t, s.Lifecycle.DeleteOrganization(ctx, admin, org, true, "request:d2"))
	b.clock.Advance(time.Hour)
	waitForJob(t, events, "organization.purge")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func trialOrg(t *testing.T, b *testBundle, id int64) int64 {
	t.Helper()
	var org int64
	must(t, b.pool.QueryRow(context.Background(), `SELECT organization_id FROM trials WHERE id = $1`, id).Scan(&org))
	return org
}

// expectations reads the truth from the database: trials by state, and
// from the events, starts, conversions and the trials that ended.
func expectations(t *testing.T, b *testBundle) growth {
	t.Helper()
	ctx := context.Background()
	g := growth{byState: map[string]float64{"active": 0, "expired": 0, "deleted": 0, "upgraded": 0}}
	rows, err := b.pool.Query(ctx, `SELECT state, count(*) FROM trials GROUP BY state`)
	must(t, err)
	for rows.Next() {
		var state string
		var n float64
		must(t, rows.Scan(&state, &n))
		g.byState[state] = n
	}
	must(t, rows.Err())
	var purged float64
	must(t, b.pool.QueryRow(ctx, `SELECT count(DISTINCT trial_id) FROM trial_events WHERE kind = 'trial.purged'`).Scan(&purged))
	g.byState["purged"] = purged
	must(t, b.pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE kind = 'trial.created'),
		count(*) FILTER (WHERE kind = 'trial.upgraded'),
		count(*) FILTER (WHERE kind = 'trial.expired' OR (kind = 'trial.upgraded' AND data->>'from' = 'active'))
		FROM trial_events`).Scan(&g.started, &g.converted, &g.ended))
	must(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM trials WHERE state = 'active' AND expiration_date <= $1`,
		b.clock.Now().Add(7*24*time.Hour)).Scan(&g.ending7d))
	rows, err = b.pool.Query(ctx, `SELECT extract(epoch FROM u.at - c.at)::float8 FROM trial_events u
		JOIN trial_events c ON c.trial_id = u.trial_id AND c.kind = 'trial.created' WHERE u.kind = 'trial.upgraded'`)
	must(t, err)
	for rows.Next() {
		var s float64
		must(t, rows.Scan(&s))
		g.convertAfter = append(g.convertAfter, s)
	}
	must(t, rows.Err())
	if g.converted == 0 || g.ended == 0 || g.byState["purged"] == 0 || g.ending7d == 0 {
		t.Fatalf("the lifecycle left nothing to check: %+v", g)
	}
	return g
}

// panelQuery is the first query of the dashboard's panel titled title.
func panelQuery(t *testing.T, title string) string {
	t.Helper()
	for _, p := range readDashboard(t).Panels {
		if p.Title == title && len(p.Targets) > 0 {
			return p.Targets[0].Expr
		}
	}
	t.Fatalf("the dashboard has no panel %q", title)
	return ""
}

type dashboard struct {
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/grafana/trialsd.json")
	must(t, err)
	var dash dashboard
	must(t, json.Unmarshal(raw, &dash))
	return dash
}

// checkPanels evaluates every query of the shipped dashboard at the
// instant at: each must evaluate and return series; the growth stats must
// equal what the events say.
func checkPanels(t *testing.T, prom *prometheus, at float64, want growth) {
	t.Helper()
	dash := readDashboard(t)
	stats := map[string]float64{}
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			res, err := prom.query(grafana(tg.Expr), at)
			if err != nil {
				t.Errorf("panel %q: Prometheus cannot evaluate %s: %v", p.Title, tg.Expr, err)
				continue
			}
			if len(res) == 0 {
				t.Errorf("panel %q: %s returns no series", p.Title, tg.Expr)
				continue
			}
			if p.Type == "stat" {
				stats[p.Title] = res[0].value(t)
			}
		}
	}
	for _, a := range dash.Annotations.List {
		if a.Expr == "" {
			continue
		}
		// An annotation marks what happened (a restart); none may have.
		if _, err := prom.query(grafana(a.Expr), at); err != nil {
			t.Errorf("annotation %q: Prometheus cannot evaluate %s: %v", a.Name, a.Expr, err)
		}
	}
	if queries < 30 {
		t.Errorf("only %d dashboard queries found", queries)
	}
	checkGrowth(t, stats, want)
}

// checkGrowth holds the six growth stats to the database's answers.
func checkGrowth(t *testing.T, stats map[string]float64, want growth) {
	t.Helper()
	exact := map[string]float64{
		"Active now": want.byState["active"], "Started (7 d)": want.started, "Converted (7 d)": want.converted,
		"Conversion rate (30 d)": want.converted / want.ended, "Ending in the next 7 days": want.ending7d,
	}
	for title, w := range exact {
		got, ok := stats[title]
		if !ok || math.Abs(got-w) > 1e-9 {
			t.Errorf("stat %q = %v (present: %v), the database says %v", title, got, ok, w)
		}
	}
	// The median comes from a histogram: it lies in the bucket of the
	// true median.
	sort.Float64s(want.convertAfter)
	median := want.convertAfter[(len(want.convertAfter)-1)/2]
	lo, hi := bucketOf(median)
	if got := stats["Median time to convert (30 d)"]; got < lo || got > hi {
		t.Errorf("median time to convert = %vs, want within the bucket (%v, %v] of the true median %vs", got, lo, hi, median)
	}
}

// bucketOf is the bucket of trialsd_trial_time_to_convert_seconds holding s.
func bucketOf(s float64) (lo, hi float64) {
	day := 86400.0
	bounds := []float64{3600, 6 * 3600, day, 2 * day, 3 * day, 5 * day, 7 * day, 10 * day, 14 * day, 21 * day, 30 * day, 45 * day, 60 * day, 90 * day}
	for _, b := range bounds {
		if s <= b {
			return lo, b
		}
		lo = b
	}
	return lo, math.Inf(1)
}

// grafana is a dashboard query as Grafana sends it: every replica of job
// trialsd, windows of a few scrapes.
func grafana(expr string) string {
	return strings.NewReplacer(`$__rate_interval`, `5s`, `$__interval`, `1s`, `$__range`, `1h`,
		`$job`, `trialsd`, `$instance`, `.+`).Replace(expr)
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	must(t, err)
	return u.Host
}

// prometheus is a Prometheus server of the test's own.
type prometheus struct {
	base string
	log  *strings.Builder
}

// startPrometheus runs Prometheus on a free loopback port with a storage
// directory of its own, the shipped prometheus.yml with its rules, the
// scrape interval at 1 s and the targets given, and waits until it is ready.
func startPrometheus(t *testing.T, bin string, targets []string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	raw, err := os.ReadFile("../../deploy/prometheus/prometheus.yml")
	must(t, err)
	var cfg map[string]any
	must(t, yaml.Unmarshal(raw, &cfg))
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	var rules []string
	for _, f := range cfg["rule_files"].([]any) {
		abs, err := filepath.Abs(filepath.Join("../../deploy/prometheus", f.(string)))
		must(t, err)
		rules = append(rules, abs)
	}
	cfg["rule_files"] = rules
	job := cfg["scrape_configs"].([]any)[0].(map[string]any)
	job["static_configs"] = []any{map[string]any{"targets": targets}}
	out, err := yaml.Marshal(cfg)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), out, 0o600))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())
	p := &prometheus{base: "http://" + addr, log: &strings.Builder{}}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = io.Discard, p.log
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.log.String())
		}
	})
	p.eventually(t, "Prometheus is ready", func() error {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
	return p
}

// eventually polls cond until it holds, within a deadline that guards
// against a hang, not a wait for time to pass.
func (p *prometheus) eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s: %v", what, err)
		}
		// The next scrape comes within a second; ask again shortly.
		<-time.After(50 * time.Millisecond)
	}
}

// waitFor polls expr (a scalar query) until ok accepts its value.
func (p *prometheus) waitFor(t *testing.T, expr string, ok func(float64) bool) {
	t.Helper()
	p.eventually(t, expr, func() error {
		res, err := p.query(expr, 0)
		if err != nil {
			return err
		}
		if len(res) == 0 {
			return fmt.Errorf("no series")
		}
		if v := res[0].value(t); !ok(v) {
			return fmt.Errorf("value %v", v)
		}
		return nil
	})
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) value(t *testing.T) float64 {
	t.Helper()
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	must(t, err)
	return v
}

// query is an instant query at unix time at (0: now), through the HTTP API.
func (p *prometheus) query(expr string, at float64) ([]sample, error) {
	form := url.Values{"query": {expr}}
	if at != 0 {
		form.Set("time", strconv.FormatFloat(at, 'f', 3, 64))
	}
	resp, err := http.PostForm(p.base+"/api/v1/query", form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s", body.Error)
	}
	if body.Data.ResultType == "scalar" {
		var v [2]any
		err := json.Unmarshal(body.Data.Result, &v)
		return []sample{{Value: v}}, err
	}
	var res []sample
	err = json.Unmarshal(body.Data.Result, &res)
	return res, err
}

// scalar is the value of the one series expr returns at at.
func (p *prometheus) scalar(t *testing.T, expr string, at float64) float64 {
	t.Helper()
	res, err := p.query(expr, at)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if len(res) != 1 {
		return math.NaN()
	}
	return res[0].value(t)
}
