// Command trialsd is the trial lifecycle scheduler daemon and its operator
// tools. See `trialsd --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/trialsd/trialsd"
	"github.com/trialsd/trialsd/internal/cli"
)

// commit overrides the commit the binary says it was built from, set with
// -ldflags "-X main.commit=…" by a build made outside a Git checkout, where
// Go has no revision to stamp.
var commit string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := cli.DefaultEnv(trialsd.Version())
	env.Commit = buildCommit()
	code := cli.Run(ctx, env)
	stop()
	os.Exit(code)
}

// buildCommit is the short commit hash the binary was built from, with
// "-dirty" when the checkout had uncommitted changes, as the go command
// stamps it into a build made in a Git checkout; "" when unknown (go run,
// a source tarball).
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var revision, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			revision = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if len(revision) > 7 {
		revision = revision[:7]
	}
	if revision == "" {
		return ""
	}
	return revision + dirty
}
