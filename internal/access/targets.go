package access

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// SetTargets makes targets g's hosts: added ones get the same user and
// certificate (checked first, like a new request's), removed ones are
// revoked, the others are left alone. A target listed again after it failed
// or was revoked is provisioned again.
//
// An added target that fails is undone and comes back Failed, with the
// error naming it; the grant keeps its other targets. A removed target that
// could not be revoked stays in the returned Grant as Active, so it is not
// forgotten. The returned Grant is the new state whenever it is not nil,
// error or not.
//
// by is who asks for the change, as the audit trail names them.
func (s *Service) SetTargets(ctx context.Context, by string, g *Grant, ca *sshca.CA, targets []string) (*Grant, error) {
	return s.as(by).setTargets(ctx, g, ca, targets)
}

func (s *Service) setTargets(ctx context.Context, g *Grant, ca *sshca.CA, targets []string) (*Grant, error) {
	if g == nil {
		return nil, errors.New("access: SetTargets of a nil grant")
	}
	if err := checkCA(ca, g); err != nil {
		return nil, err
	}
	if err := checkTargets(targets); err != nil {
		return nil, err
	}
	if !s.now().Before(g.ExpiresAt) {
		return nil, classed(Conflict, fmt.Errorf("request %s has expired: targets cannot change; make a new request", g.ID))
	}
	old := make(map[string]Target, len(g.Targets))
	for _, t := range g.Targets {
		old[t.InstanceID] = t
	}
	var added, removed []string
	for _, id := range targets {
		if old[id].Status != Active {
			added = append(added, id)
		}
	}
	for _, t := range g.Targets {
		if t.Status == Active && !slices.Contains(targets, t.InstanceID) {
			removed = append(removed, t.InstanceID)
		}
	}
	next := g.clone()
	var errs []error
	if len(added) > 0 {
		inv, err := s.inventory(ctx, added)
		if err != nil {
			return nil, err
		}
		if err := s.checkSealing(g.SealTo, added, platformIn(inv)); err != nil {
			return nil, err
		}
		approval, err := s.authorize(ctx, g.principal(), g.Reason, g.Sudo, g.BreakGlass, g.ExpiresAt.Sub(g.IssuedAt), added, platformIn(inv))
		if approval != nil {
			err = &Error{Class: Denied, Err: fmt.Errorf("%w\nA request's targets change at once or not at all: ask for these in a request of their own, which waits for its approvals", approval)}
		}
		if err != nil {
			return nil, err
		}
		// A host this request left earlier holds the certificate's serial in
		// its revoked keys, and so does one whose provision failed and was
		// undone: added hosts get a fresh certificate for the same key and
		// window. The previous one still opens the hosts it opened.
		key, _, err := sshca.ParseUserPublicKey(g.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("grant %s: %w", g.ID, err)
		}
		if err := s.sign(ctx, ca, next, key); err != nil {
			return nil, err
		}
		next.Targets = slices.DeleteFunc(next.Targets, func(t Target) bool { return slices.Contains(added, t.InstanceID) })
		for _, id := range added {
			next.Targets = append(next.Targets, Target{InstanceID: id, Platform: inv[id].PlatformType, Status: Active, Address: inv[id].IPAddress})
		}
		if err := s.save(ctx, next, ledger.Active, added, ledger.Provisioning); err != nil {
			return nil, fmt.Errorf("no host was touched: %w", err)
		}
		if err := s.add(ctx, next, added); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, s.targetEvents(ctx, next, added, ledger.ActionProvisioned, ledger.ActionProvisionFailed))
	}
	if len(removed) > 0 {
		// As in Revoke, a ledger that cannot be written does not keep a
		// removed host's access alive.
		errs = append(errs, s.save(ctx, next, ledger.Active, removed, ledger.Revoking))
		if err := s.revokeOn(ctx, next, removed); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, s.targetEvents(ctx, next, removed, ledger.ActionRevoked, ledger.ActionRevokeFailed))
		errs = append(errs, s.collectAfterRevoke(ctx, next, next.Username, removed))
	}
	// The new order is the caller's; targets that are gone and clean are
	// dropped, those that may still hold the user follow.
	order := func(id string) int {
		if i := slices.Index(targets, id); i >= 0 {
			return i
		}
		return len(targets)
	}
	next.Targets = slices.DeleteFunc(next.Targets, func(t Target) bool {
		return !slices.Contains(targets, t.InstanceID) && t.Status != Active
	})
	slices.SortStableFunc(next.Targets, func(a, b Target) int { return order(a.InstanceID) - order(b.InstanceID) })
	next.dropPasswords()
	errs = append(errs, s.saveAfter(ctx, next, ledger.Active))
	return next, errors.Join(errs...)
}

// targetEvents appends one event per target of changed: ok where it
// reached the status the change wanted, failed (with its Detail) where not.
func (s *Service) targetEvents(ctx context.Context, g *Grant, changed []string, ok, failed ledger.Action) error {
	want := Active
	if ok == ledger.ActionRevoked {
		want = Revoked
	}
	var errs []error
	for _, id := range changed {
		if t := g.target(id); t.Status == want {
			errs = append(errs, s.event(ctx, g, ok, id, ""))
		} else {
			errs = append(errs, s.event(ctx, g, failed, id, t.Detail))
		}
	}
	return errors.Join(errs...)
}

// add provisions g's user on added targets and undoes the ones that fail.
func (s *Service) add(ctx context.Context, g *Grant, added []string) error {
	runs, err := s.provision(ctx, g, added)
	if err != nil {
		for _, id := range added {
			t := g.target(id)
			t.Status, t.Detail = Failed, err.Error()
		}
		return err
	}
	failed := failures(runs)
	if len(failed) == 0 {
		return nil
	}
	var touched []string
	for _, h := range failed {
		t := g.target(h.id)
		t.Status, t.Detail = Failed, h.why
		if !h.untouched() {
			touched = append(touched, h.id)
		}
	}
	msg := fmt.Sprintf("%s could not be added to request %s; the others keep their access:%s", plural(len(failed), "target"), g.ID, listing(failed))
	if len(touched) == 0 {
		return classed(HostFailure, errors.New(msg))
	}
	if err := s.revokeOn(context.WithoutCancel(ctx), g, touched); err != nil {
		return classed(HostFailure, fmt.Errorf("%s\n%w", msg, err))
	}
	return classed(HostFailure, errors.New(msg+"\nPassport removed user "+g.Username+" from them again."))
}
