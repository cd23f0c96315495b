package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

func newLedgerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Set up the ledger that records grants and the audit trail",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newLedgerInitCommand())
	return cmd
}

func newLedgerInitCommand() *cobra.Command {
	var f ledgerFlags
	cmd := &cobra.Command{
		Use:   "init <ledger URL>",
		Short: "Create a ledger's DynamoDB table (or sqlite file), ready for Passport",
		Long: `init makes the ledger a URL names ready, and may be run again:

  dynamodb://TABLE   creates the table, its key (pk, sk) and its indexes (due,
                     state, outbox, recording_instance, recording_request)
                     when they are missing, on demand billing; adds the
                     indexes a table made by an older Passport lacks, first
                     giving its recordings the attributes they key on;
                     checks that an existing table is a ledger's; turns on
                     time to live on the "ttl" attribute where the server
                     supports it
  sqlite:///PATH     creates the file and its schema, readable only by you

The identity needs dynamodb:CreateTable, DescribeTable, Query,
DescribeTimeToLive and UpdateTimeToLive on the table, and UpdateTable and
UpdateItem on a table an older Passport made. The reconciler guide gives the
schema.`,
		Example: "  passport ledger init dynamodb://passport-ledger --region eu-west-1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := args[0]
			ctx := cmd.Context()
			var o ledger.Options
			if strings.HasPrefix(url, "dynamodb://") {
				c, err := awsconfig.Load(ctx, awsconfig.Settings{Region: f.region, Profile: f.profile, Endpoints: f.endpoints})
				if err != nil {
					return err
				}
				o.DynamoDB.Client = c.DynamoDB
			}
			res, err := ledger.Init(ctx, url, o)
			if err != nil {
				return err
			}
			what := "was already there"
			if res.Created {
				what = "created"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", url, what)
			if res.Backfilled > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "recordings indexed by host for the first time: %d\n", res.Backfilled)
			}
			if res.TTL != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "time to live on %q: %s\n", ledger.TTLAttribute, res.TTL)
			}
			return nil
		},
	}
	f.registerAWS(cmd)
	return cmd
}
