// Package server is the Passport service's HTTP side (`passport serve`):
// the one place that holds the power to touch servers, sign certificates
// and write the ledger. It is to HTTP what internal/provider is to
// Terraform, a thin skin over internal/access: every call is read,
// checked, authorized for the caller established at the edge, handed to
// the access core with that caller as the actor, and rendered.
//
// Callers sign in with SAML (a cookie for browsers, a token for the CLI
// through a loopback code exchange) or with their AWS identity (a signed
// sts:GetCallerIdentity). Grants are always loaded by id from the ledger,
// never taken from a request body, and a requester may act only on their
// own requests unless policy says otherwise.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/portal"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
	"github.com/passport-access/terraform-provider-passport/internal/targets"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxBody         = 64 << 10
	DefaultRatePerMinute   = 240
	DefaultTokenTTL        = 12 * time.Hour
	DefaultMachineTokenTTL = time.Hour
	DefaultGrantTimeout    = 10 * time.Minute
)

// Config wires a Server.
type Config struct {
	// Access is the access core, with the service's own fleet, ledger and
	// an Authorizer (see Server.Authorizer).
	Access *access.Service
	// Ledger is the same ledger Access writes: grants, the audit trail and
	// the entries (tokens, login codes, one-time values) every replica
	// shares.
	Ledger *ledger.Ledger
	// CAs are the service's certificate authorities by name; DefaultCA
	// names the one a request that names none gets.
	CAs       map[string]*sshca.CA
	DefaultCA string
	// Policy returns the administrators' current policy.
	Policy func(ctx context.Context) (*policy.Policy, error)
	// Tags looks up instances' tags for policy.
	Tags policy.TagSource
	// Instances lists managed instances, for /v1/targets and requests by
	// tag.
	Instances func(ctx context.Context, f targets.Filter) ([]targets.Instance, error)
	// Sessions opens Session Manager sessions for callers' tunnels; nil
	// refuses them.
	Sessions SessionManager
	// Recordings is where collected session recordings are read; nil
	// answers that the service keeps none.
	Recordings recording.Catalog
	// SAML lets people sign in; nil refuses them.
	SAML *SAMLConfig
	// Machines lets machines sign in with their AWS identity; nil refuses
	// them.
	Machines MachineVerifier
	// URL is where callers reach the service (https://passport.example.com):
	// the base of the SAML endpoints and of login redirects.
	URL *url.URL
	// MaxBody bounds a request body; DefaultMaxBody when zero.
	MaxBody int64
	// RatePerMinute bounds each caller's calls, with bursts of a quarter
	// of it; DefaultRatePerMinute when zero.
	RatePerMinute int
	// TokenTTL caps a person's token (never past their SAML session);
	// MachineTokenTTL a machine's.
	TokenTTL        time.Duration
	MachineTokenTTL time.Duration
	// GrantTimeout bounds the work one call does on hosts. It is the
	// service's, not the caller's: a caller who hangs up does not undo a
	// grant half-way.
	GrantTimeout time.Duration
	// Heartbeat is how often a replica working on a grant marks it as
	// still worked on, so that other replicas' reconcilers take over only
	// the grants of a replica that died; give a quarter of the ledger's
	// StuckAfter. 30 seconds when zero.
	Heartbeat time.Duration
	Version   string
	Now       func() time.Time
	Log       *slog.Logger
}

// MachineVerifier checks a machine's signed sts:GetCallerIdentity request
// and says who signed it (*awsidentity.Verifier is one).
type MachineVerifier interface {
	Info() api.AWSLoginInfo
	Verify(ctx context.Context, login api.AWSLogin) (awsidentity.Identity, error)
}

