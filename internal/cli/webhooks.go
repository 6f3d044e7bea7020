package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/daemon"
)

// maxListed bounds how many failed deliveries one command reads.
const maxListed = 1000

// withDaemon runs fn with the daemon wired on a migrated database, running
// nothing: its River client only inserts.
func (a *app) withDaemon(cmd *cobra.Command, fn func(ctx context.Context, d *daemon.Daemon) error) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	pool, err := a.openMigrated(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), pool, clock.Real{}, daemon.Options{})
	if err != nil {
		return err
	}
	return fn(cmd.Context(), d)
}

func (a *app) webhooksCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Short: "Inspect and replay webhook deliveries"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List deliveries whose every attempt failed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withDaemon(cmd, func(ctx context.Context, d *daemon.Daemon) error {
				failed, err := d.Outbox.Failed(ctx, maxListed)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tEVENT\tENDPOINT\tATTEMPTS\tFAILED\tLAST ERROR")
				for _, m := range failed {
					lastErr := ""
					if m.LastError != nil {
						lastErr = *m.LastError
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.EventID, m.Destination, m.Attempts, m.FailedAt.UTC().Format(time.RFC3339), lastErr)
				}
				return tw.Flush()
			})
		},
	}
	var all bool
	retry := &cobra.Command{
		Use:   "retry [--all | ID...]",
		Short: "Deliver failed webhooks again, each with a fresh round of attempts",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usagef("give either --all or the ids listed by `trialsd webhooks list`")
			}
			var ids []int64
			for _, a := range args {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil {
					return apperr.Errorf(apperr.Invalid, "%q is not a delivery id", a)
				}
				ids = append(ids, id)
			}
			return a.withDaemon(cmd, func(ctx context.Context, d *daemon.Daemon) error {
				if all {
					failed, err := d.Outbox.Failed(ctx, maxListed)
					if err != nil {
						return err
					}
					for _, m := range failed {
						ids = append(ids, m.ID)
					}
				}
				n, err := d.Outbox.Retry(ctx, ids)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "requeued %d of %d deliveries\n", n, len(ids))
				if n < len(ids) {
					return apperr.Errorf(apperr.Conflict, "%d of the given deliveries were not failed (delivered already, or unknown)", len(ids)-n)
				}
				return nil
			})
		},
	}
	retry.Flags().BoolVar(&all, "all", false, "retry every failed delivery")
	cmd.AddCommand(list, retry)
	return cmd
}
