package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// serviceConn is the provider's connection to the Passport service in
// service mode. It signs in on first use, not in Configure, so that a
// configuration whose resources need nothing from the service (a plan
// with no changes to make) does not sign anyone in.
type serviceConn struct {
	url    string
	signIn client.SignIn

	once sync.Once
	c    *client.Client
	err  error
}

// newServiceConn checks server and the CA bundle now, so that a wrong URL
// or file is an error on the provider block, and signs in later.
func newServiceConn(server string, s client.SignIn) (*serviceConn, error) {
	c, err := client.New(server, s.Options)
	if err != nil {
		return nil, err
	}
	return &serviceConn{url: c.URL().String(), signIn: s}, nil
}

// client is the signed-in client (client.Open decides who signs in).
func (s *serviceConn) client(ctx context.Context) (*client.Client, error) {
	s.once.Do(func() {
		s.c, s.err = client.Open(ctx, s.url, s.signIn)
		if s.err != nil {
			s.err = &failure{summary: "Cannot sign in to the Passport service", err: s.err}
		}
	})
	return s.c, s.err
}

// explain adds what to do to a refusal of the caller's sign-in: the
// service's own message says the token ended, not which command fixes it.
func (s *serviceConn) explain(err error) error {
	if client.CodeOf(err) != api.CodeUnauthenticated {
		return err
	}
	return &failure{summary: "Not signed in to the Passport service",
		err: fmt.Errorf("%w\nSign in again with: passport login --server %s (or, for a machine, give the AWS credentials it signs in with)", err, s.url)}
}

// serviceGrantor grants through the Passport service. The provider always
// brings the public key (generating the pair here when public_key is not
// set, so the private key never leaves this process) and a one-off key for
// Windows passwords, which only this process can open.
type serviceGrantor struct {
	conn *serviceConn
}

func (s serviceGrantor) grant(ctx context.Context, a ask) (*access.Grant, error) {
	c, err := s.conn.client(ctx)
	if err != nil {
		return nil, err
	}
	if sshca.IsRef(a.ca) {
		return nil, errSignerToService
	}
	in := api.CreateRequest{Targets: a.targets, Reason: a.reason, Sudo: a.sudo, BreakGlass: a.breakGlass, PublicKey: a.publicKey, CertificateAuthority: a.ca}
	if a.duration > 0 {
		in.Duration = a.duration.String()
	}
	// A request this configuration asked for before (an earlier apply
	// whose create timeout passed), which still waits for approval or was
	// approved since, is picked up instead of asked again.
	if req, found, err := c.FindPending(ctx, in); err != nil {
		return nil, s.conn.explain(err)
	} else if found {
		kept, _ := client.LoadPending(req.ID)
		tflog.Info(ctx, "Passport: picking up the access request an earlier apply made, which waits for approval (or was approved since)", map[string]any{"request": req.ID})
		return s.waitFor(ctx, c, req, kept.PrivateKey, kept.PasswordKey)
	}
	key := sshca.UserKey{Line: a.publicKey}
	if a.publicKey == "" {
		if key, err = sshca.NewUserKey(); err != nil {
			return nil, err
		}
	}
	seal, err := s.sealKey(ctx, c, a.targets)
	if err != nil {
		return nil, err
	}
	in.PublicKey, in.PasswordKey = key.Line, seal.Public()
	// The key makes a create asked again (by Go's HTTP transport on a
	// reused connection, or below) find the request the first one made, on
	// any replica, instead of granting twice.
	idem := idempotencyKey()
	req, err := c.Create(ctx, in, idem)
	if err != nil && client.CodeOf(err) == "" && ctx.Err() == nil {
		// No answer at all: the connection dropped, perhaps while the
		// service was granting (a load balancer's idle timeout on a long
		// grant).
		req, err = c.Create(ctx, in, idem)
	}
	if err == nil && client.Waiting(req) {
		// The private halves wait here too, for an apply that picks the
		// request up after this one gives up waiting.
		if err := client.KeepPending(req.ID, client.Pending{PrivateKey: key.PrivatePEM, PasswordKey: seal}); err != nil {
			return nil, fmt.Errorf("access request %s waits for approval, but the keys made for it could not be kept: %w; end it (passport request end %s) and apply again", req.ID, err, req.ID)
		}
		return s.waitFor(ctx, c, req, key.PrivatePEM, seal)
	}
	g, err := s.settle(req, err, key.PrivatePEM, seal)
	if err != nil || g == nil {
		return g, err
	}
	return g, lostOnTheWay(req, g)
}

