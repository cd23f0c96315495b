package access

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// Grant validates req, checks that every target is an online Linux or
// Windows node (refusing before any host is touched, naming each one that
// is not), signs a certificate for a fresh user, and provisions that user
// on every target in one fan-out per platform. Each Windows host makes the
// user's password itself; the Grant carries them in Passwords.
//
// When a target fails, Grant removes the user again from every target that
// may have been touched and returns an error listing each failure. The
// returned Grant is then nil, unless a host could not be cleaned: it comes
// back with those targets Active, for the caller to keep and revoke later.
func (s *Service) Grant(ctx context.Context, req Request) (*Grant, error) {
	d, err := s.checkRequest(req)
	if err != nil {
		return nil, err
	}
	key, err := requesterKey(req.PublicKey)
	if err != nil {
		return nil, err
	}
	inv, err := s.inventory(ctx, req.Targets)
	if err != nil {
		return nil, err
	}
	if err := s.checkSealing(req.SealTo, req.Targets, platformIn(inv)); err != nil {
		return nil, err
	}
	if req.BreakGlass && s.approvals == nil {
		return nil, invalid("break_glass", "break-glass is the Passport service's: only there is it announced to everyone and reviewed afterwards; ask through the service")
	}
	who := principal{req.Requester, req.RequesterKind, req.Groups}
	approval, err := s.authorize(ctx, who, req.Reason, req.Sudo, req.BreakGlass, d, req.Targets, platformIn(inv))
	if err != nil {
		return nil, err
	}
	if approval != nil && req.BreakGlass {
		return nil, &Error{Class: Denied, Err: fmt.Errorf("break-glass is not yours here: policy grants this only with approval, not at once:\n%w\nAsk without break-glass to wait for the approvals", approval)}
	}
	// Whole seconds, UTC: the window is then exactly what the certificate,
	// the hosts' records and a caller's saved state can hold.
	now := s.now().UTC().Truncate(time.Second)
	g := &Grant{
		ID:            cmp.Or(req.ID, newGrantID()),
		Requester:     req.Requester,
		RequesterKind: req.RequesterKind,
		Groups:        slices.Clone(req.Groups),
		SealTo:        req.SealTo,
		Reason:        req.Reason,
		Sudo:          req.Sudo,
		IssuedAt:      now,
		ExpiresAt:     now.Add(d),
		PublicKey:     key.line,
		PrivateKey:    key.privatePEM,
		CAPublicKey:   authorizedKey(req.CA.PublicKey()),
		BreakGlass:    req.BreakGlass,
	}
	for _, id := range req.Targets {
		g.Targets = append(g.Targets, Target{InstanceID: id, Platform: inv[id].PlatformType, Address: inv[id].IPAddress})
	}
	if approval != nil {
		return s.hold(ctx, g, approval)
	}
	if g.BreakGlass {
		g.Review = &ledger.Review{Due: now.Add(s.reviewWithin())}
	}
	return s.provisionFirst(ctx, g, req.CA, key.public, s.create, func() error {
		err := s.event(ctx, g, ledger.ActionRequested, "", requestedDetail(g))
		if err == nil && g.BreakGlass {
			// Loud before anything touches a host: the trail says so even
			// if the grant goes no further.
			err = s.event(ctx, g, ledger.ActionBreakGlass, "", fmt.Sprintf("break-glass access at once, without approval; someone else must review it by %s", g.Review.Due.UTC().Format(time.RFC3339)))
		}
		return err
	})
}

