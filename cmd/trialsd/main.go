// Command trialsd is the trial lifecycle scheduler daemon and its operator
// tools. See `trialsd --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trialsd/trialsd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.DefaultEnv(version))
	stop()
	os.Exit(code)
}