// waitFor waits, up to the create timeout, for request req to be approved,
// saying in Terraform's log what it waits for, and settles it once
// granted. A request denied, expired or withdrawn meanwhile is an error
// saying so; one still waiting when the timeout passes is an error naming
// it and what to do, and the next apply picks it up.
func (s serviceGrantor) waitFor(ctx context.Context, c *client.Client, req api.Request, privateKey string, seal *client.PasswordKey) (*access.Grant, error) {
	say := func(r api.Request) {
		tflog.Info(ctx, "Passport: access request waits for approval: "+client.WaitingFor(r), map[string]any{
			"request": r.ID, "approve_with": "passport approve " + r.ID + " --server " + s.conn.url})
	}
	say(req)
	got, err := c.Wait(ctx, req.ID, say)
	if err != nil && ctx.Err() != nil {
		if got.ID == "" {
			got = req
		}
		return nil, &failure{summary: "Access request waits for approval", err: fmt.Errorf("access request %s still waits for %s, and %s. "+
			"An approver runs: passport approve %s --server %s. Then run terraform apply again: it picks this request up (it does not ask again) and waits for it; "+
			"give a longer timeouts { create } to wait longer, or end it with passport request end %s", got.ID, client.WaitingFor(got), stoppedWaiting(ctx, "create"), got.ID, s.conn.url, got.ID)}
	}
	if err != nil {
		return nil, s.conn.explain(err)
	}
	switch got.State {
	case string(ledger.Active):
	case string(ledger.Denied):
		why, _ := client.Denied(got)
		client.DropPending(got.ID)
		return nil, &failure{summary: "Access request denied", err: fmt.Errorf("access request %s was denied by %s", got.ID, why)}
	default:
		client.DropPending(got.ID)
		return nil, &failure{summary: "Access request not approved", err: fmt.Errorf("access request %s is %s: it had no approval in time, or was ended; apply again to ask anew", got.ID, got.State)}
	}
	client.DropPending(got.ID)
	return s.settle(got, nil, privateKey, seal)
}

// stoppedWaiting says why a wait for approval ended early: the
// operation's timeout, or Terraform stopping (Ctrl-C).
func stoppedWaiting(ctx context.Context, op string) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "the " + op + " timeout passed"
	}
	return "Terraform stopped waiting (interrupted)"
}

// idempotencyKey names one create for the service, so that its retry is
// recognised as the same call.
func idempotencyKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "terraform-" + hex.EncodeToString(b)
}

