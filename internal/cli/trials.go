package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/services"
	"github.com/trialsd/trialsd/internal/wire"
)

// trialRow is a trial as the CLI prints it.
type trialRow struct {
	wire.EnterpriseTrial
	State domain.State `json:"state"`
}

func (a *app) trialsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "trials", Short: "Inspect and act on trials, with the daemon's own rules"}
	out := &printer{w: a.env.Stdout}
	cmd.PersistentFlags().BoolVar(&out.asJSON, "json", false, "print JSON for scripts instead of a table")
	cmd.AddCommand(
		a.trialsListCommand(out), a.trialsShowCommand(out), a.trialsExtendCommand(),
		a.trialsUpgradeCommand(), a.trialsReconcileCommand(out), a.trialsUpcomingCommand(out),
	)
	return cmd
}

// printer prints a command's result as a table, or as JSON under --json,
// the form every trials subcommand shares.
type printer struct {
	w      io.Writer
	asJSON bool
}

// print writes v as indented JSON under --json, else the table drawn by
// table.
func (p *printer) print(v any, table func(tw *tabwriter.Writer)) error {
	if p.asJSON {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// parseTrialID reads a trial id argument; anything but a positive number is
// refused as invalid before the database is opened.
func parseTrialID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.Errorf(apperr.Invalid, "%q is not a trial id", arg)
	}
	return id, nil
}

func (a *app) trialsListCommand(out *printer) *cobra.Command {
	var state, username string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List trials, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				f := lifecycle.ListFilter{State: domain.State(state), Limit: limit}
				if username != "" {
					u, err := s.Accounts.UserByUsername(ctx, username)
					if err != nil {
						return err
					}
					f.UserID = u.ID
				}
				trials, err := s.Lifecycle.List(ctx, f)
				if err != nil {
					return err
				}
				return printTrials(out, trials)
			})
		},
	}
	list.Flags().StringVar(&state, "state", "", "only trials in this state: active, expired, deleted or upgraded")
	list.Flags().StringVar(&username, "user", "", "only this user's trials (username)")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return list
}

// printTrials prints listed trials, one row each.
func printTrials(out *printer, trials []domain.Trial) error {
	rows := make([]trialRow, len(trials))
	for i, t := range trials {
		rows[i] = trialRow{wire.Trial(t), t.State}
	}
	return out.print(rows, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tSTATE\tUSER\tORG\tEXPIRES\tEXPIRED\tDELETED\tUPGRADED")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", r.ID, r.State, r.UserID, r.OrganizationID,
				r.ExpirationDate, orDash(r.ExpiredDate), orDash(r.DeletedDate), orDash(r.UpgradedDate))
		}
	})
}

func (a *app) trialsShowCommand(out *printer) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a trial with its history and pending jobs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTrialID(args[0])
			if err != nil {
				return err
			}
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				t, err := s.Lifecycle.Trial(ctx, id)
				if err != nil {
					return err
				}
				events, err := s.Lifecycle.Events(ctx, id)
				if err != nil {
					return err
				}
				jobs, err := s.Lifecycle.PendingJobs(ctx, t)
				if err != nil {
					return err
				}
				return printTrial(out, trialDetail{trialRow{wire.Trial(t), t.State}, events, jobs})
			})
		},
	}
}

// trialDetail is a trial with its history and pending jobs, as show prints it.
type trialDetail struct {
	Trial  trialRow               `json:"trial"`
	Events []domain.Event         `json:"events"`
	Jobs   []lifecycle.PendingJob `json:"pendingJobs"`
}

// printTrial prints one trial's detail: a heading, its events, its jobs.
func printTrial(out *printer, v trialDetail) error {
	t := v.Trial
	return out.print(v, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "trial %d (%s), user %d, organization %d, expires %s\n\n", t.ID, t.State, t.UserID, t.OrganizationID, t.ExpirationDate)
		fmt.Fprintln(tw, "EVENT\tAT\tACTOR\tCAUSE")
		for _, e := range v.Events {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Kind, wire.Format(e.At), e.Actor, e.Cause)
		}
		fmt.Fprintln(tw, "\nPENDING JOB\tKIND\tSTATE\tDUE")
		for _, j := range v.Jobs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", j.ID, j.Kind, j.State, wire.Format(j.ScheduledAt))
		}
	})
}

