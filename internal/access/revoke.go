package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Revoke removes g's user from every Active target: its processes end, the
// user, its home, principals, sudoers entry and grant record go, and the
// certificate's serial enters the host's revoked-keys list. A host that is
// already clean counts as revoked. This is the only revoke path, whoever
// asks: Terraform, the reconciler or an undo.
//
// Revoke updates g's targets in place. A target that could not be revoked
// stays Active, with a Detail saying why, and the error names it; calling
// Revoke again retries only those.
//
// With a ledger, the grant is recorded as revoking before any host is
// touched, and after as revoked (expired once its window has ended), or
// still revoking where a host did not answer, with one audit event per
// host. A ledger that cannot be written does not stop the revoke: removing
// access comes first, and the error says what is missing from the record.
//
// by is who ends the grant, as the audit trail names them: the requester,
// an administrator, or "reconciler/<host>".
func (s *Service) Revoke(ctx context.Context, by string, g *Grant) error {
	return s.as(by).revoke(ctx, g)
}

func (s *Service) revoke(ctx context.Context, g *Grant) error {
	if g == nil {
		return errors.New("access: Revoke of a nil grant")
	}
	pending := ids(g.Targets, Active)
	if len(pending) == 0 {
		// Nothing is left on a host; a record a killed run left open
		// (every target failed, say) is closed.
		return s.saveAfter(ctx, g, s.settled(g))
	}
	before := s.save(ctx, g, ledger.Revoking, pending, ledger.Revoking)
	err := s.revokeOn(ctx, g, pending)
	events := s.targetEvents(ctx, g, pending, ledger.ActionRevoked, ledger.ActionRevokeFailed)
	events = errors.Join(events, s.collectAfterRevoke(ctx, g, g.Username, pending))
	state := s.settled(g)
	after := s.saveAfter(ctx, g, state)
	if state == ledger.Expired {
		events = errors.Join(events, s.event(ctx, g, ledger.ActionExpired, "", "window ended "+g.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	return errors.Join(err, before, after, events)
}

// revokeOn runs the revoke program on targets of g. A target that is
// revoked becomes Revoked, or stays Failed when it was marked so (a failed
// provision, now certainly clean); one that is not becomes Active.
func (s *Service) revokeOn(ctx context.Context, g *Grant, targets []string) error {
	p, err := revokePrograms(g, targets)
	if err != nil {
		return fmt.Errorf("building the revoke program for %s: %w", g.ID, err)
	}
	runs, err := s.run(ctx, "revoke", g.ID, g.Username, p, targets, g.platformOf)
	if err != nil {
		return classed(HostFailure, fmt.Errorf("user %s was not revoked anywhere: %w", g.Username, err))
	}
	for _, h := range runs {
		t := g.target(h.id)
		switch {
		case !h.ok && h.gone:
			// A terminated or deregistered instance can never answer, and
			// a destroy that waited for it would fail forever. What it may
			// still hold dies at the window's end: the certificate expires
			// and the host's own sweep removes the user.
			t.Status, t.Detail = Revoked, fmt.Sprintf("SSM no longer manages %s (terminated or deregistered): nothing could be sent; the certificate expires and the host's own sweep removes the user at %s",
				h.id, g.ExpiresAt.UTC().Format(time.RFC3339))
		case !h.ok:
			t.Status, t.Detail = Active, "not revoked: "+h.why
			t.Failures++
		case t.Status != Failed:
			t.Status, t.Detail, t.Failures = Revoked, "", 0
		}
	}
	g.dropPasswords()
	var failed []hostRun
	for _, h := range failures(runs) {
		if !h.gone {
			failed = append(failed, h)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return classed(HostFailure, fmt.Errorf("user %s of request %s may still be on %s: revoke again once they answer; each host's own sweep removes the user after %s in any case:%s",
		g.Username, g.ID, plural(len(failed), "target"), g.ExpiresAt.UTC().Format(time.RFC3339), listing(failed)))
}

// collectAfterRevoke collects user's recordings from the Linux targets of g
// where the user is now gone: revoke ended their sessions, so the
// recordings are whole; and from its Windows targets the user's logons,
// logoffs and process creations in the Security log since the window
// began (revoke's logoff is among them). A failure is an audit event, not
// a failed revoke: the recordings stay on the host, and the events in its
// log, for the reconciler's next collection.
func (s *Service) collectAfterRevoke(ctx context.Context, g *Grant, user string, targets []string) error {
	if s.recordings == nil {
		return nil
	}
	var linux []string
	var windows []WindowsUser
	for _, id := range targets {
		t := g.target(id)
		switch {
		case t == nil || t.Status != Revoked:
		case isWindows(g.platformOf(id)) && (g.ID == "" || g.IssuedAt.IsZero()):
			// A stray user the sweep removed has no request to file its
			// events under; they stay in the host's Security log.
		case isWindows(g.platformOf(id)):
			windows = append(windows, WindowsUser{Instance: id, User: user, Request: g.ID, Since: g.IssuedAt.Add(-eventSkew)})
		default:
			linux = append(linux, id)
		}
	}
	var errs []error
	collected := s.CollectRecordings(context.WithoutCancel(ctx), s.actor, linux, []string{user})
	collected = append(collected, s.CollectWindowsEvents(context.WithoutCancel(ctx), s.actor, windows)...)
	for _, c := range collected {
		if c.Err != nil {
			errs = append(errs, s.event(ctx, g, ledger.ActionRecordingFailed, c.InstanceID, c.Err.Error()))
		}
	}
	return errors.Join(errs...)
}