// provisionFirst signs g's certificate for a fresh user and provisions it
// on every target, recording the grant first with record (which creates
// it, or moves a waiting request on) and then recorded (its first audit
// event). A failed target is undone everywhere; a name a host already
// has is tried once more under another.
func (s *Service) provisionFirst(ctx context.Context, g *Grant, ca *sshca.CA, key ssh.PublicKey, record saveFunc, recorded func() error) (*Grant, error) {
	targets := make([]string, len(g.Targets))
	for i, t := range g.Targets {
		targets[i] = t.InstanceID
	}
	for attempt := 1; ; attempt++ {
		g.Username = s.newUsername()
		if err := s.sign(ctx, ca, g, key); err != nil {
			return nil, err
		}
		// On record before any host is touched: an apply killed from here
		// on leaves a record naming the user and the hosts it may be on.
		// The first record is created, never updated: an id a caller
		// picked and sent twice is granted once.
		save := s.save
		if attempt == 1 {
			save = record
		}
		if err := save(ctx, g, ledger.Provisioning, targets, ledger.Provisioning); err != nil {
			return nil, fmt.Errorf("no host was touched: %w", err)
		}
		if attempt == 1 {
			if err := recorded(); err != nil {
				return nil, s.abandon(ctx, g, fmt.Errorf("no host was touched: %w", err))
			}
		}
		runs, err := s.provision(ctx, g, targets)
		if err != nil {
			return nil, s.abandon(ctx, g, err)
		}
		failed := failures(runs)
		if len(failed) == 0 {
			for i := range g.Targets {
				g.Targets[i].Status, g.Targets[i].Detail = Active, ""
			}
			if err := errors.Join(s.saveAfter(ctx, g, ledger.Active), s.hostEvents(ctx, g, runs, ledger.ActionProvisioned, ledger.ActionProvisionFailed)); err != nil {
				return s.unrecorded(ctx, g, err)
			}
			return g, nil
		}
		left, undoErr := s.undo(ctx, g, runs)
		recErr := errors.Join(s.hostEvents(ctx, g, runs, ledger.ActionProvisioned, ledger.ActionProvisionFailed), s.undoneEvents(ctx, g, runs))
		conflictsOnly := !slices.ContainsFunc(failed, func(h hostRun) bool { return h.code != hostscript.ExitConflict })
		if attempt == 1 && conflictsOnly && undoErr == nil {
			continue
		}
		// A request that was never granted is failed, even where a host
		// was provisioned and undone; only a host that kept the user keeps
		// it open, revoking, for the reconciler.
		state := ledger.Failed
		if left != nil {
			state = ledger.Revoking
		}
		recErr = errors.Join(recErr, s.saveAfter(ctx, g, state))
		return left, errors.Join(grantFailed(g, len(runs), failed, undoErr), recErr)
	}
}

// saveFunc records g in state st, its targets in pending as pend.
type saveFunc func(ctx context.Context, g *Grant, st ledger.State, pending []string, pend ledger.State) error

// requestedDetail is the requested event's detail: what was asked for,
// never a key or certificate.
func requestedDetail(g *Grant) string {
	d := fmt.Sprintf("user %s until %s on %d targets, reason: %s", g.Username, g.ExpiresAt.UTC().Format(time.RFC3339), len(g.Targets), g.Reason)
	if len(g.Groups) > 0 {
		d += "; groups: " + strings.Join(g.Groups, ", ")
	}
	if g.Sudo {
		d += " (sudo)"
	}
	return d
}

// abandon records a grant that never reached a host as failed and returns
// err, with the ledger's own failure added if recording failed too.
func (s *Service) abandon(ctx context.Context, g *Grant, err error) error {
	for i := range g.Targets {
		g.Targets[i].Status, g.Targets[i].Detail = Failed, "not provisioned: "+err.Error()
	}
	return errors.Join(err, s.saveAfter(ctx, g, ledger.Failed), s.event(ctx, g, ledger.ActionProvisionFailed, "", err.Error()))
}

// unrecorded undoes a grant whose success could not be written down:
// access the ledger does not know of would be revoked by no reconciler and
// explained by no audit trail, so it is not given.
func (s *Service) unrecorded(ctx context.Context, g *Grant, recErr error) (*Grant, error) {
	err := fmt.Errorf("access request %s was provisioned but could not be recorded, so user %s is being removed again: %w", g.ID, g.Username, recErr)
	if revErr := s.revokeOn(context.WithoutCancel(ctx), g, ids(g.Targets, Active)); revErr != nil {
		return g, errors.Join(err, revErr)
	}
	return nil, errors.Join(err, s.saveAfter(ctx, g, s.settled(g)))
}

