// Package service assembles the Passport service from its settings: the
// AWS clients of its own identity, the ledger, its certificate
// authorities, the administrators' policy, SAML sign-in, the access core,
// the HTTP server (internal/server) and the reconciler that runs inside
// it. `passport serve`, `passport lab up` and the tests all start it here,
// so they run the same thing.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/documents"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/identity"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/notify"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/reconcile"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
	"github.com/passport-access/terraform-provider-passport/internal/server"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
	"github.com/passport-access/terraform-provider-passport/internal/targets"
)

// DefaultStuckAfter is how long a grant the service works on may go
// unmarked before another replica takes it for one whose replica died.
const DefaultStuckAfter = 2 * time.Minute

// Settings is what an operator configures.
type Settings struct {
	// URL is where callers reach the service, https://passport.example.com:
	// the base of its SAML endpoints and login redirects.
	URL string
	// AWS is the service's own AWS identity and endpoints.
	AWS awsconfig.Settings
	// Ledger is sqlite:///path or dynamodb://table; replicas share one
	// DynamoDB table. CreateTable creates a missing DynamoDB table.
	Ledger      string
	CreateTable bool
	// CAs are the service's certificate authorities, "name=kms:<key ARN,
	// id or alias>"; DefaultCA names the default (the first when empty).
	CAs       []string
	DefaultCA string
	// PolicySource is where the administrators' Cedar policy is read;
	// policy.DefaultSource when empty.
	PolicySource string
	// SAMLMetadata is the IdP's metadata (a file or an https URL); empty
	// lets no person sign in. SAMLEntityID and GroupsAttribute as in
	// server.SAMLConfig.
	SAMLMetadata    string
	SAMLEntityID    string
	GroupsAttribute string
	// Machines lets machines sign in with their AWS identity, checked with
	// the service's own STS endpoint. ServerID is the value their signed
	// sign-in must bind; the URL when empty.
	Machines bool
	ServerID string
	// Documents says how the service finds Passport's SSM Command
	// documents, which carry its host programs: "publish" (the default)
	// creates or updates them at start; "lookup" wants them published
	// already (`passport documents publish`), for a role without
	// ssm:CreateDocument; "off" sends the programs through
	// AWS-RunShellScript, which a role must then be allowed, and which
	// lets that role run anything as root.
	Documents string
	// UsernamePrefix starts every short-lived user's name.
	UsernamePrefix string
	// ApprovalDeadline is how long a request (or a longer window) that
	// policy grants only with approval waits for it before it ends
	// unapproved; access.DefaultApprovalDeadline when zero.
	ApprovalDeadline time.Duration
	// ReviewWithin is how long after a break-glass grant someone else
	// must review it; access.DefaultReviewWithin when zero.
	ReviewWithin time.Duration
	// Notify is where the service sends notifications (notify.Load reads
	// it from --notify-config); nil sends none and records none.
	Notify *notify.Config
	// RatePerMinute bounds each caller's calls; server.DefaultRatePerMinute
	// when zero.
	RatePerMinute int
	// Reconcile is the time between reconciler passes; 1 minute when zero.
	// Sweep also removes Passport users no open grant accounts for.
	Reconcile time.Duration
	Sweep     bool
	// Recordings is where collected session recordings are read, for the
	// recordings routes: a recording.Dir, or the bucket's catalog; nil
	// when the service keeps none.
	Recordings recording.Catalog
	// RecordingsBucket is the S3 bucket session recordings are collected
	// into (on every revoke and reconciler pass) and, unless Recordings
	// is set, read from; empty collects nothing. RecordingRetention is
	// how long they are kept (access.DefaultRetention when zero); the
	// bucket's lifecycle rule is set to it at start.
	RecordingsBucket   string
	RecordingRetention time.Duration
	// Name is this replica's name on leases and in the audit trail;
	// service/<hostname>-<pid> when empty.
	Name string
	// StuckAfter is how long a grant may stay provisioning or revoking
	// without its replica marking it before another takes it over;
	// DefaultStuckAfter when zero. A replica marks its grants every
	// quarter of it.
	StuckAfter time.Duration
	Fleet      fleet.Options
	Version    string
	Now        func() time.Time
	Log        *slog.Logger
}

