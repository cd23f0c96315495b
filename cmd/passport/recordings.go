package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// recordingFlags say where session recordings are kept.
type recordingFlags struct {
	bucket    string
	retention time.Duration
}

func (f *recordingFlags) register(cmd *cobra.Command, withRetention bool) {
	cmd.Flags().StringVar(&f.bucket, "recordings-bucket", os.Getenv("PASSPORT_RECORDINGS_BUCKET"),
		"the S3 bucket session recordings are collected into (env PASSPORT_RECORDINGS_BUCKET; the lab's is passport-recordings); empty collects nothing")
	if withRetention {
		cmd.Flags().DurationVar(&f.retention, "recording-retention", access.DefaultRetention,
			"how long recordings and their index are kept after collection; the bucket's lifecycle rule is set to the same")
	}
}

// store opens the bucket with the command's AWS configuration; nil
// without --recordings-bucket.
func (f *recordingFlags) store(clients *awsconfig.Clients) (*collect.Store, error) {
	if f.bucket == "" {
		return nil, nil
	}
	if clients == nil {
		return nil, fmt.Errorf("--recordings-bucket %s needs AWS: set a region (--region or AWS_REGION)", f.bucket)
	}
	return collect.NewStore(clients.Config, f.bucket)
}

// recordings is the access configuration for collection, with the
// bucket's lifecycle set to the retention: nil without a bucket.
func (f *recordingFlags) recordings(ctx context.Context, clients *awsconfig.Clients) (*access.Recordings, error) {
	st, err := f.store(clients)
	if err != nil || st == nil {
		return nil, err
	}
	if err := st.ApplyRetention(ctx, f.retention); err != nil {
		return nil, fmt.Errorf("--recordings-bucket %s: %w (the role needs s3:PutLifecycleConfiguration on it)", f.bucket, err)
	}
	return &access.Recordings{Store: st, Retention: f.retention}, nil
}

// verifyRecordings checks every indexed recording against the bucket and
// the trail, printing each that does not match.
func verifyRecordings(ctx context.Context, w io.Writer, l *ledger.Ledger, st *collect.Store) error {
	n, problems, err := collect.Verify(ctx, l, st)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(w, "recording", p.String())
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d of %d recordings in s3://%s do not match what was recorded when they were collected", len(problems), n, st.Bucket)
	}
	fmt.Fprintf(w, "recordings intact: %d in s3://%s match their index and the audit trail\n", n, st.Bucket)
	return nil
}

// newSessionsDeleteCommand deletes one recording before its retention
// ends: through the service, which asks policy, or directly with the
// caller's AWS access to the ledger and bucket.
func newSessionsDeleteCommand() *cobra.Command {
	var (
		srv    serverFlags
		f      ledgerFlags
		rf     recordingFlags
		reason string
	)
	cmd := &cobra.Command{
		Use:   "delete REQUEST/INSTANCE/SESSION --reason TEXT",
		Short: "Delete one collected recording before its retention ends; an audit event names you and the reason",
		Long: `Deletes the recording's object from the bucket and its entry from the
ledger's index, and appends a recording-deleted event naming you and the
reason: deleting evidence early is as visible in the audit trail as
anything Passport does. Recordings are otherwise deleted when their
retention ends.

Through the Passport service (--server or PASSPORT_SERVER) policy decides
(the delete-recording action, for the recording's target; the requester
gets no say over their own recording) and the event names the person
signed in. Directly it needs your own access to the ledger and the
bucket (--ledger, --recordings-bucket), and the event names your AWS
identity.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts := strings.Split(args[0], "/")
			if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
				return fmt.Errorf("%q is not REQUEST/INSTANCE/SESSION, as passport sessions list prints it", args[0])
			}
			if strings.TrimSpace(reason) == "" {
				return errors.New("--reason is required: it goes into the audit trail")
			}
			ctx := cmd.Context()
			viaServer, err := deleteThroughServer(cmd, &srv, &rf)
			if err != nil {
				return err
			}
			if viaServer {
				c, err := srv.signedIn(ctx, nil)
				if err != nil {
					return err
				}
				if err := c.DeleteRecording(ctx, args[0], reason); err != nil {
					return fmt.Errorf("deleting %s through the Passport service at %s: %w", args[0], srv.server(), err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s; the audit trail records it as deleted by you, with your reason\n", args[0])
				return nil
			}
			l, clients, err := f.open(ctx, nil, true)
			if err != nil {
				return err
			}
			defer l.Close()
			st, err := rf.store(clients)
			if err != nil {
				return err
			}
			who, err := awsidentity.Caller(ctx, clients.STS)
			if err != nil {
				return err
			}
			svc, err := access.New(access.Config{Fleet: fleet.New(clients.SSM, fleet.Options{}), Ledger: l, Recordings: &access.Recordings{Store: st}})
			if err != nil {
				return err
			}
			if err := svc.DeleteRecording(ctx, who, parts[0], parts[1], parts[2], reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s; the audit trail records it as deleted by %s\n", args[0], who)
			return nil
		},
	}
	srv.register(cmd)
	f.register(cmd)
	rf.register(cmd, false)
	cmd.Flags().StringVar(&reason, "reason", "", "why it is deleted before its retention ends (required; recorded in the audit trail)")
	return cmd
}

// deleteThroughServer says whether a delete goes through the service or
// directly to the bucket: the one given, and where both are (one from the
// environment), the one the command line named.
func deleteThroughServer(cmd *cobra.Command, srv *serverFlags, rf *recordingFlags) (bool, error) {
	server, bucket := srv.on(), rf.bucket != ""
	if server && bucket {
		named := map[bool]bool{true: cmd.Flags().Changed("server"), false: cmd.Flags().Changed("recordings-bucket")}
		if named[true] == named[false] {
			return false, errors.New("give one of --server (through the Passport service) and --recordings-bucket (directly, with --ledger)")
		}
		return named[true], nil
	}
	if !server && !bucket {
		return false, errors.New("give --server (or PASSPORT_SERVER) to delete through the Passport service, or --recordings-bucket (or PASSPORT_RECORDINGS_BUCKET) with --ledger to delete directly")
	}
	return server, nil
}
