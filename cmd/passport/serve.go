package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/service"
)

func newServeCommand() *cobra.Command {
	var (
		st              service.Settings
		listen          string
		tlsCert, tlsKey string
		region, profile string
		endpoints       awsconfig.Endpoints
		logLevel        string
		reconcileEvery  time.Duration
		stuckAfter      time.Duration
		rateLimit       int
		usernamePrefix  string
		createTable     bool
		documentsMode   string
		samlEntityID    string
		groupsAttribute string
		samlMetadata    string
		policySource    string
		ledgerURL       string
		defaultCA       string
		cas             []string
		url             string
		sweep           bool
		name            string
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
			st = service.Settings{
				URL: url, AWS: awsconfig.Settings{Region: region, Profile: profile, Endpoints: endpoints},
				Ledger: ledgerURL, CreateTable: createTable, CAs: cas, DefaultCA: defaultCA,
				PolicySource: policySource, SAMLMetadata: samlMetadata, SAMLEntityID: samlEntityID, GroupsAttribute: groupsAttribute,
				Documents: documentsMode, UsernamePrefix: usernamePrefix, RatePerMinute: rateLimit,
				Reconcile: reconcileEvery, Sweep: sweep, Name: name, StuckAfter: stuckAfter,
				Version: version, Log: log,
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
			fmt.Fprintf(cmd.OutOrStdout(), "passport service %s serving %s on %s\n", svc.Name, url, ln.Addr())
			return svc.Run(ctx, ln, tlsOn)
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "the URL callers reach the service at, https://passport.example.com (required)")
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address to listen on; anything but loopback needs --tls-cert and --tls-key")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate chain for TLS")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key for TLS")
	f.StringVar(&ledgerURL, "ledger", os.Getenv("PASSPORT_LEDGER"), "the ledger: sqlite:///var/lib/passport/ledger.db for one replica, dynamodb://TABLE for several (env PASSPORT_LEDGER)")
	f.BoolVar(&createTable, "create-table", false, "create the DynamoDB ledger table when it is missing")
	f.StringArrayVar(&cas, "ca", nil, "a certificate authority, name=kms:<key ARN, id or alias> (repeatable; the first is the default)")
	f.StringVar(&defaultCA, "default-ca", "", "the CA a request that names none gets (default: the first --ca)")
	f.StringVar(&policySource, "policy", "", "the administrators' Cedar policy: ssm:///<parameter> or file:///<path> (default ssm:///passport/policy)")
	f.StringVar(&samlMetadata, "saml-metadata", os.Getenv("PASSPORT_SAML_METADATA"), "the IdP's SAML metadata, a file or an https URL; without it no person can sign in (env PASSPORT_SAML_METADATA)")
	f.StringVar(&samlEntityID, "saml-entity-id", "", "the service's entity ID at the IdP (default: <url>/saml/metadata)")
	f.StringVar(&groupsAttribute, "groups-attribute", "", "the SAML attribute listing a person's groups (default groups)")
	f.StringVar(&documentsMode, "documents", "publish", "Passport's SSM documents: publish (create or update at start), lookup (published already), or off (AWS-RunShellScript; lets the role run anything)")
	f.StringVar(&usernamePrefix, "username-prefix", "", "start of every short-lived user's name (default pp-)")
	f.IntVar(&rateLimit, "rate-limit", 0, "calls per minute each caller may make (default 240)")
	f.DurationVar(&reconcileEvery, "reconcile-interval", time.Minute, "time between reconciler passes")
	f.DurationVar(&stuckAfter, "stuck-after", 0, "how long a grant may stay provisioning or revoking before a reconciler takes it over (default 15m)")
	f.BoolVar(&sweep, "sweep", true, "remove Passport users no open grant accounts for on online Linux and Windows nodes")
	f.StringVar(&name, "name", "", "this replica's name on leases and in the audit trail (default service/<hostname>-<pid>)")
	f.StringVar(&region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	f.StringVar(&profile, "profile", "", "AWS profile (default: AWS_PROFILE, or the instance or task role)")
	f.StringVar(&endpoints.SSM, "endpoint-ssm", "", "Systems Manager endpoint URL")
	f.StringVar(&endpoints.KMS, "endpoint-kms", "", "KMS endpoint URL")
	f.StringVar(&endpoints.STS, "endpoint-sts", "", "STS endpoint URL")
	f.StringVar(&endpoints.EC2, "endpoint-ec2", "", "EC2 endpoint URL")
	f.StringVar(&endpoints.DynamoDB, "endpoint-dynamodb", "", "DynamoDB endpoint URL")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.MarkFlagRequired("url")
	return cmd
}
