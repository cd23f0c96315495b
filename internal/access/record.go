package access

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// This file keeps the ledger in step with the hosts. The rule is the one
// DESIGN.md §6 states: the record of what may be on a host is written
// before the host is touched (provisioning, revoking), and what happened is
// written after, with one audit event per host. Without a Ledger in Config
// nothing is recorded.

// ledgerWriteTimeout bounds the writes made after the hosts have acted:
// they run even when the caller's context has ended, since a host change
// that is not on record is what the ledger exists to prevent.
const ledgerWriteTimeout = 30 * time.Second

// maxRecordRetries bounds read-and-write-again after a conflict: another
// writer (a reconciler taking its lease) moved the version in between.
const maxRecordRetries = 5

// FromRecord rebuilds the Grant that Revoke needs from the ledger's record
// of it. A target the record holds as provisioning, active or revoking may
// have the user, so it comes back Active; failed stays Failed; revoked and
// expired come back Revoked. There is no private key in a record.
func FromRecord(r ledger.Grant) *Grant {
	g := &Grant{
		ID:            r.ID,
		Username:      r.Username,
		Requester:     r.Requester,
		RequesterKind: policy.Kind(r.RequesterKind),
		Groups:        r.Groups,
		Reason:        r.Reason,
		Sudo:          r.Sudo,
		IssuedAt:      r.IssuedAt,
		ExpiresAt:     r.ExpiresAt,
		PublicKey:     r.PublicKey,
		Certificate:   r.Certificate,
		Serial:        r.Serial,
		CAPublicKey:   r.CAPublicKey,
		Approval:      r.Approval,
		Extension:     r.Extension,
		SealTo:        openSealKey(r.SealTo),
		BreakGlass:    r.BreakGlass,
		Review:        r.Review,
	}
	for _, t := range r.Targets {
		status := Active
		switch t.State {
		case ledger.Failed, ledger.Pending, ledger.Denied:
			// Nothing of a request that waited was ever on a host.
			status = Failed
		case ledger.Revoked, ledger.Expired:
			status = Revoked
		}
		g.Targets = append(g.Targets, Target{InstanceID: t.InstanceID, Platform: cmp.Or(t.Platform, Linux), Status: status, Address: t.Address, Detail: t.Detail, Failures: t.Failures})
	}
	return g
}

// Load reads grant id from the ledger, for callers that act on a grant by
// its id (the service, the reconciler) rather than on one they hold: the
// grant comes from the record, never from what a caller says it is. It
// fails with a NotFound error when the ledger has no such grant.
func (s *Service) Load(ctx context.Context, id string) (*Grant, ledger.Grant, error) {
	if s.ledger == nil {
		return nil, ledger.Grant{}, &Error{Class: Internal, Err: errors.New("access: Load needs a ledger")}
	}
	r, err := s.ledger.Get(ctx, id)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil, ledger.Grant{}, &Error{Class: NotFound, Field: "id", Err: fmt.Errorf("there is no access request %s: check the id (passport request list shows yours)", printable(id, 40))}
	case err != nil:
		return nil, ledger.Grant{}, classed(Unavailable, fmt.Errorf("reading access request %s from the ledger: %w", printable(id, 40), err))
	}
	return FromRecord(r), r, nil
}

// record is g as the ledger stores it in state st. Targets in pending are
// written as pend (the hosts being changed now); the others from their
// status. Targets that earlier records hold and g no longer has (removed
// by SetTargets, which drops only clean ones) stay on record as revoked.
func (s *Service) record(g *Grant, st ledger.State, pending []string, pend ledger.State, earlier []ledger.Target) ledger.Grant {
	r := ledger.Grant{
		ID:            g.ID,
		Requester:     g.Requester,
		RequesterKind: string(g.RequesterKind),
		Groups:        g.Groups,
		Reason:        g.Reason,
		Username:      g.Username,
		Sudo:          g.Sudo,
		Serial:        g.Serial,
		CAPublicKey:   g.CAPublicKey,
		PublicKey:     g.PublicKey,
		Certificate:   g.Certificate,
		IssuedAt:      g.IssuedAt,
		ExpiresAt:     g.ExpiresAt,
		State:         st,
		Approval:      g.Approval,
		Extension:     g.Extension,
		SealTo:        sealKey(g),
		BreakGlass:    g.BreakGlass,
		Review:        g.Review,
		Cause:         ledger.Cause{By: s.actorFor(g), Why: g.Why},
	}
	closed := s.closedState(g)
	for _, t := range g.Targets {
		lt := ledger.Target{InstanceID: t.InstanceID, Platform: t.Platform, Address: t.Address, Detail: t.Detail, Failures: t.Failures}
		switch {
		case slices.Contains(pending, t.InstanceID):
			// Zero failures marks an attempt under way (ledger.Target).
			lt.State, lt.Detail, lt.Failures = pend, "", 0
		case t.Status == Active && st == ledger.Revoking:
			lt.State = ledger.Revoking // a revoke that did not reach it
		case t.Status == Active:
			lt.State = ledger.Active
		case t.Status == Revoked:
			lt.State = closed
		default:
			lt.State = ledger.Failed
		}
		r.Targets = append(r.Targets, lt)
	}
	for _, t := range earlier {
		if !slices.ContainsFunc(g.Targets, func(n Target) bool { return n.InstanceID == t.InstanceID }) {
			if !t.State.Closed() {
				t.State = closed
			}
			r.Targets = append(r.Targets, t)
		}
	}
	return r
}

// closedState is how a revoked grant is recorded: expired when its window
// has ended (whoever revoked it), revoked when it was ended early.
func (s *Service) closedState(g *Grant) ledger.State {
	if s.now().Before(g.ExpiresAt) {
		return ledger.Revoked
	}
	return ledger.Expired
}

