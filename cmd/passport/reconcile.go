package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/documents"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/notify"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/reconcile"
	"github.com/passport-access/terraform-provider-passport/internal/server"
)

// ledgerFlags are how a command reaches the ledger and AWS, the way the
// provider's region, profile, endpoints and ledger settings do.
type ledgerFlags struct {
	ledger    string
	region    string
	profile   string
	endpoints awsconfig.Endpoints
}

func (f *ledgerFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.ledger, "ledger", os.Getenv("PASSPORT_LEDGER"), "the ledger: sqlite:///path/to/ledger.db or dynamodb://table (env PASSPORT_LEDGER)")
	f.registerAWS(cmd)
}

// registerAWS registers the flags that say where AWS is.
func (f *ledgerFlags) registerAWS(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "AWS profile (default: AWS_PROFILE)")
	cmd.Flags().StringVar(&f.endpoints.SSM, "endpoint-ssm", "", "Systems Manager endpoint URL (default: AWS_ENDPOINT_URL_SSM, then AWS)")
	cmd.Flags().StringVar(&f.endpoints.DynamoDB, "endpoint-dynamodb", "", "DynamoDB endpoint URL (default: AWS_ENDPOINT_URL_DYNAMODB, then AWS)")
}

// open opens the ledger. needsAWS says whether the command needs AWS
// clients anyway: the reconciler does (it runs commands on hosts); audit
// only for a DynamoDB ledger.
func (f *ledgerFlags) open(ctx context.Context, now func() time.Time, needsAWS bool) (*ledger.Ledger, *awsconfig.Clients, error) {
	return f.openWith(ctx, ledger.Options{Now: now}, needsAWS)
}

// openWith opens the ledger with o, to which it adds the DynamoDB client.
func (f *ledgerFlags) openWith(ctx context.Context, o ledger.Options, needsAWS bool) (*ledger.Ledger, *awsconfig.Clients, error) {
	if f.ledger == "" {
		return nil, nil, errors.New("--ledger is required: give sqlite:///path/to/ledger.db or dynamodb://table, or set PASSPORT_LEDGER")
	}
	var clients *awsconfig.Clients
	if needsAWS || strings.HasPrefix(f.ledger, "dynamodb://") {
		c, err := awsconfig.Load(ctx, awsconfig.Settings{Region: f.region, Profile: f.profile, Endpoints: f.endpoints})
		if err != nil {
			return nil, nil, err
		}
		clients = c
	}
	if clients != nil {
		o.DynamoDB.Client = clients.DynamoDB
	}
	l, err := ledger.Open(ctx, f.ledger, o)
	if err != nil {
		return nil, nil, err
	}
	return l, clients, nil
}

