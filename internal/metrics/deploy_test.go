package metrics_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/trialsd/trialsd/internal/metrics"
)

var metricName = regexp.MustCompile(`\b((?:trialsd|go|process)_[a-zA-Z0-9_]+)`)

// exported reports whether name (or the histogram family it belongs to) is
// a metric the daemon exports.
func exported(names []string, name string) bool {
	if slices.Contains(names, name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(names, base) {
			return true
		}
	}
	return false
}

func checkQueries(t *testing.T, source string, exprs []string) {
	t.Helper()
	m := metrics.New()
	m.WatchTransactionAborts(func() (int64, int64) { return 0, 0 })
	names := m.Names()
	if len(exprs) == 0 {
		t.Fatalf("%s has no queries", source)
	}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			if !exported(names, m) {
				t.Errorf("%s queries %s, which trialsd does not export (in %q)", source, m, e)
			}
		}
	}
}

// Every query of the shipped dashboard names metrics the daemon exports,
// and every panel says what it shows, in a unit of its own.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/grafana/trialsd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title       string `json:"title"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
		Panels []struct {
			Type        string `json:"type"`
			Title       string `json:"title"`
			Description string `json:"description"`
			FieldConfig struct {
				Defaults struct {
					Unit string `json:"unit"`
				} `json:"defaults"`
			} `json:"fieldConfig"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Description == "" || p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q lacks a description or a unit", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
			if strings.Contains(tg.Expr, "[5m]") {
				t.Errorf("panel %q uses a fixed [5m] window, not $__rate_interval: %s", p.Title, tg.Expr)
			}
		}
	}
	for _, a := range dash.Annotations.List {
		if a.Expr != "" {
			exprs = append(exprs, a.Expr)
		}
	}
	checkQueries(t, "deploy/grafana/trialsd.json", exprs)
}

// Every alert names metrics the daemon exports and a runbook section, and
// promtool accepts the rules and passes their unit tests
// (deploy/prometheus/alerts_test.yml) where it is installed (Debian's
// prometheus; CI installs it and sets TRIALSD_REQUIRE_PROMETHEUS).
func TestAlertRules(t *testing.T) {
	t.Parallel()
	var exprs []string
	for _, file := range []string{"rules.yml", "alerts.yml"} {
		raw, err := os.ReadFile("../../deploy/prometheus/" + file)
		if err != nil {
			t.Fatal(err)
		}
		var rules struct {
			Groups []struct {
				Rules []struct {
					Alert       string            `yaml:"alert"`
					Expr        string            `yaml:"expr"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(raw, &rules); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		ops, err := os.ReadFile("../../docs/operations.md")
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, r.Expr)
				if r.Alert == "" {
					continue
				}
				anchor := strings.ToLower(r.Alert)
				if r.Annotations["runbook"] != "docs/operations.md#"+anchor || !strings.Contains(string(ops), "### "+r.Alert+"\n") {
					t.Errorf("alert %s has no runbook section in docs/operations.md", r.Alert)
				}
			}
		}
	}
	checkQueries(t, "deploy/prometheus", exprs)

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("TRIALSD_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("promtool not installed, and TRIALSD_REQUIRE_PROMETHEUS is set (apt-get install prometheus)")
		}
		t.Skip("promtool not installed: rule syntax and unit tests not checked (apt-get install prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../../deploy/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
