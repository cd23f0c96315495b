package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

func newApproveCommand() *cobra.Command {
	var srv serverFlags
	var comment string
	cmd := &cobra.Command{
		Use:   "approve ID [--comment TEXT]",
		Short: "Approve someone's access request that waits for approval",
		Long: `approve gives your approval to an access request that policy grants only
once enough people approve (or to the longer window an active request
waits for). You must be someone policy lets approve it, and never its
requester; each approver counts once. The last required approval grants
the request at once: its window starts then, and its hosts are
provisioned in this call. The comment goes to the audit trail and the
notices.

Requests waiting for you: passport request list --all --state pending.
This talks to the Passport service (--server or PASSPORT_SERVER), as the
person passport login --server signed in.`,
		Example: `  passport approve ar-0123456789abcdef --comment "INC-4242 is real"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return decide(cmd, &srv, "approve", args[0], nil, func(ctx context.Context, c *client.Client, id string) error {
				r, err := c.Approve(ctx, id, comment)
				if err == nil {
					printDecided(cmd.OutOrStdout(), "Approved", r)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why you approve, for the requester and the audit trail")
	srv.register(cmd)
	return cmd
}

func newDenyCommand() *cobra.Command {
	var srv serverFlags
	var comment string
	cmd := &cobra.Command{
		Use:   "deny ID --comment TEXT",
		Short: "Deny someone's access request that waits for approval",
		Long: `deny ends an access request that waits for approval: one denial ends it,
and nothing was ever done on its hosts. For an active request whose
longer window waits, only that longer window is dropped; the current one
stands. You must be someone policy lets approve it. The comment, which
says why, is required: the requester reads it, and so does the audit
trail.`,
		Example: `  passport deny ar-0123456789abcdef --comment "no change ticket for the primary"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			need := func(id string) error {
				if strings.TrimSpace(comment) == "" {
					return fmt.Errorf("--comment is required: say why you deny %s, for its requester and the audit trail", id)
				}
				return nil
			}
			return decide(cmd, &srv, "deny", args[0], need, func(ctx context.Context, c *client.Client, id string) error {
				r, err := c.Deny(ctx, id, comment)
				if err == nil {
					printDecided(cmd.OutOrStdout(), "Denied", r)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why you deny it, for the requester and the audit trail (required)")
	srv.register(cmd)
	return cmd
}

// decide runs one approver's decision on request arg through the service:
// the checks approve, deny and review share (the id, what need asks of
// the flags, a server, a sign-in), then call, whose refusal is said as
// the service says it.
func decide(cmd *cobra.Command, srv *serverFlags, verb, arg string, need func(id string) error, call func(context.Context, *client.Client, string) error) error {
	id, err := requestID(arg)
	if err != nil {
		return err
	}
	if need != nil {
		if err := need(id); err != nil {
			return err
		}
	}
	if !srv.on() {
		return errNoServer(verb)
	}
	c, err := srv.signedIn(cmd.Context(), nil)
	if err != nil {
		return err
	}
	if err := call(cmd.Context(), c, id); err != nil {
		return serviceError(srv.server(), err)
	}
	return nil
}

func errNoServer(verb string) error {
	return fmt.Errorf("%s talks to the Passport service: give --server https://passport.example.com (or set PASSPORT_SERVER); only the service holds requests for approval", verb)
}

// printDecided says what an approval or a denial made of request r.
func printDecided(w io.Writer, verb string, r api.Request) {
	switch {
	case r.State == "pending" && r.Approval != nil:
		fmt.Fprintf(w, "%s access request %s of %s: %d of %d approvals; it waits for %s until %s.\n", verb, r.ID, r.Requester,
			len(r.Approval.Given), r.Approval.Required, approvers(r.Approval), r.Approval.Deadline.UTC().Format(time.RFC3339))
	case r.State == "active" && r.Extension != nil:
		fmt.Fprintf(w, "%s the longer window of access request %s of %s: %d of %d approvals; it waits for %s until %s.\n", verb, r.ID, r.Requester,
			len(r.Extension.Approval.Given), r.Extension.Approval.Required, approvers(&r.Extension.Approval), r.Extension.Approval.Deadline.UTC().Format(time.RFC3339))
	case r.State == "active":
		fmt.Fprintf(w, "%s access request %s: granted to %s as %s until %s.\n", verb, r.ID, r.Requester, r.Username, r.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "%s access request %s of %s: it is %s.\n", verb, r.ID, r.Requester, r.State)
	}
}

// approvers names who may still approve.
func approvers(a *api.Approval) string {
	need := a.Required - len(a.Given)
	who := "approvers no policy names"
	if len(a.Approvers) > 0 {
		who = strings.Join(a.Approvers, " or ")
	}
	return fmt.Sprintf("%d more from %s", need, who)
}

func newReviewCommand() *cobra.Command {
	var srv serverFlags
	var comment string
	cmd := &cobra.Command{
		Use:   "review ID --comment TEXT",
		Short: "Review someone's break-glass access afterwards",
		Long: `review records that you looked at break-glass access (given at once,
without approval, because its requester broke the glass) and says what
you found. Someone other than the requester, whom policy lets approve the
request, must review it within the service's --review-within (24 hours by
default); until then it is listed by passport request list --unreviewed,
counted in the passport_unreviewed_break_glass_grants metric, and, once
overdue, announced again every day. A request may be reviewed during its
window or after it ended. The comment is required.`,
		Example: `  passport review ar-0123456789abcdef --comment "INC-4242: the primary was down, access was needed"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			need := func(id string) error {
				if strings.TrimSpace(comment) == "" {
					return fmt.Errorf("--comment is required: say what you found about %s, for the audit trail", id)
				}
				return nil
			}
			return decide(cmd, &srv, "review", args[0], need, func(ctx context.Context, c *client.Client, id string) error {
				r, err := c.Review(ctx, id, comment)
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "Reviewed break-glass access request %s of %s (%s).\n", r.ID, r.Requester, r.State)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "what you found, for the audit trail (required)")
	srv.register(cmd)
	return cmd
}