func (a *app) trialsExtendCommand() *cobra.Command {
	var until string
	var expire bool
	extend := &cobra.Command{
		Use:   "extend ID --until DATE [--expire]",
		Short: "Move a trial's expiration date (re-activating an expired trial; a past date only with --expire, which expires it now)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTrialID(args[0])
			if err != nil {
				return err
			}
			date, err := parseDateFlag("until", until)
			if err != nil {
				return err
			}
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				req := lifecycle.UpdateTrialRequest{ExpirationDate: &date, KeepActive: !expire}
				if err := s.Lifecycle.UpdateTrial(ctx, domain.Operator, id, req, domain.CommandCause("trials-extend")); err != nil {
					if apperr.ReasonOf(err) == lifecycle.ReasonWouldExpire {
						return apperr.InvalidField("until", "%s (pass --expire to do that)", apperr.MessageOf(err))
					}
					return err
				}
				t, err := s.Lifecycle.Trial(ctx, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "trial %d is %s and expires %s\n", id, t.State, wire.Format(t.ExpirationDate))
				return nil
			})
		},
	}
	extend.Flags().StringVar(&until, "until", "", "the new expiration date (required)")
	extend.Flags().BoolVar(&expire, "expire", false, "allow a date at or before the trial's now, which expires it at once")
	_ = extend.MarkFlagRequired("until")
	return extend
}

func (a *app) trialsUpgradeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "upgrade ID",
		Short: "Upgrade a trial to a full enterprise account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseTrialID(args[0])
			if err != nil {
				return err
			}
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				if err := s.Lifecycle.Upgrade(ctx, domain.Operator, id, domain.CommandCause("trials-upgrade")); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "trial %d upgraded\n", id)
				return nil
			})
		},
	}
}

func (a *app) trialsReconcileCommand(out *printer) *cobra.Command {
	return &cobra.Command{
		Use:   "reconcile",
		Short: "Run one repair sweep now and print what it fixed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				report, err := s.Lifecycle.Reconcile(ctx)
				if err != nil {
					return err
				}
				return out.print(report, func(tw *tabwriter.Writer) {
					fmt.Fprintf(tw, "checked %d trials due within the horizon\n", report.Checked)
					if len(report.Repaired) == 0 {
						fmt.Fprintln(tw, "nothing to repair")
					}
					for kind, n := range report.Repaired {
						fmt.Fprintf(tw, "re-enqueued %d %s\n", n, kind)
					}
				})
			})
		},
	}
}

func (a *app) trialsUpcomingCommand(out *printer) *cobra.Command {
	var within time.Duration
	upcoming := &cobra.Command{
		Use:   "upcoming",
		Short: "Transitions due within a window, by hour, from the jobs River holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				counts, err := s.Lifecycle.UpcomingTransitions(ctx, within)
				if err != nil {
					return err
				}
				return out.print(counts, func(tw *tabwriter.Writer) {
					fmt.Fprintln(tw, "HOUR (UTC)\tKIND\tCOUNT")
					for _, c := range counts {
						fmt.Fprintf(tw, "%s\t%s\t%d\n", c.Hour.UTC().Format("2006-01-02 15:00"), c.Kind, c.N)
					}
				})
			})
		},
	}
	within = 24 * time.Hour
	upcoming.Flags().Var((*days)(&within), "within", "how far ahead to look, such as 36h or 7d")
	return upcoming
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// days is a flag of wire.ParseDuration's form, so that the CLI takes the
// "7d" the console and the API take.
type days time.Duration

func (d *days) String() string { return time.Duration(*d).String() }
func (d *days) Type() string   { return "duration" }

func (d *days) Set(s string) error {
	v, err := wire.ParseDuration(s)
	*d = days(v)
	return err
}
