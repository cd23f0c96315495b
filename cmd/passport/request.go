package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

func newRequestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "request",
		Short: "Ask for, extend, end and list access requests, and keep them for ssh, tunnel, rdp and ssh-config",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRequestCreateCommand(), newRequestExtendCommand(), newRequestEndCommand(), newRequestImportCommand(), newRequestListCommand(), newRequestGetCommand())
	return cmd
}

func newRequestImportCommand() *cobra.Command {
	var f connectFlags
	var srv serverFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "import [file|-]",
		Short: "Import the access requests of a Terraform configuration",
		Long: `import reads every passport_access_request of a Terraform state, from
'terraform show -json' run in the current directory (or --dir), or from a
file or stdin holding its output, and keeps each request's user, expiry,
active targets, certificate and generated private key (mode 0600) for the
connect commands. Importing a request again replaces it (after an
extension, for instance). The targets' computer names are looked up in
Systems Manager when AWS is reachable, to serve as ssh aliases.

When the provider made the requests through a Passport service, give the
same --server (or PASSPORT_SERVER): the connect commands then open their
sessions through that service, with your sign-in.

` + requestsHelp,
		Example: "  terraform apply && passport request import\n  terraform show -json | passport request import -",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			state, err := readState(cmd, args, dir)
			if err != nil {
				return err
			}
			imported, err := connect.ParseTerraformShow(bytes.NewReader(state))
			if err != nil {
				return err
			}
			if len(imported) == 0 {
				return errors.New("the Terraform state holds no created passport_access_request: run terraform apply first")
			}
			store, err := requestStore()
			if err != nil {
				return err
			}
			lookup := func(ctx context.Context, ids []string) (map[string]string, error) { return computerNames(ctx, &f, ids) }
			if srv.on() {
				ca, err := absPath(srv.ca)
				if err != nil {
					return fmt.Errorf("--server-ca: %w", err)
				}
				for i := range imported {
					imported[i].Request.Server, imported[i].Request.ServerCA = srv.server(), ca
				}
				lookup = func(ctx context.Context, ids []string) (map[string]string, error) {
					return serviceNames(ctx, &srv, &awsconfig.Settings{Region: f.region, Profile: f.profile}, ids)
				}
			}
			names(cmd, lookup, imported)
			now := time.Now()
			for _, imp := range imported {
				if err := store.Save(imp.Request, imp.Credential); err != nil {
					return err
				}
				r := imp.Request
				state := "expires " + r.ExpiresAt.UTC().Format(time.RFC3339)
				if !now.Before(r.ExpiresAt) {
					state = "expired " + r.ExpiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s  %d targets  %s\n", r.ID, r.Username, len(r.Targets), state)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "the Terraform working directory to run terraform show -json in")
	f.register(cmd)
	srv.register(cmd)
	return cmd
}

func readState(cmd *cobra.Command, args []string, dir string) ([]byte, error) {
	switch {
	case len(args) == 1 && args[0] == "-":
		return io.ReadAll(cmd.InOrStdin())
	case len(args) == 1:
		return os.ReadFile(args[0])
	}
	tf := exec.CommandContext(cmd.Context(), "terraform", "show", "-json")
	tf.Dir = dir
	var stderr bytes.Buffer
	tf.Stderr = &stderr
	out, err := tf.Output()
	if err != nil {
		return nil, fmt.Errorf("terraform show -json in %s: %v: %s", dir, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// names fills in the targets' computer names with lookup. They are a
// convenience, so failing to get them is a warning.
func names(cmd *cobra.Command, lookup func(context.Context, []string) (map[string]string, error), imported []connect.Imported) {
	var ids []string
	for _, imp := range imported {
		for _, t := range imp.Request.Targets {
			ids = append(ids, t.InstanceID)
		}
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 20*time.Second)
	defer cancel()
	found, err := lookup(ctx, ids)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "passport: warning: targets keep their instance ids only; their names could not be looked up: %v\n", err)
		return
	}
	for i := range imported {
		ts := imported[i].Request.Targets
		for j := range ts {
			ts[j].Name = found[ts[j].InstanceID]
		}
	}
}

// serviceNames asks the Passport service for the instances' names, signed
// in as the person, or as the machine aws names.
func serviceNames(ctx context.Context, srv *serverFlags, aws *awsconfig.Settings, ids []string) (map[string]string, error) {
	c, err := srv.signedIn(ctx, aws)
	if err != nil {
		return nil, err
	}
	all, err := c.Targets(ctx, client.TargetFilter{})
	if err != nil {
		return nil, serviceError(srv.server(), err)
	}
	found := map[string]string{}
	for _, in := range all {
		if in.ComputerName != "" && slices.Contains(ids, in.InstanceID) {
			found[in.InstanceID] = in.ComputerName
		}
	}
	return found, nil
}

// computerNames asks Systems Manager for the instances' names with the
// person's own AWS credentials.
func computerNames(ctx context.Context, f *connectFlags, ids []string) (map[string]string, error) {
	c, err := awsconfig.Load(ctx, awsconfig.Settings{Region: f.region, Profile: f.profile})
	if err != nil {
		return nil, err
	}
	return instanceNames(ctx, c.SSM, ids)
}

// instanceNames asks Systems Manager for the computer names of ids, 50 at
// a time.
func instanceNames(ctx context.Context, c *ssm.Client, ids []string) (map[string]string, error) {
	found := map[string]string{}
	for start := 0; start < len(ids); start += 50 {
		batch := ids[start:min(start+50, len(ids))]
		p := ssm.NewDescribeInstanceInformationPaginator(c, &ssm.DescribeInstanceInformationInput{
			Filters: []types.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: batch}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, info := range page.InstanceInformationList {
				if name := aws.ToString(info.ComputerName); name != "" {
					found[aws.ToString(info.InstanceId)] = name
				}
			}
		}
	}
	return found, nil
}

func newRequestListCommand() *cobra.Command {
	var (
		f          brokerFlags
		all        bool
		state      string
		unreviewed bool
	)
	cmd := &cobra.Command{
		Use:   "list [--all] [--state S] [--unreviewed]",
		Short: "List the access requests you hold, or the service's",
		Long: `list shows the access requests held here for the connect commands, live
or expired.

With --server (or PASSPORT_SERVER) it asks the Passport service instead:
your open requests, or with --all every request policy lets you see, or
with --state those in one state (open, pending, provisioning, active,
revoking, revoked, expired, failed or denied), or with --unreviewed the
break-glass requests that owe a review, whatever their state. HELD says
whether this machine holds the request's key and certificate. Without a
server, --all and --state read the direct-mode ledger (--ledger,
PASSPORT_LEDGER) with your AWS credentials.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := requestStore()
			if err != nil {
				return err
			}
			held, err := store.List()
			if err != nil {
				return err
			}
			if unreviewed {
				if !f.srv.on() {
					return errNoServer("request list --unreviewed")
				}
				b, err := f.open(cmd.Context())
				if err != nil {
					return err
				}
				reqs, err := b.(*serviceBroker).c.List(cmd.Context(), client.ListOptions{All: true, Unreviewed: true})
				if err != nil {
					return serviceError(f.srv.server(), err)
				}
				printUnreviewed(cmd.OutOrStdout(), reqs, time.Now())
				return nil
			}
			if !f.srv.on() && !all && state == "" {
				printHeld(cmd.OutOrStdout(), held, time.Now())
				return nil
			}
			if _, err := listStates(state); err != nil {
				return err
			}
			b, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer b.close()
			reqs, err := b.list(cmd.Context(), all, state)
			if err != nil {
				return brokerError(b, err)
			}
			printListed(cmd.OutOrStdout(), reqs, held)
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every request you may see, not only yours")
	cmd.Flags().StringVar(&state, "state", "", "only requests in this state: open (the default), pending, provisioning, active, revoking, revoked, expired, failed or denied")
	cmd.Flags().BoolVar(&unreviewed, "unreviewed", false, "the break-glass requests that owe a review (the service only)")
	f.register(cmd)
	return cmd
}

// printHeld lists the requests held here.
func printHeld(w io.Writer, all []connect.Request, now time.Time) {
	fmt.Fprintf(w, "%-20s %-20s %-8s %-21s %-7s %s\n", "REQUEST", "USER", "STATE", "EXPIRES", "LEFT", "TARGETS")
	for _, r := range all {
		state := "live"
		if !now.Before(r.ExpiresAt) {
			state = "expired"
		}
		var ts []string
		for _, t := range r.Targets {
			if t.Name != "" {
				ts = append(ts, t.InstanceID+" ("+t.Name+")")
			} else {
				ts = append(ts, t.InstanceID)
			}
		}
		fmt.Fprintf(w, "%-20s %-20s %-8s %-21s %-7s %v\n", r.ID, r.Username, state, r.ExpiresAt.UTC().Format(time.RFC3339), timeLeft("", r.ExpiresAt, now), ts)
	}
}

// printUnreviewed lists break-glass requests that owe a review, the
// overdue first.
func printUnreviewed(w io.Writer, reqs []api.Request, now time.Time) {
	slices.SortFunc(reqs, func(a, b api.Request) int { return a.Review.Due.Compare(b.Review.Due) })
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST	REQUESTER	STATE	REVIEW DUE	REASON")
	for _, r := range reqs {
		due := r.Review.Due.UTC().Format(time.RFC3339)
		if !now.Before(r.Review.Due) {
			due += " (overdue)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Requester, r.State, due, r.Reason)
	}
	tw.Flush()
	if len(reqs) == 0 {
		fmt.Fprintln(w, "No break-glass request owes a review.")
	}
}

// printListed lists requests a broker returned, marking those held here.
func printListed(w io.Writer, reqs []api.Request, held []connect.Request) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tREQUESTER\tUSER\tSTATE\tEXPIRES\tLEFT\tHELD\tTARGETS")
	now := time.Now()
	for _, r := range reqs {
		h := "no"
		if slices.ContainsFunc(held, func(c connect.Request) bool { return c.ID == r.ID }) {
			h = "yes"
		}
		var ts []string
		for _, t := range r.Targets {
			ts = append(ts, t.InstanceID+"="+t.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Requester, cmp.Or(r.Username, "-"), r.State, r.ExpiresAt.UTC().Format(time.RFC3339), timeLeft(r.State, r.ExpiresAt, now), h, strings.Join(ts, " "))
	}
	tw.Flush()
}