// Server serves the Passport API, and the portal's pages beside it.
type Server struct {
	cfg   Config
	rate  *limiter
	login *limiter
	// api is the /v1 routes behind nothing but themselves, which the
	// portal calls in process as the signed-in person.
	api    http.Handler
	portal *portal.Portal
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Access == nil || cfg.Ledger == nil:
		return nil, errors.New("server: Config.Access and Config.Ledger are required")
	case len(cfg.CAs) == 0:
		return nil, errors.New("server: no certificate authority: give at least one (--ca name=kms:<key>)")
	case cfg.Policy == nil:
		return nil, errors.New("server: Config.Policy is required: the service never grants without policy")
	case cfg.URL == nil:
		return nil, errors.New("server: Config.URL is required")
	}
	if cfg.DefaultCA == "" && len(cfg.CAs) == 1 {
		for name := range cfg.CAs {
			cfg.DefaultCA = name
		}
	}
	if _, ok := cfg.CAs[cfg.DefaultCA]; !ok {
		return nil, fmt.Errorf("server: the default CA %q is not one of the configured CAs", cfg.DefaultCA)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.RatePerMinute <= 0 {
		cfg.RatePerMinute = DefaultRatePerMinute
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.MachineTokenTTL <= 0 {
		cfg.MachineTokenTTL = DefaultMachineTokenTTL
	}
	if cfg.GrantTimeout <= 0 {
		cfg.GrantTimeout = DefaultGrantTimeout
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SAML != nil {
		if err := cfg.SAML.complete(cfg.URL); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg}
	s.rate = newLimiter(cfg.RatePerMinute, cfg.Now)
	// Sign-in routes are limited per client address: they are what anyone
	// without a token can reach, and each pending sign-in is a write to the
	// ledger. The limit is generous because many people may share one
	// address (an office's NAT, a load balancer that does not pass theirs).
	s.login = newLimiter(cfg.RatePerMinute*5/2, cfg.Now)
	mux := http.NewServeMux()
	for _, r := range s.routeTable() {
		mux.Handle(r.pattern, r.handler)
	}
	s.api = s.routes(mux)
	var err error
	if s.portal, err = portal.New(portal.Config{API: s.api, URL: cfg.URL, Now: cfg.Now, Log: cfg.Log}); err != nil {
		return nil, err
	}
	return s, nil
}

// route is one route of the API: a ServeMux pattern and its handler.
type route struct {
	pattern string
	handler http.Handler
}

// routes lists every route the service serves.
func (s *Server) routeTable() []route {
	open := func(h http.HandlerFunc) http.Handler { return h }
	return []route{
		{"GET /v1/health", open(s.health)},
		{"GET /saml/metadata", open(s.samlMetadata)},
		{"GET /saml/login", open(s.samlLogin)},
		{"POST /saml/acs", open(s.samlACS)},
		{"GET /v1/login/cli", open(s.cliLogin)},
		{"POST /v1/login/token", open(s.exchangeCode)},
		{"GET /v1/login/aws", open(s.awsLoginInfo)},
		{"POST /v1/login/aws", open(s.awsLogin)},
		{"POST /v1/logout", s.signedIn(s.logout)},
		{"GET /v1/whoami", s.signedIn(s.whoami)},
		{"GET /v1/targets", s.signedIn(s.listTargets)},
		{"POST /v1/requests", s.signedIn(s.createRequest)},
		{"POST /v1/requests/preview", s.signedIn(s.previewRequest)},
		{"GET /v1/requests", s.signedIn(s.listRequests)},
		{"GET /v1/requests/{id}", s.signedIn(s.getRequest)},
		{"POST /v1/requests/{id}/extend", s.signedIn(s.extendRequest)},
		{"PUT /v1/requests/{id}/targets", s.signedIn(s.setTargets)},
		{"POST /v1/requests/{id}/end", s.signedIn(s.endRequest)},
		{"POST /v1/requests/{id}/approve", s.signedIn(s.approveRequest)},
		{"POST /v1/requests/{id}/deny", s.signedIn(s.denyRequest)},
		{"POST /v1/requests/{id}/review", s.signedIn(s.reviewRequest)},
		{"POST /v1/requests/{id}/check", s.signedIn(s.checkRequest)},
		{"POST /v1/requests/{id}/sessions", s.signedIn(s.startSession)},
		{"POST /v1/sessions/{sid}/resume", s.signedIn(s.resumeSession)},
		{"POST /v1/sessions/{sid}/end", s.signedIn(s.endSession)},
		{"GET /v1/recordings", s.signedIn(s.listRecordings)},
		{"GET /v1/recordings/grep", s.signedIn(s.grepRecordings)},
		{"GET /v1/recordings/{request}/{target}/{session}", s.signedIn(s.getRecording)},
		{"DELETE /v1/recordings/{request}/{target}/{session}", s.signedIn(s.deleteRecording)},
		{"GET /v1/recordings/{request}/{target}/{session}/asciicast", s.signedIn(s.recordingCast)},
		{"GET /v1/recordings/{request}/{target}/{session}/events", s.signedIn(s.recordingEvents)},
		{"GET /v1/audit", s.signedIn(s.listAudit)},
		{"GET /v1/audit/verify", s.signedIn(s.verifyAudit)},
	}
}

// Routes lists the patterns the service serves ("GET /v1/health"), for
// the test that holds the API document to them.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.routeTable() {
		out = append(out, r.pattern)
	}
	return out
}

// Pages lists the patterns of the portal's pages, served beside the API.
func (s *Server) Pages() []string {
	var out []string
	for _, r := range s.portal.Routes() {
		out = append(out, r.Pattern)
	}
	return out
}

// Handler is the service's routes behind its edge: size and rate limits,
// no caching, CSRF protection for cookie callers, and sign-in. The
// portal's pages are served beside the API, behind the same edge; every
// other path is the API's (a JSON no_route for one it does not serve).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", s.api)
	for _, r := range s.portal.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}

	// A browser must not be made to change anything for a signed-in person
	// from another site. The IdP's POST to the ACS is cross-site by design
	// and carries its own proof (a signed response for a pending login).
	csrf := http.NewCrossOriginProtection()
	csrf.AddInsecureBypassPattern("POST /saml/acs")
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &apiError{code: "denied", msg: "cross-origin request refused: this call changes something and did not come from the Passport service's own pages"})
	}))
	return s.edge(csrf.Handler(mux))
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: calls
// in flight (a grant on 200 hosts, say) get shutdownGrace to finish. A
// listener that is not on loopback must carry TLS: tokens and
// certificates travel on it.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, tlsOn bool, log *slog.Logger) error {
	if !tlsOn && !isLoopback(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("refusing to serve on %s without TLS: give --tls-cert and --tls-key (plain HTTP is allowed on loopback only)", ln.Addr())
	}
	return RunHTTP(ctx, ln, &http.Server{
		Handler: h,
		// A grant may take minutes on a large fleet; the response waits.
		WriteTimeout: DefaultGrantTimeout + time.Minute,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})
}

// RunHTTP serves srv on ln until ctx ends or serving fails, and then shuts
// it down gracefully, returning what went wrong. Timeouts srv leaves zero
// get bounds, so that no client holds a connection forever.
func RunHTTP(ctx context.Context, ln net.Listener, srv *http.Server) error {
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = 10 * time.Second
	}
	if srv.ReadTimeout == 0 {
		srv.ReadTimeout = 30 * time.Second
	}
	if srv.WriteTimeout == 0 {
		srv.WriteTimeout = time.Minute
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = 2 * time.Minute
	}
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = 64 << 10
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

// shutdownGrace is how long calls in flight may finish after a stop.
const shutdownGrace = 30 * time.Second

func isLoopback(a net.Addr) bool {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
