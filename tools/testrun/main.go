// Command testrun is `make test`: every package's tests, each package under
// a timeout of its own, then the slowest packages and tests, so that the
// next slow-down shows in CI's log before it becomes a failure.
//
// go test's -timeout is per test binary but one for the whole command, so
// packages that share a timeout (and the race detector, or not) run as one
// go test; the groups run one after another. Extra arguments go to every
// go test (`go run ./tools/testrun -run TestLogin`).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"time"
)

const module = "github.com/trialsd/trialsd"

// defaultTimeout is a package's timeout unless timeouts names it: at least
// twice what the slowest of them takes under -race on a 2-core machine.
const defaultTimeout = 3 * time.Minute

// timeouts are the packages that need another timeout than
// defaultTimeout, with why.
var timeouts = map[string]time.Duration{
	// The fault tests start daemons, Postgres clusters and PgBouncer and
	// kill them; they alone may run close to their timeout.
	"internal/chaos": 10 * time.Minute,
	// The benchmark harness's smoke run builds trialsd and runs every
	// scenario against it as processes, under its own 2-minute deadline.
	"cmd/trialsbench/internal/bench": 5 * time.Minute,
}

// noRace are the packages run without the race detector: their daemons
// run as separate processes, which the detector would not see; it would
// only slow the tests' own set-up.
var noRace = map[string]bool{"internal/chaos": true}

// group is the packages one go test runs.
type group struct {
	race    bool
	timeout time.Duration
	pkgs    []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	pkgs, err := list(ctx)
	if err != nil {
		return err
	}
	rep := newReport(stdout)
	var failed []string
	start := time.Now()
	for _, g := range groups(pkgs) {
		began := time.Now()
		if err := g.test(ctx, args, rep); err != nil {
			failed = append(failed, err.Error())
		}
		rep.groupTook(g, time.Since(began))
	}
	rep.summary(10)
	fmt.Fprintf(stdout, "== make test took %s, builds included\n", time.Since(start).Round(time.Second))
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// list is the module's packages, as paths relative to the module.
func list(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "./...").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		pkgs = append(pkgs, relative(p))
	}
	return pkgs, nil
}

func relative(importPath string) string {
	if importPath == module {
		return "."
	}
	return strings.TrimPrefix(importPath, module+"/")
}

// groups sorts the packages into go test runs, the race detector's first.
func groups(pkgs []string) []*group {
	var gs []*group
	for _, p := range pkgs {
		t, ok := timeouts[p]
		if !ok {
			t = defaultTimeout
		}
		i := slices.IndexFunc(gs, func(g *group) bool { return g.race == !noRace[p] && g.timeout == t })
		if i < 0 {
			gs = append(gs, &group{race: !noRace[p], timeout: t})
			i = len(gs) - 1
		}
		gs[i].pkgs = append(gs[i].pkgs, "./"+p)
	}
	slices.SortStableFunc(gs, func(a, b *group) int {
		if a.race != b.race {
			if a.race {
				return -1
			}
			return 1
		}
		return int(a.timeout - b.timeout)
	})
	return gs
}

// test runs the group's go test, reporting each package as it ends.
func (g *group) test(ctx context.Context, args []string, rep *report) error {
	cmdArgs := []string{"test", "-json", "-count=1", "-timeout", g.timeout.String()}
	if g.race {
		cmdArgs = append(cmdArgs, "-race")
	}
	cmdArgs = append(append(cmdArgs, args...), g.pkgs...)
	fmt.Fprintf(rep.out, "== go %s\n", strings.Join(cmdArgs[:len(cmdArgs)-len(g.pkgs)], " "))
	cmd := exec.CommandContext(ctx, "go", cmdArgs...)
	cmd.Stderr = os.Stderr
	events, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("go test: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("go test: %w", err)
	}
	rep.timeout = g.timeout
	sc := bufio.NewScanner(events)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		rep.event(sc.Bytes())
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("go test (timeout %s): %w", g.timeout, err)
	}
	return nil
}
