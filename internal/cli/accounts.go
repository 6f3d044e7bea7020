package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/services"
)

// withAccounts runs fn with the accounts service on a migrated database.
func (a *app) withAccounts(cmd *cobra.Command, fn func(ctx context.Context, acc *accounts.Service) error) error {
	return a.withServices(cmd, func(ctx context.Context, s *services.Services) error { return fn(ctx, s.Accounts) })
}

// maxPasswordBytes bounds a password read from stdin; a longer one is refused,
// never silently cut.
const maxPasswordBytes = 4096

func (a *app) usersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage users"}
	var username, email string
	var passwordStdin bool
	create := &cobra.Command{
		Use:   "create-admin",
		Short: "Create an admin (or promote an existing user) and print a new API key",
		Long: `Create an admin, or promote the user with that username, and issue a new API
key for them. The key is printed as the last line of standard output; it is
stored only as a hash and cannot be shown again. With --password-stdin the
password is read from standard input, never from the command line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			password := ""
			if passwordStdin {
				b, err := io.ReadAll(io.LimitReader(a.env.Stdin, maxPasswordBytes+1))
				if err != nil {
					return fmt.Errorf("reading password from stdin: %w", err)
				}
				if len(b) > maxPasswordBytes {
					return apperr.InvalidField("password", "password on stdin is longer than %d bytes", maxPasswordBytes)
				}
				password = strings.TrimRight(string(b), "\r\n")
				if password == "" {
					return apperr.InvalidField("password", "--password-stdin given but standard input was empty")
				}
			}
			return a.withAccounts(cmd, func(ctx context.Context, acc *accounts.Service) error {
				u, key, err := acc.CreateAdmin(ctx, username, email, password)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "admin %s <%s> (id %d, %s) is ready; API key:\n%s\n", u.Username, u.Email, u.ID, u.PublicID, key)
				return a.noteOtherKeys(ctx, acc, u.Username)
			})
		},
	}
	create.Flags().StringVar(&username, "username", "", "username of the admin (required)")
	create.Flags().StringVar(&email, "email", "", "e-mail of the admin (required to create a new user)")
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the admin's password from standard input")
	_ = create.MarkFlagRequired("username")

	var revokeUser string
	revoke := &cobra.Command{
		Use:   "revoke-tokens",
		Short: "Invalidate every JWT issued to a user so far",
		Long: `Invalidate every JWT issued to the user so far (a stolen or leaked token, a
departing admin); their next login gets one that works. API keys are not
touched: revoke those with apikeys revoke. Setting a new password with
create-admin --password-stdin revokes the user's tokens too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAccounts(cmd, func(ctx context.Context, acc *accounts.Service) error {
				u, err := acc.RevokeTokens(ctx, revokeUser)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "every token issued to %s (id %d) so far is revoked\n", u.Username, u.ID)
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&revokeUser, "username", "", "whose tokens to revoke (required)")
	_ = revoke.MarkFlagRequired("username")
	cmd.AddCommand(create, revoke)
	return cmd
}

// noteOtherKeys says on standard error, leaving the key the last line of
// standard output, when create-admin added a key beside others that still
// work: running it again is how a lost key is replaced, and the old one
// should then be revoked.
func (a *app) noteOtherKeys(ctx context.Context, acc *accounts.Service, username string) error {
	keys, err := acc.ListAPIKeys(ctx, username)
	if err != nil || len(keys) < 2 {
		return err
	}
	fmt.Fprintf(a.env.Stderr, "note: %s now has %d API keys and the earlier ones still work; "+
		"trialsd apikeys list --username %s shows them, apikeys revoke --username %s ID revokes one\n",
		username, len(keys), username, username)
	return nil
}

func (a *app) apikeysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "apikeys", Short: "Manage any user's API keys"}
	var username, name string
	usernameFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&username, "username", "", "owner of the keys (required)")
		_ = c.MarkFlagRequired("username")
	}

	create := &cobra.Command{
		Use:   "create",
		Short: "Issue a new API key and print it (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAccounts(cmd, func(ctx context.Context, acc *accounts.Service) error {
				key, err := acc.CreateAPIKey(ctx, username, name)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.env.Stdout, key)
				return nil
			})
		},
	}
	usernameFlag(create)
	create.Flags().StringVar(&name, "name", "", "a label to recognise the key by")

	list := &cobra.Command{
		Use:   "list",
		Short: "List a user's API keys (prefixes only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAccounts(cmd, func(ctx context.Context, acc *accounts.Service) error {
				keys, err := acc.ListAPIKeys(ctx, username)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tPREFIX\tNAME\tCREATED\tREVOKED")
				for _, k := range keys {
					revoked := "-"
					if k.RevokedAt != nil {
						revoked = k.RevokedAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%d\t%s…\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Name, k.CreatedAt.UTC().Format(time.RFC3339), revoked)
				}
				return tw.Flush()
			})
		},
	}
	usernameFlag(list)

	revoke := &cobra.Command{
		Use:   "revoke ID|PREFIX",
		Short: "Revoke one of a user's API keys, by id or prefix as listed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAccounts(cmd, func(ctx context.Context, acc *accounts.Service) error {
				if err := acc.RevokeAPIKey(ctx, username, strings.TrimSuffix(args[0], "…")); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "revoked %s\n", args[0])
				return nil
			})
		},
	}
	usernameFlag(revoke)
	cmd.AddCommand(create, list, revoke)
	return cmd
}
