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
	names := metrics.New().Names()
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

// Every query of the shipped dashboard names metrics the daemon exports.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/grafana/trialsd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
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
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	checkQueries(t, "deploy/grafana/trialsd.json", exprs)
}

// Every alert names metrics the daemon exports and a runbook section, and
// promtool accepts the rules where it is installed (Debian's prometheus).
func TestAlertRules(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
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
		t.Fatalf("alerts.yml: %v", err)
	}
	ops, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
			anchor := strings.ToLower(r.Alert)
			if r.Annotations["runbook"] != "docs/operations.md#"+anchor || !strings.Contains(string(ops), "### "+r.Alert) {
				t.Errorf("alert %s has no runbook section in docs/operations.md", r.Alert)
			}
		}
	}
	checkQueries(t, "deploy/prometheus/alerts.yml", exprs)

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: rule syntax not checked (apt-get install prometheus)")
		return
	}
	out, err := exec.Command(promtool, "check", "rules", "../../deploy/prometheus/alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
