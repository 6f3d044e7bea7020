package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/services"
)

// maxListed bounds how many failed deliveries one command reads.
const maxListed = 1000

func (a *app) webhooksCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Short: "Inspect and replay webhook deliveries"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List deliveries whose every attempt failed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				failed, err := s.Outbox.Failed(ctx, maxListed)
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
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				if all {
					failed, err := s.Outbox.Failed(ctx, maxListed)
					if err != nil {
						return err
					}
					for _, m := range failed {
						ids = append(ids, m.ID)
					}
				}
				n, err := s.Outbox.Retry(ctx, ids)
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