// Service is a running Passport service, before or while it serves.
type Service struct {
	Server     *server.Server
	Reconciler *reconcile.Reconciler
	// Notifier delivers notifications; nil without Settings.Notify.
	Notifier *notify.Deliverer
	Ledger   *ledger.Ledger
	Clients  *awsconfig.Clients
	Name     string
	// Registry holds the service's metrics (the reconciler's, the
	// notifications', unreviewed break-glass grants).
	Registry *prometheus.Registry
	handler  http.Handler
	metrics  http.Handler
	interval time.Duration
	log      *slog.Logger
}

// New opens everything the service needs and checks it can work: the
// ledger opens, every CA's key is readable in KMS, the policy source can
// be read, the IdP's metadata loads. It serves nothing yet.
func New(ctx context.Context, st Settings) (svc *Service, err error) {
	if st.Now == nil {
		st.Now = time.Now
	}
	if st.Log == nil {
		st.Log = slog.New(slog.DiscardHandler)
	}
	base, err := url.Parse(strings.TrimSuffix(st.URL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("--url %q: give the URL callers reach the service at, https://passport.example.com", st.URL)
	}
	clients, err := awsconfig.Load(ctx, st.AWS)
	if err != nil {
		return nil, err
	}
	if st.Ledger == "" {
		return nil, errors.New("--ledger is required: sqlite:///var/lib/passport/ledger.db for one replica, dynamodb://TABLE for several")
	}
	// A replica marks the grants it works on every quarter of StuckAfter,
	// so the service can take over a dead replica's half-made grants in
	// minutes rather than the quarter hour a killed `terraform apply` is
	// given.
	stuck := cmp.Or(st.StuckAfter, DefaultStuckAfter)
	lo := ledger.Options{Now: st.Now, StuckAfter: stuck, DynamoDB: ledger.DynamoDBOptions{Client: clients.DynamoDB, CreateTable: st.CreateTable}}
	st.Notify.Announce(&lo)
	book, err := ledger.Open(ctx, st.Ledger, lo)
	if err != nil {
		return nil, fmt.Errorf("--ledger %s: %w", st.Ledger, err)
	}
	defer func() {
		if err != nil {
			book.Close()
		}
	}()
	cas, defaultCA, err := openCAs(ctx, clients, st.CAs, st.DefaultCA)
	if err != nil {
		return nil, err
	}
	source := st.PolicySource
	if source == "" {
		source = policy.DefaultSource
	}
	tags := policy.EC2Tags{Client: clients.EC2}
	check := &reconcile.PolicyCheck{
		Load: func(ctx context.Context) (*policy.Policy, error) { return policy.Load(ctx, source, clients.SSM) },
		Tags: tags,
		Now:  st.Now,
	}
	if err := check.Ready(ctx); err != nil {
		return nil, fmt.Errorf("--policy %s: %w", source, err)
	}
	docs, err := findDocuments(ctx, clients, st.Documents)
	if err != nil {
		return nil, err
	}
	var recs *access.Recordings
	if st.RecordingsBucket != "" {
		s3cfg := clients.Config.Copy()
		if e := clients.Endpoints.S3; e != "" {
			s3cfg.BaseEndpoint = aws.String(e)
		}
		store, err := collect.NewStore(s3cfg, st.RecordingsBucket)
		if err != nil {
			return nil, err
		}
		recs = &access.Recordings{Store: store, Retention: cmp.Or(st.RecordingRetention, access.DefaultRetention)}
		if err := store.ApplyRetention(ctx, recs.Retention); err != nil {
			return nil, fmt.Errorf("--recordings-bucket %s: %w (the service's role needs s3:PutLifecycleConfiguration on it)", st.RecordingsBucket, err)
		}
		if st.Recordings == nil {
			st.Recordings = recording.Bucket{Index: book, Get: store.GetObject}
		}
	}
	core, err := access.New(access.Config{
		Recordings:     recs,
		Documents:      docs,
		Fleet:          fleet.New(clients.SSM, st.Fleet),
		Now:            st.Now,
		UsernamePrefix: st.UsernamePrefix,
		Ledger:         book,
		Authorizer:     gate{check, tags},
		SealedOnly:     true,
		Approvals:      &access.Approvals{Deadline: st.ApprovalDeadline, ReviewWithin: st.ReviewWithin},
	})
	if err != nil {
		return nil, err
	}
	var machines server.MachineVerifier
	if st.Machines {
		v := &awsidentity.Verifier{STSEndpoint: stsEndpoint(clients), Region: clients.Config.Region, ServerID: cmp.Or(st.ServerID, base.String()), Now: st.Now,
			Once: func(ctx context.Context, key string, until time.Time) error {
				err := book.UseOnce(ctx, "aws-login", key, until)
				if errors.Is(err, ledger.ErrUsed) {
					return fmt.Errorf("this signed sign-in was used before: %w", awsidentity.ErrUsed)
				}
				return err
			}}
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("--machines: %w", err)
		}
		machines = v
	}
	var samlCfg *server.SAMLConfig
	if st.SAMLMetadata != "" {
		md, err := identity.LoadMetadata(ctx, st.SAMLMetadata)
		if err != nil {
			return nil, fmt.Errorf("--saml-metadata %s: %w", st.SAMLMetadata, err)
		}
		samlCfg = &server.SAMLConfig{Metadata: md, EntityID: st.SAMLEntityID, GroupsAttribute: st.GroupsAttribute}
	}
	if st.Name == "" {
		host, _ := os.Hostname()
		st.Name = fmt.Sprintf("service/%s-%d", host, os.Getpid())
	}
	srv, err := server.New(server.Config{
		Access: core, Ledger: book, CAs: cas, DefaultCA: defaultCA,
		Policy: check.Current,
		Tags:   tags,
		Instances: func(ctx context.Context, f targets.Filter) ([]targets.Instance, error) {
			return targets.Find(ctx, clients.SSM, f)
		},
		Sessions:      sessions{clients.SSM},
		Recordings:    st.Recordings,
		SAML:          samlCfg,
		Machines:      machines,
		URL:           base,
		RatePerMinute: st.RatePerMinute,
		Heartbeat:     stuck / 4,
		Version:       st.Version,
		Now:           st.Now,
		Log:           st.Log,
	})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rcfg := reconcile.Config{Ledger: book, Access: core, Holder: st.Name, Authorizer: check, Now: st.Now, Log: st.Log, Metrics: reconcile.NewMetrics(reg)}
	if st.Sweep {
		rcfg.Hosts = reconcile.OnlineHosts(clients.SSM, nil)
	}
	rec, err := reconcile.New(rcfg)
	if err != nil {
		return nil, err
	}
	var notifier *notify.Deliverer
	if st.Notify != nil {
		if notifier, err = notify.New(book, st.Notify, notify.Options{Holder: st.Name, Registry: reg, Now: st.Now, Log: st.Log}); err != nil {
			return nil, err
		}
	}
	interval := st.Reconcile
	if interval <= 0 {
		interval = time.Minute
	}
	return &Service{Server: srv, Reconciler: rec, Notifier: notifier, Ledger: book, Clients: clients, Name: st.Name, Registry: reg,
		handler: srv.Handler(), metrics: rcfg.Metrics.Handler(reg, 3*interval+reconcile.DefaultLease), interval: interval, log: st.Log}, nil
}