func newReconcileCommand() *cobra.Command {
	var (
		f    ledgerFlags
		once bool
		// viaDocuments sends programs through Passport's documents.
		viaDocuments bool
		interval     time.Duration
		listen       string
		name         string
		lease        time.Duration
		parallel     int
		sweep        bool
		tags         []string
		policySrc    string
		rf           recordingFlags
		notifyConfig notifyFlag
	)
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "End access whose window has passed and clean up what Terraform left behind",
		Long: `The reconciler enforces the ledger on the hosts. Each pass revokes grants
whose window has ended, finishes grants an interrupted apply or destroy left
provisioning or revoking, retries hosts that did not answer before, asks
the administrators' policy (--policy) again about every live grant and
revokes those it no longer permits, and removes Passport users on the hosts
that no open grant accounts for. It revokes exactly as terraform destroy
does; the audit trail names it and says why.

Run it as a daemon (--interval), or once per run (--once) from cron or a
scheduled task. Several reconcilers may share a DynamoDB ledger: each
grant is leased to one of them while it is revoked.

With --notify-config (the file passport serve takes) what the reconciler
does is announced: the grants it ends or revokes and the windows that end
soon reach the file's webhooks and Slack channels. A daemon delivers as
it goes; --once delivers after its pass, and leaves what a receiver
refused to the next run's retry. Beside a service on the same ledger,
give it the service's file: every process delivering from one ledger
needs the same sinks. See docs/guides/notifications.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !once && interval <= 0 {
				return fmt.Errorf("--interval %s: give a positive interval, or --once", interval)
			}
			tagFilter, err := parseTags(tags)
			if err != nil {
				return err
			}
			// A bad notifications file is said before the ledger is opened.
			notices, err := notifyConfig.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			lo := ledger.Options{Now: time.Now}
			notices.Announce(&lo)
			l, clients, err := f.openWith(ctx, lo, true)
			if err != nil {
				return err
			}
			defer l.Close()
			if name == "" {
				name = defaultReconcilerName()
			}
			acfg := access.Config{Fleet: fleet.New(clients.SSM, fleet.Options{}), Ledger: l}
			if acfg.Recordings, err = rf.recordings(ctx, clients); err != nil {
				return err
			}
			if viaDocuments {
				if acfg.Documents, err = documents.Lookup(ctx, clients.SSM); err != nil {
					return err
				}
			}
			svc, err := access.New(acfg)
			if err != nil {
				return err
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			metrics := reconcile.NewMetrics(reg)
			cfg := reconcile.Config{Ledger: l, Access: svc, Holder: name, Lease: lease, Concurrency: parallel, Log: log, Metrics: metrics}
			if policySrc != "none" {
				check := &reconcile.PolicyCheck{
					Load: func(ctx context.Context) (*policy.Policy, error) { return policy.Load(ctx, policySrc, clients.SSM) },
					Tags: policy.EC2Tags{Client: clients.EC2},
				}
				if err := check.Ready(ctx); err != nil {
					return fmt.Errorf("--policy %s: %w", policySrc, err)
				}
				cfg.Authorizer = check
			}
			if sweep {
				cfg.Hosts = reconcile.OnlineHosts(clients.SSM, tagFilter)
			}
			rec, err := reconcile.New(cfg)
			if err != nil {
				return err
			}
			var deliverer *notify.Deliverer
			if notices != nil {
				// The reconciler's own name holds the delivery leases, so it
				// and a service on the same ledger never send a request's
				// notices at once.
				if deliverer, err = notify.New(l, notices, notify.Options{Holder: name, Registry: reg, Log: log}); err != nil {
					return err
				}
			}
			if once {
				rep, err := rec.Pass(ctx)
				fmt.Fprintf(cmd.OutOrStdout(), "due %d, revoked %d, pending %d, skipped %d, failed %d, denied %d, strays removed %d, recordings collected %d, expired %d\n",
					rep.Due, rep.Revoked, rep.Pending, rep.Skipped, rep.Failed, rep.Denied, rep.Strays, rep.Recordings, rep.RecordingsExpired)
				if deliverer != nil {
					// One delivery pass, also after a pass that failed in
					// part: what it did record is sent. A receiver that
					// refuses is retried by the next run.
					if derr := deliverer.Pass(ctx); derr != nil {
						err = errors.Join(err, fmt.Errorf("delivering notifications: %w", derr))
					}
				}
				return err
			}
			jobs := []func(context.Context) error{func(ctx context.Context) error { return rec.Run(ctx, interval) }}
			if deliverer != nil {
				jobs = append(jobs, deliverer.Run)
			}
			if listen != "" {
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("--listen %s: %w", listen, err)
				}
				// The metrics server failing stops the reconciler too: a
				// daemon whose health nobody can see is worse than one that
				// exits and is restarted.
				jobs = append(jobs, func(ctx context.Context) error {
					if err := server.RunHTTP(ctx, ln, &http.Server{Handler: metrics.Handler(reg, 3*interval+lease)}); err != nil {
						return fmt.Errorf("serving /metrics on %s: %w", listen, err)
					}
					return nil
				})
				log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
			}
			log.Info("reconciler started", "name", name, "interval", interval.String(), "sweep", sweep, "notify", deliverer != nil)
			return together(ctx, jobs...)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&viaDocuments, "documents", false, "send host programs through Passport's own SSM documents, by version and hash (publish them first with passport documents publish), so the role needs ssm:SendCommand on those documents only; without it they go through AWS-RunShellScript and AWS-RunPowerShellScript")
	rf.register(cmd, true)
	cmd.Flags().BoolVar(&once, "once", false, "run one pass and exit (non-zero when something could not be done); with --notify-config, then one delivery pass")
	cmd.Flags().DurationVar(&interval, "interval", time.Minute, "time between passes in daemon mode")
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve /metrics and /healthz on, e.g. 127.0.0.1:9810 (daemon mode)")
	cmd.Flags().StringVar(&name, "name", "", "this reconciler's name on leases and in the audit trail (default reconciler/<hostname>-<pid>)")
	cmd.Flags().DurationVar(&lease, "lease", reconcile.DefaultLease, "how long a grant is held while it is revoked; longer than one revoke takes")
	cmd.Flags().IntVar(&parallel, "concurrency", reconcile.DefaultConcurrency, "grants revoked at once, each one Run Command to its hosts")
	cmd.Flags().BoolVar(&sweep, "sweep", true, "look for Passport users no open grant accounts for on online Linux and Windows nodes, and remove them")
	cmd.Flags().StringArrayVar(&tags, "sweep-tag", nil, "sweep only nodes with this tag, key=value (repeatable)")
	cmd.Flags().StringVar(&policySrc, "policy", "ssm:///passport/policy", "the administrators' Cedar policy that live grants are checked against again (ssm:///<parameter> or file:///<path>), or none; "+
		"a policy that cannot be read, or is missing, revokes nothing")
	notifyConfig.register(cmd, os.Getenv("PASSPORT_NOTIFY_CONFIG"), "a notifications file, as passport serve takes it: announce the grants this reconciler ends or revokes and the windows ending soon "+
		"to its webhooks and Slack channels; a daemon delivers beside its passes, --once after its pass, leaving what a receiver refused to the next run (env PASSPORT_NOTIFY_CONFIG; docs/guides/notifications.md)")
	return cmd
}

// together runs jobs until the first of them returns, then stops the
// others and waits for them: a daemon's parts live and die as one.
func together(ctx context.Context, jobs ...func(context.Context) error) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, len(jobs))
	for _, job := range jobs {
		go func() { done <- job(ctx) }()
	}
	err := <-done
	stop()
	for range len(jobs) - 1 {
		err = errors.Join(err, <-done)
	}
	return err
}

func defaultReconcilerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("reconciler/%s-%d", host, os.Getpid())
}

func parseTags(tags []string) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--sweep-tag %q: write key=value", t)
		}
		m[k] = v
	}
	return m, nil
}
