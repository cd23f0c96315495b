package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check Cedar access policy offline: validate it, and test it against cases",
		Long: `policy checks the administrators' Cedar policy before it is published,
offline, as a CI job would: validate parses it against Passport's schema,
test decides a file of cases with it. Neither needs AWS or a service.
See docs/guides/policy.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newPolicyValidateCommand(), newPolicyTestCommand(), newPolicySchemaCommand())
	return cmd
}

// readPolicy parses the policy file at path as the service would load it.
func readPolicy(path string) (*policy.Policy, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	doc, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("reading the policy: %w", err)
	}
	p, err := policy.Parse("file://"+abs, doc)
	if err != nil {
		return nil, err
	}
	if p.Len() == 0 {
		return nil, fmt.Errorf("%s: %s; published, it would deny every request", path, p.Missing())
	}
	return p, nil
}

func newPolicyValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Parse a policy and check it against Passport's schema",
		Long: `validate reads a Cedar policy file and checks it the way the Passport
service does when it loads policy: it must parse, every policy must fit
Passport's schema (passport policy schema prints it), @id values must be
unique, and @approvals must be a count from 1 to 5 on a permit of
Passport::Action::"access". It exits non-zero, naming the line, when any
check fails, and with an empty file, which would deny everything.`,
		Example: "  passport policy validate policy.cedar",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := readPolicy(args[0])
			if err != nil {
				return err
			}
			s := p.Summary()
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d policies fit Passport's schema (%d permit, %d forbid; %d grant only with approval)\n",
				args[0], p.Len(), s.Permits, s.Forbids, s.WithApprovals)
			return nil
		},
	}
}

func newPolicyTestCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "test FILE CASES",
		Short: "Decide a file of test cases with a policy; fail on any mismatch",
		Long: `test validates the policy in FILE, then decides every case in CASES (a
JSON file: instances, defaults, and cases, each a request with the
decision it must get: grant, approval with how many approvals and from
whom, or deny; allow or deny for the view, end and approve actions). It
prints one line per case and, for a case that got something else, why
policy decided so on each target, and exits non-zero on any mismatch.
The format is in docs/guides/policy.md.`,
		Example: "  passport policy test policy.cedar policy-cases.json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := readPolicy(args[0])
			if err != nil {
				return err
			}
			f, err := os.Open(args[1])
			if err != nil {
				return fmt.Errorf("reading the cases: %w", err)
			}
			defer f.Close()
			cs, err := policy.ParseCases(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[1], err)
			}
			if failed := policy.Report(cmd.OutOrStdout(), p.Run(cs)); failed > 0 {
				return fmt.Errorf("%d of %d cases got another decision than they expect", failed, len(cs.Cases))
			}
			return nil
		},
	}
}

func newPolicySchemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print Passport's Cedar schema, for Cedar's own tools",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), strings.TrimLeft(policy.Schema, "\n"))
			return err
		},
	}
}
