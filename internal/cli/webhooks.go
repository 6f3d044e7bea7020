package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/outbox"
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
	cmd.AddCommand(list, retry, a.endpointsCommand())
	return cmd
}

// endpointsCommand manages webhook endpoints, as the admin API does.
func (a *app) endpointsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "endpoints", Short: "Manage webhook endpoints"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List webhook endpoints (those of webhooks.endpoints are read-only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				eps, err := s.Endpoints.List(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tURL\tEVENTS\tSTATE\tSOURCE\tDESCRIPTION")
				for _, e := range eps {
					events, state := "all", "enabled"
					if len(e.EventTypes) > 0 {
						events = strings.Join(e.EventTypes, ",")
					}
					if e.DisabledAt != nil {
						state = "disabled: " + *e.DisabledReason
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.URL, events, state, e.Source, e.Description)
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(list, a.endpointsAddCommand(), a.endpointsRmCommand(), a.endpointsRotateCommand())
	return cmd
}

func (a *app) endpointsAddCommand() *cobra.Command {
	var description string
	var eventTypes []string
	add := &cobra.Command{
		Use:   "add URL",
		Short: "Add a webhook endpoint and print its id and secret (shown this once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := outbox.EndpointSpec{URL: &args[0], Description: &description}
			if len(eventTypes) > 0 {
				spec.EventTypes = &eventTypes
			}
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				ep, secret, err := s.Endpoints.Create(ctx, spec)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "endpoint %d\n%s\n", ep.ID, secret)
				return nil
			})
		},
	}
	add.Flags().StringVar(&description, "description", "", "what the endpoint is for")
	add.Flags().StringSliceVar(&eventTypes, "event-type", nil, "deliver only this event type (repeatable; default: all)")
	return add
}

func (a *app) endpointsRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID",
		Short: "Remove a webhook endpoint with its undelivered messages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := endpointID(args[0])
			if err != nil {
				return err
			}
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				return s.Endpoints.Delete(ctx, id)
			})
		},
	}
}

func (a *app) endpointsRotateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate ID",
		Short: "Give an endpoint a new secret and print it; the old one signs too for webhooks.rotation_overlap",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := endpointID(args[0])
			if err != nil {
				return err
			}
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				secret, err := s.Endpoints.RotateSecret(ctx, id)
				if err == nil {
					fmt.Fprintln(a.env.Stdout, secret)
				}
				return err
			})
		},
	}
}

func endpointID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.Errorf(apperr.Invalid, "%q is not an endpoint id (see trialsd webhooks endpoints list)", s)
	}
	return id, nil
}