// lostOnTheWay says what a create's answer lacks when it was a second
// answer to a create asked again: the request may still be being granted,
// and the Windows passwords came only in the lost first answer. The
// request is kept in the state all the same (Terraform marks it to be
// replaced), so the next apply ends it and asks again.
func lostOnTheWay(req api.Request, g *access.Grant) error {
	if req.State != string(ledger.Active) {
		return fmt.Errorf("the connection to the Passport service dropped while it granted request %s, which is %s there now; the state keeps it and the next apply replaces it", req.ID, req.State)
	}
	var lost []string
	for _, t := range g.Targets {
		if t.Platform == access.Windows && t.Status == access.Active && g.Passwords[t.InstanceID] == "" {
			lost = append(lost, t.InstanceID)
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("the connection to the Passport service dropped while it granted request %s: the passwords of %s came only in the lost answer; the state keeps the request and the next apply replaces it", req.ID, strings.Join(lost, ", "))
	}
	return nil
}

// sealKey is the one-off key Windows hosts among targets seal their
// passwords to, or nil when there are none. Making an RSA-3072 key takes
// a second or more on a busy machine, so the service is asked first which
// instances are Windows; when it cannot say, the key is made anyway.
func (s serviceGrantor) sealKey(ctx context.Context, c *client.Client, targets []string) (*client.PasswordKey, error) {
	windows, err := c.Targets(ctx, client.TargetFilter{Platform: access.Windows})
	if err == nil && !slices.ContainsFunc(windows, func(in api.Instance) bool { return slices.Contains(targets, in.InstanceID) }) {
		return nil, nil
	}
	return client.NewPasswordKey()
}

// errSignerToService refuses to send a signer reference, which may be a
// CA's private key, to the service as a CA's name. Plan-time validation
// says the same; this catches a value that was unknown then.
var errSignerToService = &failure{summary: "Invalid certificate authority", attr: "certificate_authority",
	err: errors.New("with server, certificate_authority names one of the Passport service's certificate authorities, or is left out for its default. " +
		"This value is the signer of a passport_certificate_authority, which may be a private key, and is not sent to the service: the service owns its CAs")}

func (s serviceGrantor) extend(ctx context.Context, g *access.Grant, _ string, d time.Duration) (*access.Grant, error) {
	c, err := s.conn.client(ctx)
	if err != nil {
		return nil, err
	}
	req, err := c.Extend(ctx, g.ID, d)
	if err == nil && client.Waiting(req) {
		// The longer window waits for approval; the current one stands.
		say := func(r api.Request) {
			tflog.Info(ctx, "Passport: the longer window waits for approval: "+client.WaitingFor(r), map[string]any{
				"request": r.ID, "approve_with": "passport approve " + r.ID + " --server " + s.conn.url})
		}
		say(req)
		got, werr := c.Wait(ctx, g.ID, say)
		switch {
		case werr != nil && ctx.Err() != nil:
			return nil, &failure{summary: "Longer window waits for approval", err: fmt.Errorf("the window of access request %s until %s still waits for %s, and %s; the current window, until %s, stands. "+
				"An approver runs: passport approve %s --server %s. Then run terraform apply again: it waits for the same approval", g.ID, req.Extension.ExpiresAt.UTC().Format(time.RFC3339), client.WaitingFor(req), stoppedWaiting(ctx, "update"), req.ExpiresAt.UTC().Format(time.RFC3339), g.ID, s.conn.url)}
		case werr != nil:
			return nil, s.conn.explain(werr)
		case !got.ExpiresAt.Equal(got.IssuedAt.Add(d)):
			return nil, &failure{summary: "Longer window not approved", err: fmt.Errorf("the longer window of access request %s was denied, or had no approval in time; the window ends at %s as before (the audit trail says why)", g.ID, got.ExpiresAt.UTC().Format(time.RFC3339))}
		}
		req = got
	}
	return s.settle(req, err, g.PrivateKey, nil)
}

func (s serviceGrantor) setTargets(ctx context.Context, g *access.Grant, _ string, targets []string) (*access.Grant, error) {
	c, err := s.conn.client(ctx)
	if err != nil {
		return nil, err
	}
	seal, err := s.sealKey(ctx, c, targets)
	if err != nil {
		return nil, err
	}
	req, err := c.SetTargets(ctx, g.ID, targets, seal.Public())
	return s.settle(req, err, g.PrivateKey, seal)
}

func (s serviceGrantor) revoke(ctx context.Context, g *access.Grant) error {
	c, err := s.conn.client(ctx)
	if err != nil {
		return err
	}
	_, err = c.End(ctx, g.ID)
	if client.CodeOf(err) == api.CodeNotFound {
		return fmt.Errorf("%w\nThe Passport service at %s knows no request %s of whoever is signed in. If that is not its requester (%s), sign in as them and run this again; "+
			"if the service no longer has the request, its window ends it on every host and `terraform state rm` drops it from the state", err, s.conn.url, g.ID, g.Requester)
	}
	return s.conn.explain(err)
}

func (s serviceGrantor) check(ctx context.Context, g *access.Grant) (standing, error) {
	c, err := s.conn.client(ctx)
	if err != nil {
		return standing{}, err
	}
	req, err := c.Get(ctx, g.ID)
	if err != nil {
		return standing{}, s.conn.explain(err)
	}
	// Ended at the service (by an administrator, or its reconciler after
	// a policy change): the request no longer stands, whatever the hosts
	// would say.
	if ledger.State(req.State).Closed() {
		st := standing{ended: req.State, statuses: map[string]string{}}
		for _, t := range req.Targets {
			st.statuses[t.InstanceID] = t.Status
		}
		return st, nil
	}
	h, err := c.Check(ctx, g.ID)
	if err != nil {
		return standing{}, s.conn.explain(err)
	}
	return standing{Health: access.Health{Expired: h.Expired, Missing: h.Missing, Unreachable: h.Unreachable}}, nil
}

// platforms asks the service for the instances it manages; the ones of
// targets it knows are in the answer.
func (s serviceGrantor) platforms(ctx context.Context, targets []string) (map[string]string, error) {
	c, err := s.conn.client(ctx)
	if err != nil {
		return nil, err
	}
	listed, err := c.Targets(ctx, client.TargetFilter{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, in := range listed {
		if slices.Contains(targets, in.InstanceID) {
			out[in.InstanceID] = in.Platform
		}
	}
	return out, nil
}

// settle turns the service's answer into the access core's grant, so that
// the resources write the state alike in both modes: the request, or, when
// the call failed after touching hosts, the request as the error left it.
// Passwords are opened here with seal, the key only this process holds.
func (s serviceGrantor) settle(req api.Request, err error, privateKey string, seal *client.PasswordKey) (*access.Grant, error) {
	if err != nil {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Request == nil {
			return nil, s.conn.explain(err)
		}
		req = *ce.Request
	}
	g, gerr := grantOf(req, privateKey)
	if gerr != nil {
		return nil, errors.Join(err, gerr)
	}
	err = s.conn.explain(err)
	if seal != nil {
		var openErr error
		g.Passwords, openErr = seal.Open(req)
		err = errors.Join(err, openErr)
	}
	return g, err
}

// grantOf is the access core's grant for a request the service reported.
func grantOf(r api.Request, privateKey string) (*access.Grant, error) {
	serial, err := strconv.ParseUint(r.Serial, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("the Passport service reported request %s with serial %q, which is not a number: are the provider and the service of the same release?", r.ID, r.Serial)
	}
	g := &access.Grant{
		ID: r.ID, Username: r.Username, Requester: r.Requester, RequesterKind: policy.Kind(r.RequesterKind),
		Groups: r.Groups, Reason: r.Reason, Sudo: r.Sudo, IssuedAt: r.IssuedAt, ExpiresAt: r.ExpiresAt,
		PublicKey: r.PublicKey, PrivateKey: privateKey, Certificate: r.Certificate, Serial: serial, CAPublicKey: r.CAPublicKey,
	}
	for _, t := range r.Targets {
		g.Targets = append(g.Targets, access.Target{InstanceID: t.InstanceID, Platform: t.Platform, Status: access.TargetStatus(t.Status), Address: t.Address, Detail: t.Detail})
	}
	return g, nil
}