// settled is the state of a grant after a revoke or a failed provision:
// revoking while some target may still hold the user, else closed (failed
// when no target was ever provisioned).
func (s *Service) settled(g *Grant) ledger.State {
	if slices.ContainsFunc(g.Targets, func(t Target) bool { return t.Status == Active }) {
		return ledger.Revoking
	}
	if !slices.ContainsFunc(g.Targets, func(t Target) bool { return t.Status == Revoked }) {
		return ledger.Failed
	}
	return s.closedState(g)
}

// save writes g's record (see record), creating it the first time. A
// conflict with another writer is resolved by reading again: the hosts'
// outcome that g carries is the newer truth.
func (s *Service) save(ctx context.Context, g *Grant, st ledger.State, pending []string, pend ledger.State) error {
	if s.ledger == nil {
		return nil
	}
	for attempt := 1; ; attempt++ {
		cur, err := s.ledger.Get(ctx, g.ID)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			_, err = s.ledger.Create(ctx, s.record(g, st, pending, pend, nil))
		case err == nil:
			keepFailures(g, cur)
			next := s.record(g, st, pending, pend, cur.Targets)
			next.Version, next.Lease = cur.Version, cur.Lease
			if len(next.Groups) == 0 {
				// A grant rebuilt from Terraform's state does not carry
				// the groups it was made with; the record keeps them.
				next.Groups = cur.Groups
			}
			if next.RequesterKind == "" {
				next.RequesterKind = cur.RequesterKind
			}
			// Likewise what the request waited for, and what waits on it.
			if next.Approval == nil {
				next.Approval = cur.Approval
			}
			if next.Extension == nil && !g.clearExtension {
				next.Extension = cur.Extension
			}
			if next.SealTo == "" {
				next.SealTo = cur.SealTo
			}
			next.BreakGlass = next.BreakGlass || cur.BreakGlass
			if next.Review == nil {
				next.Review = cur.Review
			}
			_, err = s.ledger.Update(ctx, next)
		}
		// A grant someone else already closed (the reconciler, at the end
		// of its window) needs no revoking record: the revoke goes on for
		// whatever a host may still hold, and the audit trail records it.
		if errors.Is(err, ledger.ErrClosed) && (st == ledger.Revoking || st.Closed()) {
			return nil
		}
		retry := errors.Is(err, ledger.ErrConflict) || errors.Is(err, ledger.ErrExists)
		if err == nil || !retry || attempt == maxRecordRetries {
			if err != nil {
				return classed(Unavailable, fmt.Errorf("recording request %s as %s in the ledger: %w", g.ID, st, err))
			}
			return nil
		}
	}
}

// keepFailures carries the failed revoke attempts the record counts into
// g, which may come from Terraform's state and know none: the count goes
// on growing whoever retries, and so does the pause before a reconciler's
// next retry.
func keepFailures(g *Grant, cur ledger.Grant) {
	for i := range g.Targets {
		for _, t := range cur.Targets {
			if t.InstanceID == g.Targets[i].InstanceID {
				g.Targets[i].Failures = max(g.Targets[i].Failures, t.Failures)
			}
		}
	}
}

// create writes g's first record, and fails with a Conflict when its id is
// taken.
func (s *Service) create(ctx context.Context, g *Grant, st ledger.State, pending []string, pend ledger.State) error {
	if s.ledger == nil {
		return nil
	}
	_, err := s.ledger.Create(ctx, s.record(g, st, pending, pend, nil))
	if errors.Is(err, ledger.ErrExists) {
		return classed(Conflict, fmt.Errorf("request %s already exists: it was asked for before (a retried call?); look it up instead of asking again", g.ID))
	}
	if err != nil {
		return classed(Unavailable, fmt.Errorf("recording request %s in the ledger: %w", g.ID, err))
	}
	return nil
}

// saveAfter is save for the record of what the hosts did: it runs even
// when ctx has ended.
func (s *Service) saveAfter(ctx context.Context, g *Grant, st ledger.State) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerWriteTimeout)
	defer cancel()
	return s.save(ctx, g, st, nil, "")
}

// event appends one audit event about g.
func (s *Service) event(ctx context.Context, g *Grant, action ledger.Action, target, detail string) error {
	if s.ledger == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerWriteTimeout)
	defer cancel()
	_, err := s.ledger.Append(ctx, ledger.Event{
		Actor:   s.actorFor(g),
		Action:  action,
		GrantID: g.ID,
		Target:  target,
		Subject: g.Requester,
		Detail:  detail,
	})
	if err != nil {
		return classed(Unavailable, fmt.Errorf("recording %s of request %s in the audit trail: %w", action, g.ID, err))
	}
	return nil
}

// hostEvents appends one event per host run: ok for those that succeeded,
// failed (with the host's reason) for the others.
func (s *Service) hostEvents(ctx context.Context, g *Grant, runs []hostRun, ok, failed ledger.Action) error {
	var errs []error
	for _, h := range runs {
		if h.ok {
			errs = append(errs, s.event(ctx, g, ok, h.id, ""))
		} else {
			errs = append(errs, s.event(ctx, g, failed, h.id, h.why))
		}
	}
	return errors.Join(errs...)
}

// as is s for one call made by actor: a shallow copy whose audit events
// name who acted. A shared service acts for many people at once, so the
// actor travels with each call, never in the Service's configuration.
func (s *Service) as(actor string) *Service {
	c := *s
	c.actor = actor
	return &c
}

// actorFor is who the audit trail says acted: the actor the call was made
// by, else the requester.
func (s *Service) actorFor(g *Grant) string {
	if s.actor != "" {
		return s.actor
	}
	if g.Requester != "" {
		return g.Requester
	}
	return "passport"
}
