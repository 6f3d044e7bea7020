package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/emails"
	"github.com/trialsd/trialsd/internal/services"
)

func (a *app) emailsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "emails", Short: "The trial e-mails: preview their templates"}
	cmd.AddCommand(a.emailsPreviewCommand())
	return cmd
}

func (a *app) emailsPreviewCommand() *cobra.Command {
	var trial int64
	var html bool
	preview := &cobra.Command{
		Use:   "preview NAME",
		Short: "Render a trial e-mail (" + strings.Join(emails.Names, ", ") + ") with the configured templates",
		Long: "Render a trial e-mail as a trial's user would get it now (--trial), or as the sample\n" +
			"trial the templates are checked against at start-up gets it: the subject, then the\n" +
			"plain text, or the HTML part with --html.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withServices(cmd, func(ctx context.Context, s *services.Services) error {
				r, err := s.Lifecycle.PreviewNotice(ctx, args[0], trial)
				if err != nil {
					return err
				}
				body := r.Text
				if html {
					body = r.HTML
				}
				_, err = fmt.Fprintf(a.env.Stdout, "Subject: %s\n\n%s", r.Subject, body)
				return err
			})
		},
	}
	preview.Flags().Int64Var(&trial, "trial", 0, "render it for this trial (id) instead of the sample")
	preview.Flags().BoolVar(&html, "html", false, "print the HTML part instead of the plain text")
	return preview
}