// stsEndpoint is the STS endpoint the service's own calls go to: the
// configured one, else the region's.
func stsEndpoint(clients *awsconfig.Clients) string {
	if clients.Endpoints.STS != "" {
		return clients.Endpoints.STS
	}
	if e := os.Getenv("AWS_ENDPOINT_URL_STS"); e != "" {
		return e
	}
	return "https://sts." + clients.Config.Region + ".amazonaws.com"
}

// findDocuments publishes or looks up Passport's documents, as mode says.
func findDocuments(ctx context.Context, clients *awsconfig.Clients, mode string) (*documents.Set, error) {
	switch mode {
	case "", "publish":
		set, err := documents.Publish(ctx, clients.SSM)
		if err != nil {
			return nil, fmt.Errorf("publishing Passport's SSM documents (the service's role needs ssm:CreateDocument and ssm:UpdateDocument on them, or run passport documents publish and start with --documents lookup): %w", err)
		}
		return set, nil
	case "lookup":
		set, err := documents.Lookup(ctx, clients.SSM)
		if err != nil {
			return nil, fmt.Errorf("Passport's SSM documents are not published as this release ships them: run passport documents publish: %w", err)
		}
		return set, nil
	case "off":
		return nil, nil
	}
	return nil, fmt.Errorf("--documents %q: give publish, lookup or off", mode)
}

