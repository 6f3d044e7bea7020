package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/services"
)

func (a *app) eligibilityCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "eligibility", Short: "Who may start a trial: show the rules' verdict, grant a trial they refuse"}
	cmd.AddCommand(a.eligibilityShowCommand(), a.eligibilityGrantCommand())
	return cmd
}

// subjectOf reads an argument as an address (it has an @) or a domain.
func subjectOf(arg string) eligibility.Subject {
	if strings.Contains(arg, "@") {
		return eligibility.Subject{Email: arg}
	}
	return eligibility.Subject{Domain: arg}
}

func (a *app) eligibilityShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show EMAIL|DOMAIN",
		Short: "Say whether an address (or a new address at a domain) may start a trial now, and the domain's history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				r, err := s.Eligibility.Show(ctx, subjectOf(args[0]))
				if err != nil {
					return err
				}
				return printReport(a.env.Stdout, r)
			})
		},
	}
}

func printReport(w io.Writer, r eligibility.Report) error {
	verdict := "eligible"
	if r.Grant != nil {
		verdict = fmt.Sprintf("eligible through grant %d, which lifts %s", r.Grant.ID, r.Reason)
	}
	if !r.Eligible {
		verdict = fmt.Sprintf("refused (%s): %s", r.Reason, r.Message)
	}
	limit := func(n int) string {
		if n == 0 {
			return "none"
		}
		return fmt.Sprint(n)
	}
	fmt.Fprintf(w, "%s\ndomain %s: %d active (limit %s), %d in the last %d days (limit %s), limits from %s\n",
		verdict, r.Domain, r.Counts.DomainActive, limit(r.Limits.Active), r.Counts.DomainRecent,
		r.Limits.WindowDays(), limit(r.Limits.Trials), r.Limits.Source)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTRIAL\tSTARTED\tSTATE\tPURGED\tTHIS ADDRESS\tGRANT")
	for _, t := range r.History {
		state := t.State
		if t.Outcome != "" {
			state += " (" + t.Outcome + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%s\n", t.TrialID, t.StartedAt.UTC().Format(time.DateOnly), state,
			dateOr(t.PurgedAt), t.OfAddress, idOr(t.GrantID))
	}
	fmt.Fprintln(tw, "\nGRANT\tFOR\tBY\tGRANTED\tUSED BY TRIAL\tNOTE")
	for _, g := range r.Grants {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.Subject, g.GrantedBy, g.GrantedAt.UTC().Format(time.DateOnly), idOr(g.TrialID), g.Note)
	}
	return tw.Flush()
}

func dateOr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}

func idOr(id *int64) string {
	if id == nil {
		return "-"
	}
	return fmt.Sprint(*id)
}

func (a *app) eligibilityGrantCommand() *cobra.Command {
	var note string
	grant := &cobra.Command{
		Use:   "grant EMAIL|DOMAIN --note WHY",
		Short: "Let the next trial start of an address (whatever rule refuses it) or of anyone at a domain (its limits) through, once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				g, err := s.Eligibility.Grant(ctx, domain.Operator, eligibility.GrantRequest{Subject: subjectOf(args[0]), Note: note})
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.env.Stdout, "grant %d: one trial for %s\n", g.ID, g.Subject)
				return err
			})
		},
	}
	grant.Flags().StringVar(&note, "note", "", "why the rules are lifted (required; recorded with the grant)")
	return grant
}
