package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// event is one line of go test -json (test2json's TestEvent, with the
// build events of Go 1.24).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Elapsed    float64
	Output     string
}

// result is a package's or a test's outcome.
type result struct {
	name    string
	action  string
	elapsed time.Duration
	timeout time.Duration // packages only
}

// report prints what a developer needs from a run: each package as it
// ends, the output of what failed, and at the end the slowest.
type report struct {
	out     io.Writer
	timeout time.Duration // of the group running
	output  map[string][]string
	pkgs    []result
	tests   []result
}

func newReport(out io.Writer) *report {
	return &report{out: out, output: map[string][]string{}}
}

func (r *report) event(line []byte) {
	var e event
	if err := json.Unmarshal(line, &e); err != nil {
		fmt.Fprintf(r.out, "%s\n", line) // not an event: say it as it came
		return
	}
	pkg := relative(cmp.Or(e.Package, e.ImportPath))
	key := pkg + " " + e.Test
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.out, e.Output)
	case "output":
		r.output[key] = append(r.output[key], e.Output)
	case "pass", "fail", "skip":
		if e.Action == "fail" {
			r.printOutput(key, e.Test == "")
		}
		delete(r.output, key)
		res := result{name: pkg, action: e.Action, elapsed: seconds(e.Elapsed)}
		if e.Test != "" {
			if !strings.Contains(e.Test, "/") {
				res.name = pkg + " " + e.Test
				r.tests = append(r.tests, res)
			}
			return
		}
		res.timeout = r.timeout
		r.pkgs = append(r.pkgs, res)
		r.packageLine(res)
	}
}

// printOutput prints what a failed test said, or for a failed package what
// it said outside its tests and what its unfinished tests said (a timeout's
// panic ends the package, not the test it interrupted).
func (r *report) printOutput(key string, wholePackage bool) {
	if wholePackage {
		for _, k := range slices.Sorted(maps.Keys(r.output)) {
			if k != key && strings.HasPrefix(k, key) {
				fmt.Fprint(r.out, strings.Join(r.output[k], ""))
				delete(r.output, k)
			}
		}
	}
	fmt.Fprint(r.out, strings.Join(r.output[key], ""))
}

// groupTook says how long a group's go test ran, its build included: the
// packages' own times leave the build out, and on a cold cache it is most
// of the run.
func (r *report) groupTook(g *group, d time.Duration) {
	race := "without"
	if g.race {
		race = "with"
	}
	fmt.Fprintf(r.out, "== %d packages %s -race, timeout %s: %s, builds included\n", len(g.pkgs), race, g.timeout, d.Round(time.Second))
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(10 * time.Millisecond)
}

func (r *report) packageLine(p result) {
	word := map[string]string{"pass": "ok", "fail": "FAIL", "skip": "--"}[p.action]
	if p.action == "skip" {
		return // no test files
	}
	fmt.Fprintf(r.out, "%-4s %-40s %8s  %3.0f%% of %s\n", word, p.name, p.elapsed, share(p), p.timeout)
}

func share(p result) float64 {
	return 100 * float64(p.elapsed) / float64(p.timeout)
}

// summary prints the n slowest packages and tests, and every package that
// needed more than half its timeout, which a slower machine could fail.
func (r *report) summary(n int) {
	byTime := func(a, b result) int { return cmp.Compare(b.elapsed, a.elapsed) }
	slices.SortFunc(r.pkgs, byTime)
	slices.SortFunc(r.tests, byTime)
	fmt.Fprintf(r.out, "\n== the %d slowest packages\n", n)
	for _, p := range r.pkgs[:min(n, len(r.pkgs))] {
		fmt.Fprintf(r.out, "%8s  %3.0f%% of %-6s %s\n", p.elapsed, share(p), p.timeout, p.name)
	}
	fmt.Fprintf(r.out, "== the %d slowest tests\n", n)
	for _, t := range r.tests[:min(n, len(r.tests))] {
		fmt.Fprintf(r.out, "%8s  %s\n", t.elapsed, t.name)
	}
	for _, p := range r.pkgs {
		if share(p) > 50 && !mayRunClose[p.name] {
			fmt.Fprintf(r.out, "WARNING: %s needed %s, more than half its timeout of %s: give it more, or make it faster\n",
				p.name, p.elapsed, p.timeout)
		}
	}
}

// mayRunClose are the packages allowed more than half their timeout.
var mayRunClose = map[string]bool{"internal/chaos": true}
