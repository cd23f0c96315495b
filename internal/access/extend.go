package access

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// Extend makes the window IssuedAt + duration, later or earlier than
// before: it signs a new certificate for the same key and moves the expiry
// on every Active target (AccountExpires on Windows ones). A window that
// would already have ended is refused; revoke the request instead.
//
// The old certificate is not revoked: it names the same user, and the user
// is removed at the new expiry, after which it opens nothing.
//
// On success the returned Grant is the new state. When some targets did not
// take the new expiry, it is returned too, with those targets' Detail set,
// alongside an error naming them: the new certificate exists either way.
//
// Where policy grants the longer window only with approval (and the
// service holds requests for approval), nothing changes on the hosts: the
// returned Grant keeps its window and carries the longer one in
// Extension, waiting; Approve moves the window once it is approved.
//
// by is who asks for the change, as the audit trail names them.
func (s *Service) Extend(ctx context.Context, by string, g *Grant, ca *sshca.CA, duration time.Duration) (*Grant, error) {
	return s.as(by).extend(ctx, g, ca, duration)
}

func (s *Service) extend(ctx context.Context, g *Grant, ca *sshca.CA, duration time.Duration) (*Grant, error) {
	if g == nil {
		return nil, errors.New("access: Extend of a nil grant")
	}
	if err := checkCA(ca, g); err != nil {
		return nil, err
	}
	d, err := checkDuration(duration)
	if err != nil {
		return nil, err
	}
	end := g.IssuedAt.Add(d)
	if now := s.now(); !end.After(now) {
		return nil, invalid("duration", "duration %s would end the window at %s, which has passed (now %s): give a longer duration, or revoke the request",
			d, end.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	// Shortening only takes access away, which policy never needs to allow;
	// asking would let a since-tightened policy keep a longer window alive.
	// A longer window whose approvals are all given was asked about then.
	approved := g.Extension != nil && g.Extension.Approval.Done() && g.Extension.ExpiresAt.Equal(end)
	if end.After(g.ExpiresAt) && !approved {
		approval, err := s.authorize(ctx, g.principal(), g.Reason, g.Sudo, g.BreakGlass, d, ids(g.Targets, Active), g.platformOf)
		if err != nil {
			return nil, err
		}
		if approval != nil {
			return s.holdExtension(ctx, g, end, approval)
		}
	}
	key, _, err := sshca.ParseUserPublicKey(g.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("grant %s: %w", g.ID, err)
	}
	next := g.clone()
	next.ExpiresAt = end
	// Whatever waited is decided now: granted, or made moot by this window.
	// A granted one is what the window now stands on: its approvals are
	// what a policy re-check finds.
	if approved {
		a := g.Extension.Approval
		next.Approval = &a
	}
	next.Extension, next.clearExtension = nil, g.Extension != nil
	if err := s.sign(ctx, ca, next, key); err != nil {
		return nil, err
	}
	active := ids(next.Targets, Active)
	if len(active) == 0 {
		return next, s.recordExtension(ctx, g, next, nil)
	}
	p, err := extendPrograms(next, active)
	if err != nil {
		return nil, fmt.Errorf("building the extend program for %s: %w", g.ID, err)
	}
	runs, err := s.run(ctx, "extend", g.ID, g.Username, p, active, next.platformOf)
	if err != nil {
		return nil, err
	}
	failed := failures(runs)
	for _, h := range failed {
		t := next.target(h.id)
		t.Detail = "expiry not moved: " + h.why
		if h.code == hostscript.ExitNotFound {
			t.Detail = "the user has vanished from this host: replace the request"
		}
	}
	recErr := s.recordExtension(ctx, g, next, failed)
	if len(failed) == 0 {
		return next, recErr
	}
	return next, errors.Join(classed(HostFailure, fmt.Errorf("the window of %s now ends at %s, but %s still hold the old expiry %s: run the change again once they answer:%s",
		g.ID, end.UTC().Format(time.RFC3339), plural(len(failed), "target"), g.ExpiresAt.UTC().Format(time.RFC3339), listing(failed))), recErr)
}

// recordExtension writes next's window and certificate to the ledger, so
// the reconciler ends the grant at the new expiry, and one audit event.
// Hosts that kept the old expiry are named in the event: after a longer
// window their own sweep ends the user early; after a shorter one the
// reconciler ends it at the recorded expiry.
func (s *Service) recordExtension(ctx context.Context, g, next *Grant, failed []hostRun) error {
	detail := fmt.Sprintf("window moved from %s to %s", g.ExpiresAt.UTC().Format(time.RFC3339), next.ExpiresAt.UTC().Format(time.RFC3339))
	for _, h := range failed {
		detail += "; not moved on " + h.id
	}
	return errors.Join(s.saveAfter(ctx, next, ledger.Active), s.event(ctx, next, ledger.ActionExtended, "", detail))
}

// clone copies g deeply enough that changing the copy's targets leaves g
// alone.
func (g *Grant) clone() *Grant {
	c := *g
	c.Targets = slices.Clone(g.Targets)
	c.Passwords = maps.Clone(g.Passwords)
	c.SealedPasswords = maps.Clone(g.SealedPasswords)
	return &c
}
