package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

func newRequestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "request",
		Short: "Keep the access requests you hold, for ssh, tunnel, rdp and ssh-config",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRequestImportCommand(), newRequestListCommand())
	return cmd
}

func newRequestImportCommand() *cobra.Command {
	var f connectFlags
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
			names(cmd, &f, imported)
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

// names fills in the targets' computer names from Systems Manager. They
// are a convenience, so failing to get them is a warning.
func names(cmd *cobra.Command, f *connectFlags, imported []connect.Imported) {
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
	found, err := computerNames(ctx, f, ids)
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

func computerNames(ctx context.Context, f *connectFlags, ids []string) (map[string]string, error) {
	c, err := awsconfig.Load(ctx, awsconfig.Settings{Region: f.region, Profile: f.profile})
	if err != nil {
		return nil, err
	}
	found := map[string]string{}
	for start := 0; start < len(ids); start += 50 {
		batch := ids[start:min(start+50, len(ids))]
		p := ssm.NewDescribeInstanceInformationPaginator(c.SSM, &ssm.DescribeInstanceInformationInput{
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
	return &cobra.Command{
		Use:   "list",
		Short: "List the access requests you hold",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := requestStore()
			if err != nil {
				return err
			}
			all, err := store.List()
			if err != nil {
				return err
			}
			now := time.Now()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-20s %-20s %-8s %-21s %s\n", "REQUEST", "USER", "STATE", "EXPIRES", "TARGETS")
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
				fmt.Fprintf(w, "%-20s %-20s %-8s %-21s %v\n", r.ID, r.Username, state, r.ExpiresAt.UTC().Format(time.RFC3339), ts)
			}
			return nil
		},
	}
}