// openCAs opens the service's CAs. The service keeps its CAs' keys in KMS
// only: a key it held itself would be readable by whoever reads its
// configuration.
func openCAs(ctx context.Context, clients *awsconfig.Clients, refs []string, def string) (map[string]*sshca.CA, string, error) {
	if len(refs) == 0 {
		return nil, "", errors.New("--ca is required: name=kms:<key ARN, id or alias> of a KMS key made with passport_certificate_authority or by hand")
	}
	cas := make(map[string]*sshca.CA, len(refs))
	for i, ref := range refs {
		name, key, ok := strings.Cut(ref, "=")
		if !ok || name == "" || !strings.HasPrefix(key, "kms:") {
			return nil, "", fmt.Errorf("--ca %q: write name=kms:<key ARN, id or alias>; the service's CAs live in KMS", ref)
		}
		if _, dup := cas[name]; dup {
			return nil, "", fmt.Errorf("--ca %s is given twice", name)
		}
		ca, err := sshca.OpenRef(ctx, clients.KMS, key)
		if err != nil {
			return nil, "", fmt.Errorf("--ca %s: %w", name, err)
		}
		cas[name] = ca
		if def == "" && i == 0 {
			def = name
		}
	}
	if _, ok := cas[def]; !ok {
		return nil, "", fmt.Errorf("--default-ca %s is not one of the --ca names", def)
	}
	return cas, def, nil
}

// gate asks the administrators' current policy, with the instances'
// tags, about a request the access core is about to grant.
type gate struct {
	check *reconcile.PolicyCheck
	tags  policy.TagSource
}

func (g gate) Authorize(ctx context.Context, req policy.Request) error {
	p, err := g.check.Current(ctx)
	if err != nil {
		return err
	}
	return (&policy.Gate{Policy: p, Tags: g.tags}).Authorize(ctx, req)
}

var _ access.RecordingPolicy = gate{}

// Recording implements access.RecordingPolicy with the current policy.
func (g gate) Recording(ctx context.Context, req policy.Request) ([]policy.RecordRule, error) {
	p, err := g.check.Current(ctx)
	if err != nil {
		return nil, err
	}
	return (&policy.Gate{Policy: p, Tags: g.tags}).Recording(ctx, req)
}

// sessions opens Session Manager sessions with the service's identity.
type sessions struct{ ssm *ssm.Client }

func (s sessions) Start(ctx context.Context, target, document string, params map[string][]string) (api.Session, error) {
	out, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(target), DocumentName: aws.String(document), Parameters: params,
		Reason: aws.String("passport service tunnel")})
	if err != nil {
		return api.Session{}, err
	}
	return api.Session{SessionID: aws.ToString(out.SessionId), StreamURL: aws.ToString(out.StreamUrl), Token: aws.ToString(out.TokenValue)}, nil
}

func (s sessions) Resume(ctx context.Context, id string) (api.Session, error) {
	out, err := s.ssm.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(id)})
	if err != nil {
		return api.Session{}, err
	}
	return api.Session{SessionID: aws.ToString(out.SessionId), StreamURL: aws.ToString(out.StreamUrl), Token: aws.ToString(out.TokenValue)}, nil
}

func (s sessions) Terminate(ctx context.Context, id string) error {
	_, err := s.ssm.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(id)})
	return err
}

// Handler is the service's HTTP handler.
func (s *Service) Handler() http.Handler { return s.handler }

// MetricsHandler serves /metrics and /healthz, for a listener of their own
// (passport serve --metrics-listen): they need no sign-in, so they stay
// off the API's address.
func (s *Service) MetricsHandler() http.Handler { return s.metrics }

// Run serves on ln (tlsOn says whether ln carries TLS) and runs the
// reconciler, until ctx ends; then it lets calls in flight finish and
// stops both.
func (s *Service) Run(ctx context.Context, ln net.Listener, tlsOn bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var recErr error
	wg.Go(func() {
		recErr = s.Reconciler.Run(ctx, s.interval)
		if errors.Is(recErr, context.Canceled) {
			recErr = nil
		}
	})
	if s.Notifier != nil {
		wg.Go(func() { _ = s.Notifier.Run(ctx) }) // it logs its failures and goes on
	}
	s.log.Info("passport service started", "name", s.Name, "addr", ln.Addr().String(), "reconcile_every", s.interval.String())
	err := server.Serve(ctx, ln, s.handler, tlsOn, s.log)
	cancel()
	wg.Wait()
	return errors.Join(err, recErr)
}

// Close releases the ledger.
func (s *Service) Close() error { return s.Ledger.Close() }
