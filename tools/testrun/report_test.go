package main

import (
	"strings"
	"testing"
	"time"
)

// A run's report shows each package with its share of its timeout, the
// output of what failed (a timed-out package's unfinished test included)
// and nothing of what passed, then the slowest, and warns of a package
// over half its timeout.
func TestReport(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	r := newReport(&out)
	r.timeout = time.Minute
	for _, line := range []string{
		`{"Action":"output","Package":"github.com/trialsd/trialsd/internal/a","Test":"TestQuiet","Output":"quiet passing output\n"}`,
		`{"Action":"pass","Package":"github.com/trialsd/trialsd/internal/a","Test":"TestQuiet","Elapsed":2.5}`,
		`{"Action":"output","Package":"github.com/trialsd/trialsd/internal/a","Test":"TestBroken","Output":"broken: want 1, got 2\n"}`,
		`{"Action":"fail","Package":"github.com/trialsd/trialsd/internal/a","Test":"TestBroken","Elapsed":0.1}`,
		`{"Action":"fail","Package":"github.com/trialsd/trialsd/internal/a","Elapsed":40}`,
		`{"Action":"output","Package":"github.com/trialsd/trialsd/internal/b","Test":"TestHangs","Output":"still waiting\n"}`,
		`{"Action":"output","Package":"github.com/trialsd/trialsd/internal/b","Output":"panic: test timed out after 1m0s\n"}`,
		`{"Action":"fail","Package":"github.com/trialsd/trialsd/internal/b","Elapsed":60}`,
	} {
		r.event([]byte(line))
	}
	r.groupTook(&group{race: true, timeout: time.Minute, pkgs: []string{"./internal/a", "./internal/b"}}, 95*time.Second)
	r.summary(10)
	got := out.String()
	for _, want := range []string{
		"broken: want 1, got 2", "still waiting", "panic: test timed out",
		"FAIL internal/a", "67% of 1m0s", "2.5s  internal/a TestQuiet",
		"WARNING: internal/a needed 40s, more than half its timeout of 1m0s",
		"== 2 packages with -race, timeout 1m0s: 1m35s, builds included",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet passing output") {
		t.Errorf("the report shows a passing test's output:\n%s", got)
	}
}

// Packages that share a timeout and the race detector run as one go test,
// the race detector's first.
func TestGroups(t *testing.T) {
	t.Parallel()
	gs := groups([]string{"internal/a", "internal/chaos", "jobs"})
	if len(gs) != 2 || !gs[0].race || gs[0].timeout != defaultTimeout || strings.Join(gs[0].pkgs, " ") != "./internal/a ./jobs" ||
		gs[1].race || gs[1].timeout != timeouts["internal/chaos"] {
		t.Fatalf("groups: %+v %+v", gs[0], gs[1])
	}
}
