package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/collect"
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
