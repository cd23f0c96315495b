package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/documents"
)

func newDocumentsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "documents",
		Short: "Passport's own SSM Command documents, which carry its host programs",
		Long: `Passport runs its host programs (provision, extend, revoke, check,
inventory, sweep; POSIX sh for Linux, PowerShell for Windows) as its own
SSM Command documents, one per program and platform:

  ` + documentList() + `

Each holds the program exactly as this release ships it; a request's data
is the document's "data" parameter, whose allowedPattern admits base64
only. Every command names the document's version and SHA-256, so SSM
refuses a document changed after it was published. The role that sends
them needs ssm:SendCommand on these documents only, never on
AWS-RunShellScript, which would run anything as root.`,
	}
	cmd.AddCommand(newDocumentsPublishCommand(), newDocumentsCheckCommand())
	return cmd
}

func documentList() string {
	s := ""
	for i, name := range documents.Names() {
		switch {
		case i == 0:
		case i%3 == 0:
			s += ",\n  "
		default:
			s += ", "
		}
		s += name
	}
	return s
}

// awsFlags are the AWS settings of commands that call SSM only.
type awsFlags struct {
	region, profile, endpoint string
}

func (f *awsFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "AWS profile (default: AWS_PROFILE)")
	cmd.Flags().StringVar(&f.endpoint, "endpoint-ssm", "", "Systems Manager endpoint URL (default: AWS_ENDPOINT_URL_SSM, then AWS)")
}

func (f *awsFlags) load(ctx context.Context) (*awsconfig.Clients, error) {
	return awsconfig.Load(ctx, awsconfig.Settings{Region: f.region, Profile: f.profile, Endpoints: awsconfig.Endpoints{SSM: f.endpoint}})
}

func newDocumentsPublishCommand() *cobra.Command {
	var f awsFlags
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Create or update Passport's SSM documents with this release's programs",
		Long: `Publish makes SSM hold this release's programs as the default version
of each of Passport's documents: it creates the documents that are missing
and, where a program changed, adds a version and makes it the default.
Run again, it changes nothing. Earlier versions stay, so a service replica
still running the previous release keeps sending the version it knows
until it is upgraded.

Who needs which permission:
  - whoever publishes (the Passport service role, which publishes at start,
    or a deploy pipeline): ssm:DescribeDocument, ssm:GetDocument,
    ssm:CreateDocument, ssm:UpdateDocument and
    ssm:UpdateDocumentDefaultVersion on each document above
    (arn:aws:ssm:<region>:<account>:document/<name>);
  - the Passport service: ssm:SendCommand on these documents and on the
    target instances, ssm:DescribeDocument and ssm:GetDocument on them;
  - requesters: nothing. examples/iam/passport-service.json and
    examples/iam/passport-requester.json are the policies.`,
		Args: cobra.NoArgs,
		RunE: f.runDocuments(documents.Publish),
	}
	f.register(cmd)
	return cmd
}

func newDocumentsCheckCommand() *cobra.Command {
	var f awsFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that SSM holds this release's programs, changing nothing",
		Long: `Check reads Passport's documents and fails, naming the document, when
one is missing or its default version is not this release's program.
It needs ssm:DescribeDocument and ssm:GetDocument on the documents.`,
		Args: cobra.NoArgs,
		RunE: f.runDocuments(documents.Lookup),
	}
	f.register(cmd)
	return cmd
}

// runDocuments runs publish or lookup with the flags' SSM client and
// prints what SSM holds.
func (f *awsFlags) runDocuments(run func(context.Context, documents.Client) (*documents.Set, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
		defer cancel()
		c, err := f.load(ctx)
		if err != nil {
			return err
		}
		set, err := run(ctx, c.SSM)
		if err != nil {
			return err
		}
		printDocuments(cmd, set)
		return nil
	}
}

func printDocuments(cmd *cobra.Command, set *documents.Set) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%-28s %-8s %-10s %s\n", "DOCUMENT", "VERSION", "CHANGE", "SHA-256")
	for _, d := range set.Documents() {
		fmt.Fprintf(w, "%-28s %-8s %-10s %s\n", d.Name, d.Version, d.Change, d.Hash)
	}
}
