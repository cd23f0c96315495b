package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/server"
	"github.com/passport-access/terraform-provider-passport/internal/service"
)

func newServeCommand() *cobra.Command {
	var (
		st              service.Settings
		listen          string
		tlsCert, tlsKey string
		logLevel        string
		metricsListen   string
		notifyConfig    notifyFlag
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Passport service: the one place that may touch servers, sign and record",
		Long: `serve runs the Passport service. It holds the power to grant access: its
own AWS identity sends Passport's SSM documents to servers, signs
certificates with its KMS certificate authorities and writes the ledger.
People sign in with SAML (passport login --server URL), machines with
their AWS identity, and the Terraform provider (server = URL) and the CLI
call its API. Requesters need no AWS permission on the access path.

The reconciler runs inside it: expired grants end, hosts that did not
answer are retried, live grants are checked against policy again.
Several replicas may share one DynamoDB ledger behind a load balancer.

Listening anywhere but loopback needs TLS (--tls-cert, --tls-key). See
docs/guides/service.md.`,
		Example: `  passport serve --url https://passport.example.com --listen :443 \
    --tls-cert cert.pem --tls-key key.pem \
    --ledger dynamodb://passport-ledger --ca prod=kms:alias/passport-ca \
    --saml-metadata https://idp.example.com/metadata`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: give debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			st.Version, st.Log = version, log
			var err error
			if st.Notify, err = notifyConfig.load(); err != nil {
				return err
			}
			ctx := cmd.Context()
			svc, err := service.New(ctx, st)
			if err != nil {
				return err
			}
			defer svc.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			tlsOn := tlsCert != ""
			if tlsOn {
				pair, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
				if err != nil {
					ln.Close()
					return fmt.Errorf("--tls-cert/--tls-key: %w", err)
				}
				ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "passport service %s serving %s on %s\n", svc.Name, st.URL, ln.Addr())
			if metricsListen == "" {
				return svc.Run(ctx, ln, tlsOn)
			}
			mln, err := net.Listen("tcp", metricsListen)
			if err != nil {
				ln.Close()
				return fmt.Errorf("--metrics-listen %s: %w", metricsListen, err)
			}
			ctx, stop := context.WithCancel(ctx)
			defer stop()
			served := make(chan error, 1)
			go func() { served <- server.RunHTTP(ctx, mln, &http.Server{Handler: svc.MetricsHandler()}) }()
			err = svc.Run(ctx, ln, tlsOn)
			stop()
			if merr := <-served; merr != nil && !errors.Is(merr, http.ErrServerClosed) {
				err = errors.Join(err, fmt.Errorf("serving /metrics on %s: %w", metricsListen, merr))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&st.URL, "url", "", "the URL callers reach the service at, https://passport.example.com (required)")
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address to listen on; anything but loopback needs --tls-cert and --tls-key")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate chain for TLS")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key for TLS")
	f.StringVar(&st.Ledger, "ledger", os.Getenv("PASSPORT_LEDGER"), "the ledger: sqlite:///var/lib/passport/ledger.db for one replica, dynamodb://TABLE for several (env PASSPORT_LEDGER)")
	f.BoolVar(&st.CreateTable, "create-table", false, "create the DynamoDB ledger table when it is missing")
	f.StringArrayVar(&st.CAs, "ca", nil, "a certificate authority, name=kms:<key ARN, id or alias> (repeatable; the first is the default)")
	f.StringVar(&st.DefaultCA, "default-ca", "", "the CA a request that names none gets (default: the first --ca)")
	f.StringVar(&st.PolicySource, "policy", "", "the administrators' Cedar policy: ssm:///<parameter> or file:///<path> (default ssm:///passport/policy)")
	f.StringVar(&st.SAMLMetadata, "saml-metadata", os.Getenv("PASSPORT_SAML_METADATA"), "the IdP's SAML metadata, a file or an https URL; without it no person can sign in (env PASSPORT_SAML_METADATA)")
	f.StringVar(&st.SAMLEntityID, "saml-entity-id", "", "the service's entity ID at the IdP (default: <url>/saml/metadata)")
	f.StringVar(&st.GroupsAttribute, "groups-attribute", "", "the SAML attribute listing a person's groups (default groups)")
	f.BoolVar(&st.Machines, "machines", false, "let machines sign in with their AWS identity (a signed sts:GetCallerIdentity, checked with the service's own STS endpoint)")
	f.StringVar(&st.ServerID, "server-id", "", "the value machines bind into their signed sign-in (default: the --url)")
	f.StringVar(&st.Documents, "documents", "publish", "Passport's SSM documents: publish (create or update at start), lookup (published already), or off (AWS-RunShellScript; lets the role run anything)")
	f.StringVar(&st.UsernamePrefix, "username-prefix", "", "start of every short-lived user's name (default pp-)")
	f.IntVar(&st.RatePerMinute, "rate-limit", 0, "calls per minute each caller may make (default 240)")
	f.DurationVar(&st.ApprovalDeadline, "approval-deadline", 30*time.Minute, "how long a request that policy grants only with approval waits for it before it ends unapproved")
	f.DurationVar(&st.ReviewWithin, "review-within", 24*time.Hour, "how soon after a break-glass grant someone else must review it (passport review) before it is announced as overdue")
	notifyConfig.register(cmd, os.Getenv("PASSPORT_NOTIFY_CONFIG"), "a JSON file naming the webhooks and Slack channels that hear about requests (approval needed, granted, expiring soon, revoked, break-glass...); see docs/guides/notifications.md (env PASSPORT_NOTIFY_CONFIG)")
	f.StringVar(&metricsListen, "metrics-listen", "", "address to serve /metrics and /healthz on, e.g. 127.0.0.1:9810 (no sign-in: keep it private)")
	f.DurationVar(&st.Reconcile, "reconcile-interval", time.Minute, "time between reconciler passes")
	f.DurationVar(&st.StuckAfter, "stuck-after", 0, "how long a grant may stay provisioning or revoking before a reconciler takes it over (default 15m)")
	f.BoolVar(&st.Sweep, "sweep", true, "remove Passport users no open grant accounts for on online Linux and Windows nodes")
	f.StringVar(&st.RecordingsBucket, "recordings-bucket", os.Getenv("PASSPORT_RECORDINGS_BUCKET"), "the S3 bucket session recordings are collected into and read from (env PASSPORT_RECORDINGS_BUCKET; the lab's is passport-recordings); empty collects nothing")
	f.DurationVar(&st.RecordingRetention, "recording-retention", 0, "how long recordings and their index are kept after collection (default 8760h, a year); the bucket's lifecycle rule is set to the same")
	f.Var(recordingsDirFlag{&st.Recordings}, "recordings-dir", "read collected session recordings from this directory, laid out as the bucket's recordings/ prefix (request/instance/session/)")
	f.StringVar(&st.Name, "name", "", "this replica's name on leases and in the audit trail (default service/<hostname>-<pid>)")
	f.StringVar(&st.AWS.Region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	f.StringVar(&st.AWS.Profile, "profile", "", "AWS profile (default: AWS_PROFILE, or the instance or task role)")
	f.StringVar(&st.AWS.Endpoints.SSM, "endpoint-ssm", "", "Systems Manager endpoint URL")
	f.StringVar(&st.AWS.Endpoints.KMS, "endpoint-kms", "", "KMS endpoint URL")
	f.StringVar(&st.AWS.Endpoints.STS, "endpoint-sts", "", "STS endpoint URL")
	f.StringVar(&st.AWS.Endpoints.EC2, "endpoint-ec2", "", "EC2 endpoint URL")
	f.StringVar(&st.AWS.Endpoints.DynamoDB, "endpoint-dynamodb", "", "DynamoDB endpoint URL")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.MarkFlagRequired("url")
	return cmd
}
