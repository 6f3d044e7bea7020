package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/wire"
)

func (a *app) testclocksCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "testclocks", Short: "Rehearse trials on simulated time (test_clocks.enabled)"}
	out := &printer{w: a.env.Stdout}
	cmd.PersistentFlags().BoolVar(&out.asJSON, "json", false, "print JSON for scripts instead of a table")
	cmd.AddCommand(a.testclocksCreateCommand(out), a.testclocksListCommand(out), a.testclocksShowCommand(out),
		a.testclocksAdvanceCommand(out), a.testclocksDeleteCommand())
	return cmd
}

// printClocks prints clocks as a table, or as JSON.
func printClocks(out *printer, clocks ...domain.TestClock) error {
	rows := make([]wire.TestClock, len(clocks))
	for i, c := range clocks {
		rows[i] = wire.Clock(c)
	}
	var v any = rows
	if len(rows) == 1 {
		v = rows[0]
	}
	return out.print(v, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tNAME\tFROZEN TIME\tSTATUS\tDELETES AFTER")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.FrozenTime, r.Status, r.DeletesAfter)
		}
	})
}

// parseClockID reads a test clock id argument.
func parseClockID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.Errorf(apperr.Invalid, "%q is not a test clock id", arg)
	}
	return id, nil
}

// withClock runs fn with the services and the clock id of arg, which is
// refused before the database is opened if it is not one.
func (a *app) withClock(cmd *cobra.Command, arg string, fn func(ctx context.Context, s *services.Services, id int64) error) error {
	id, err := parseClockID(arg)
	if err != nil {
		return err
	}
	return a.withServices(cmd, func(ctx context.Context, s *services.Services) error { return fn(ctx, s, id) })
}

// parseDateFlag reads a date flag (--until, --frozen-time, --to): RFC 3339,
// refused as invalid before the database is opened.
func parseDateFlag(flag, value string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, apperr.Errorf(apperr.Invalid, "--%s %q is not an RFC 3339 date such as 2031-01-01T00:00:00Z", flag, value)
	}
	return t, nil
}

func (a *app) testclocksCreateCommand(out *printer) *cobra.Command {
	var name, at string
	c := &cobra.Command{
		Use:   "create",
		Short: "Create a test clock standing at --frozen-time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseDateFlag("frozen-time", at)
			if err != nil {
				return err
			}
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				clk, err := s.Lifecycle.CreateTestClock(ctx, lifecycle.NewTestClock{Name: name, FrozenTime: t})
				if err != nil {
					return err
				}
				return printClocks(out, clk)
			})
		},
	}
	c.Flags().StringVar(&name, "name", "", "what the clock rehearses")
	c.Flags().StringVar(&at, "frozen-time", "", "the clock's simulated now (RFC 3339)")
	return c
}

func (a *app) testclocksListCommand(out *printer) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List test clocks, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				clocks, err := s.Lifecycle.TestClocks(ctx)
				if err != nil {
					return err
				}
				return printClocks(out, clocks...)
			})
		},
	}
}

func (a *app) testclocksShowCommand(out *printer) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a test clock",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClock(cmd, args[0], func(ctx context.Context, s *services.Services, id int64) error {
				clk, err := s.Lifecycle.TestClock(ctx, id)
				if err != nil {
					return err
				}
				return printClocks(out, clk)
			})
		},
	}
}

// clockPoll is how often advance --wait reads the clock.
const clockPoll = 200 * time.Millisecond

func (a *app) testclocksAdvanceCommand(out *printer) *cobra.Command {
	var to string
	var wait bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "advance ID",
		Short: "Advance a test clock --to a time; a running daemon applies what falls due on the way",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := parseDateFlag("to", to)
			if err != nil {
				return err
			}
			return a.withClock(cmd, args[0], func(ctx context.Context, s *services.Services, id int64) error {
				clk, err := s.Lifecycle.AdvanceTestClock(ctx, id, target)
				if err == nil && wait {
					clk, err = waitReady(ctx, s.Lifecycle, id, timeout)
				}
				if err != nil {
					return err
				}
				return printClocks(out, clk)
			})
		},
	}
	c.Flags().StringVar(&to, "to", "", "the clock's new time (RFC 3339)")
	c.Flags().BoolVar(&wait, "wait", false, "wait until the clock is ready at its new time")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait, how long to wait")
	return c
}

// waitReady reads the clock until it is ready, or timeout passes.
func waitReady(ctx context.Context, lc *lifecycle.Service, id int64, timeout time.Duration) (domain.TestClock, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		clk, err := lc.TestClock(ctx, id)
		if err != nil || clk.Status == domain.ClockReady {
			return clk, err
		}
		select {
		case <-ctx.Done():
			return clk, apperr.Errorf(apperr.Unavailable, "test clock %d still advancing after %s: is a daemon running its jobs?", id, timeout)
		case <-time.After(clockPoll):
		}
	}
}

func (a *app) testclocksDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a test clock with its trials and their jobs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClock(cmd, args[0], func(ctx context.Context, s *services.Services, id int64) error {
				if err := s.Lifecycle.DeleteTestClock(ctx, id); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "test clock %d deleted\n", id)
				return nil
			})
		},
	}
}