// undoneEvents records the hosts where provisioning succeeded and was
// removed again because others failed.
func (s *Service) undoneEvents(ctx context.Context, g *Grant, runs []hostRun) error {
	var errs []error
	for _, h := range runs {
		if !h.ok {
			continue
		}
		if t := g.target(h.id); t.Status == Active {
			errs = append(errs, s.event(ctx, g, ledger.ActionRevokeFailed, h.id, "undo after a failed request: "+t.Detail))
		} else {
			errs = append(errs, s.event(ctx, g, ledger.ActionRevoked, h.id, "undone: the request failed on other targets"))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) checkRequest(req Request) (time.Duration, error) {
	if req.ID != "" && !grantID.MatchString(req.ID) {
		return 0, invalid("id", "id %q is not a request id: ar- and 16 lower-case hex digits", printable(req.ID, 40))
	}
	if err := checkReason(req.Reason); err != nil {
		return 0, err
	}
	if err := checkTargets(req.Targets); err != nil {
		return 0, err
	}
	d, err := checkDuration(req.Duration)
	if err != nil {
		return 0, err
	}
	if err := checkCA(req.CA, nil); err != nil {
		return 0, err
	}
	if err := checkGroups(req.Groups); err != nil {
		return 0, err
	}
	return d, checkRequester(req.Requester)
}

// sign issues g's certificate for key: principals exactly g's user, the
// window from IssuedAt (back-dated by sshca) to ExpiresAt, a key id naming
// the request and the requester, a random serial, and a terminal but no
// forwarding of any kind.
func (s *Service) sign(ctx context.Context, ca *sshca.CA, g *Grant, key ssh.PublicKey) error {
	cert, err := ca.Sign(ctx, sshca.CertRequest{
		PublicKey:   key,
		Username:    g.Username,
		KeyID:       sshca.KeyID(g.ID, g.Requester, g.Groups...),
		ValidAfter:  g.IssuedAt,
		ValidBefore: g.ExpiresAt,
		PermitPTY:   true,
	})
	if err != nil {
		return classed(Unavailable, err)
	}
	g.Certificate = authorizedKey(cert)
	g.Serial = cert.Serial
	return nil
}

// provision creates g's user on targets, in one fan-out per platform (and
// one more for hosts policy requires to record, see provisionRecorded),
// and opens the passwords the Windows hosts among them made.
func (s *Service) provision(ctx context.Context, g *Grant, targets []string) ([]hostRun, error) {
	return s.provisionRecorded(ctx, g, targets)
}

// provisionWith is provision of one fan-out; requireRecording makes the
// Linux hosts refuse the grant where they cannot record.
func (s *Service) provisionWith(ctx context.Context, g *Grant, targets []string, requireRecording bool) ([]hostRun, error) {
	p, key, err := provisionPrograms(g, targets, requireRecording)
	if err != nil {
		return nil, fmt.Errorf("building the provision program for %s: %w", g.ID, err)
	}
	runs, err := s.run(ctx, "provision", g.ID, g.Username, p, targets, g.platformOf)
	if err != nil {
		return nil, err
	}
	switch {
	case g.SealTo != nil:
		keepSealed(g, runs)
	case key != nil:
		openPasswords(g, key, runs)
	}
	return runs, nil
}

// undo revokes g on every host of runs that may have been touched, and
// marks g's targets: Failed where provisioning failed and the host is
// clean, Revoked where it succeeded and was undone, Active where the user
// may still be. It returns g when something may be left on a host, nil
// otherwise, and an error naming each host that could not be cleaned.
func (s *Service) undo(ctx context.Context, g *Grant, runs []hostRun) (*Grant, error) {
	var touched []string
	for _, h := range runs {
		t := g.target(h.id)
		t.Status, t.Detail = Failed, h.why
		if h.ok {
			t.Status, t.Detail = Active, ""
		}
		if !h.untouched() {
			touched = append(touched, h.id)
		}
	}
	if len(touched) == 0 {
		return nil, nil
	}
	// The undo must run even when the caller's context is what ended the
	// provision (a Terraform timeout, an interrupt): leaving users behind
	// is worse than overrunning. It keeps its own bound, s.timeout.
	err := s.revokeOn(context.WithoutCancel(ctx), g, touched)
	if slices.ContainsFunc(g.Targets, func(t Target) bool { return t.Status == Active }) {
		return g, err
	}
	return nil, err
}

// target returns g's target with that id; it must exist.
func (g *Grant) target(id string) *Target {
	for i := range g.Targets {
		if g.Targets[i].InstanceID == id {
			return &g.Targets[i]
		}
	}
	panic("access: grant " + g.ID + " has no target " + id)
}

func grantFailed(g *Grant, total int, failed []hostRun, undoErr error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "access request %s was not granted: %s of %d failed", g.ID, plural(len(failed), "target"), total)
	if undoErr == nil {
		b.WriteString(", and user " + g.Username + " was removed again wherever it had been created")
	}
	b.WriteString(":" + listing(failed))
	if undoErr != nil {
		b.WriteString("\n" + undoErr.Error())
	}
	return classed(HostFailure, errors.New(b.String()))
}
