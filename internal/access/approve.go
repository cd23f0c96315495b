package access

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// This file holds requests that policy grants only with approval: they
// are recorded pending and touch no host until the last approval, which
// starts their window; one denial, the deadline, or the requester ending
// them closes them unapproved. A longer window asked for an active
// request waits the same way while the current window stands.

// DefaultApprovalDeadline is how long a request waits for its approvals.
const DefaultApprovalDeadline = 30 * time.Minute

// DefaultReviewWithin is how long a break-glass grant may go unreviewed
// before it is overdue.
const DefaultReviewWithin = 24 * time.Hour

// Approvals configures requests that wait for approval, and break-glass.
type Approvals struct {
	// Deadline is how long a request, or a longer window, may wait for
	// its approvals before it ends unapproved; DefaultApprovalDeadline
	// when zero.
	Deadline time.Duration
	// ReviewWithin is how long after a break-glass grant someone else
	// must review it; DefaultReviewWithin when zero.
	ReviewWithin time.Duration
}

// maxComment bounds an approver's comment.
const maxComment = 512

// Approver is who approves, denies or reviews a request.
type Approver struct {
	Name   string
	Kind   policy.Kind
	Groups []string
}

func (a Approver) kind() string { return string(a.Kind) }

// is reports whether a is the principal named name of kind kind (empty
// for a person).
func (a Approver) is(name string, kind policy.Kind) bool {
	return a.Name == name && normalKind(a.Kind) == normalKind(kind)
}

func normalKind(k policy.Kind) policy.Kind {
	if k == "" {
		return policy.Person
	}
	return k
}

// Waiting reports whether g, as the core returned it, waits for
// approvals before it is granted.
func (g *Grant) Waiting() bool {
	return g.Approval != nil && g.Approval.Denied == nil && !g.Approval.Done()
}

// hold records g as waiting for the approvals policy asks: pending, its
// targets untouched, due for the reconciler at the deadline. The window
// asked for starts only when the last approval arrives.
func (s *Service) hold(ctx context.Context, g *Grant, approval *policy.ApprovalError) (*Grant, error) {
	g.Approval = s.newApproval(approval)
	// The requester's key, when Passport made it, would have to wait in
	// the ledger for the approval: the service never makes keys, and
	// nothing else holds requests.
	if g.PrivateKey != "" {
		return nil, invalid("public_key", "this request waits for approval, and only a request with your own public_key can wait: give public_key")
	}
	if err := s.create(ctx, g, ledger.Pending, ids(g.Targets, ""), ledger.Pending); err != nil {
		return nil, err
	}
	if err := s.event(ctx, g, ledger.ActionRequested, "", waitingDetail(g)); err != nil {
		return nil, s.closeWaiting(ctx, g, "the request could not be recorded in the audit trail, so it does not wait: "+err.Error())
	}
	return g, nil
}

func (s *Service) newApproval(a *policy.ApprovalError) *ledger.Approval {
	deadline := DefaultApprovalDeadline
	if s.approvals != nil && s.approvals.Deadline > 0 {
		deadline = s.approvals.Deadline
	}
	out := &ledger.Approval{Required: a.Approvals, Deadline: s.now().UTC().Truncate(time.Second).Add(deadline)}
	for _, ap := range a.Approvers {
		out.Approvers = append(out.Approvers, ap.String())
	}
	var why []string
	for _, t := range a.Targets {
		why = append(why, t.ID+": "+t.Why)
	}
	out.Why = strings.Join(why, "; ")
	return out
}

// waitingDetail is the requested event's detail for a request that waits.
func waitingDetail(g *Grant) string {
	d := fmt.Sprintf("waits for %s by %s until %s: %s on %d targets, reason: %s", plural(g.Approval.Required, "approval"), approverList(g.Approval),
		g.Approval.Deadline.UTC().Format(time.RFC3339), human(g.ExpiresAt.Sub(g.IssuedAt)), len(g.Targets), g.Reason)
	if len(g.Groups) > 0 {
		d += "; groups: " + strings.Join(g.Groups, ", ")
	}
	if g.Sudo {
		d += " (sudo)"
	}
	return d
}

func approverList(a *ledger.Approval) string {
	if len(a.Approvers) == 0 {
		return "approvers no policy names"
	}
	return strings.Join(a.Approvers, " or ")
}

// checkComment refuses comments that would not read well in the audit
// trail, as checkReason does reasons.
func checkComment(c string, required bool) error {
	switch {
	case !utf8.ValidString(c):
		return invalid("comment", "comment is not valid UTF-8")
	case required && strings.TrimSpace(c) == "":
		return invalid("comment", "comment is required: say why, for the requester and the audit trail")
	case utf8.RuneCountInString(c) > maxComment:
		return invalid("comment", "comment is %d characters long: at most %d are allowed", utf8.RuneCountInString(c), maxComment)
	}
	for _, r := range c {
		if !unicode.IsPrint(r) {
			return invalid("comment", "comment contains the non-printable character %U: write it on one line of plain text", r)
		}
	}
	return nil
}

// toDecide loads request id for by to approve or deny: what it waits for,
// provided by is someone policy lets decide on it.
func (s *Service) toDecide(ctx context.Context, by Approver, id string) (*Grant, ledger.Grant, *ledger.Approval, error) {
	g, rec, err := s.Load(ctx, id)
	if err != nil {
		return nil, ledger.Grant{}, nil, err
	}
	a, err := s.waitingFor(g, rec)
	if err != nil {
		return nil, ledger.Grant{}, nil, err
	}
	if err := s.mayApprove(ctx, by, g, false); err != nil {
		return nil, ledger.Grant{}, nil, err
	}
	return g, rec, a, nil
}

// waitingFor is the approval a loaded request waits for: its own while
// pending, its longer window's while active. It refuses a request that
// waits for nothing, or whose deadline has passed.
func (s *Service) waitingFor(g *Grant, rec ledger.Grant) (*ledger.Approval, error) {
	var a *ledger.Approval
	switch {
	case rec.State == ledger.Pending:
		a = g.Approval
	case rec.State == ledger.Active && g.Extension != nil:
		a = &g.Extension.Approval
	default:
		return nil, classed(Conflict, fmt.Errorf("request %s is %s and waits for no approval", g.ID, rec.State))
	}
	if !s.now().Before(a.Deadline) {
		return nil, classed(Conflict, fmt.Errorf("request %s waited for approval until %s, which has passed: the requester must ask again", g.ID, a.Deadline.UTC().Format(time.RFC3339)))
	}
	return a, nil
}

// mayApprove checks that by may approve (or deny, or review) g: not its
// requester, and permitted by policy's approve action on every target,
// asked with the request's context (the window waiting, for a longer
// one).
func (s *Service) mayApprove(ctx context.Context, by Approver, g *Grant, breakGlass bool) error {
	if by.is(g.Requester, g.RequesterKind) {
		return classed(Denied, fmt.Errorf("you made request %s: someone else must approve or review it", g.ID))
	}
	if s.authz == nil {
		return nil
	}
	end := g.ExpiresAt
	if g.Extension != nil {
		end = g.Extension.ExpiresAt
	}
	req := policy.Request{Subject: by.Name, Kind: by.Kind, Groups: by.Groups, Action: policy.Approve, Requester: g.Requester,
		Duration: end.Sub(g.IssuedAt), Reason: g.Reason, Sudo: g.Sudo, BreakGlass: breakGlass}
	for _, t := range g.Targets {
		req.Targets = append(req.Targets, policy.Instance{ID: t.InstanceID, Platform: g.platformOf(t.InstanceID)})
	}
	err := s.authz.Authorize(ctx, req)
	var denied *policy.DeniedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &denied):
		return &Error{Class: Denied, Err: fmt.Errorf("policy does not let you approve request %s: %w", g.ID, err)}
	}
	return classed(Unavailable, fmt.Errorf("whether you may approve request %s could not be checked against policy: %w", g.ID, err))
}

// Approve records by's approval of request id, which waits for approval
// (or whose longer window does), with an optional comment. Nobody
// approves their own request, each approver counts once, and policy's
// approve action must let them. The last required approval grants the
// request at once: its window starts now, ca (the CA the request names)
// signs, and the hosts are provisioned; for a longer window, the window
// moves. The returned Grant is the request as it now stands.
func (s *Service) Approve(ctx context.Context, by Approver, id, comment string, ca *sshca.CA) (*Grant, error) {
	if err := checkComment(comment, false); err != nil {
		return nil, err
	}
	s = s.as(by.Name)
	for attempt := 1; ; attempt++ {
		g, rec, a, err := s.toDecide(ctx, by, id)
		if err != nil {
			return nil, err
		}
		if i := slices.IndexFunc(a.Given, func(v ledger.Vote) bool { return by.is(v.By, policy.Kind(v.Kind)) }); i >= 0 {
			return nil, classed(Conflict, fmt.Errorf("you approved request %s at %s already: each approver counts once; it needs %d more, from %s",
				id, a.Given[i].At.UTC().Format(time.RFC3339), a.Required-len(a.Given), approverList(a)))
		}
		a.Given = append(a.Given, ledger.Vote{By: by.Name, Kind: by.kind(), At: s.now().UTC(), Comment: comment})
		detail := fmt.Sprintf("approval %d of %d", len(a.Given), a.Required)
		if comment != "" {
			detail += ": " + comment
		}
		var out *Grant
		switch {
		case rec.State == ledger.Active && a.Done():
			out, err = s.approveExtension(ctx, g, rec, ca, detail)
		case a.Done():
			out, err = s.approveRequest(ctx, g, rec, ca, detail)
		default:
			err = s.commit(ctx, g, rec, rec.State, "")
			if err == nil {
				out, err = g, s.event(ctx, g, ledger.ActionApproved, "", detail)
			}
		}
		if errors.Is(err, ledger.ErrConflict) && attempt < maxRecordRetries {
			continue // another approver or the reconciler wrote first: decide again
		}
		return out, err
	}
}

// approveRequest grants a waiting request whose last approval g carries:
// the window starts now, and the record moves from pending to
// provisioning in one write made on the version read, so that two last
// approvals racing grant once.
func (s *Service) approveRequest(ctx context.Context, g *Grant, rec ledger.Grant, ca *sshca.CA, detail string) (*Grant, error) {
	if err := checkCA(ca, g); err != nil {
		return nil, err
	}
	key, _, err := sshca.ParseUserPublicKey(g.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", g.ID, err)
	}
	d := g.ExpiresAt.Sub(g.IssuedAt)
	now := s.now().UTC().Truncate(time.Second)
	g.IssuedAt, g.ExpiresAt = now, now.Add(d)
	for i := range g.Targets {
		g.Targets[i].Status, g.Targets[i].Detail = "", ""
	}
	first := func(ctx context.Context, g *Grant, st ledger.State, pending []string, pend ledger.State) error {
		next := s.record(g, st, pending, pend, rec.Targets)
		next.Version, next.Lease, next.Groups, next.RequesterKind = rec.Version, rec.Lease, rec.Groups, rec.RequesterKind
		_, err := s.ledger.Update(ctx, next)
		return err
	}
	return s.provisionFirst(ctx, g, ca, key, first, func() error {
		return s.event(ctx, g, ledger.ActionApproved, "", detail+"; granted, the window starts now and ends "+g.ExpiresAt.UTC().Format(time.RFC3339))
	})
}

// approveExtension moves the window of an active request to the longer
// one its approvals were for: the approval is recorded first, on the
// version read, then the hosts take the new expiry.
func (s *Service) approveExtension(ctx context.Context, g *Grant, rec ledger.Grant, ca *sshca.CA, detail string) (*Grant, error) {
	if err := s.commit(ctx, g, rec, rec.State, ""); err != nil {
		return nil, err
	}
	if err := s.event(ctx, g, ledger.ActionApproved, "", detail+"; the window moves to end "+g.Extension.ExpiresAt.UTC().Format(time.RFC3339)); err != nil {
		return nil, err
	}
	return s.extend(ctx, g, ca, g.Extension.ExpiresAt.Sub(g.IssuedAt))
}

// Deny ends request id, which waits for approval, with by's comment
// (required): one denial ends it, and no host was ever touched. For a
// longer window waiting on an active request, the longer window is
// dropped and the current one stands. Only someone policy lets approve
// may deny, and never the requester, who ends their own request instead.
func (s *Service) Deny(ctx context.Context, by Approver, id, comment string) (*Grant, error) {
	if err := checkComment(comment, true); err != nil {
		return nil, err
	}
	s = s.as(by.Name)
	for attempt := 1; ; attempt++ {
		g, rec, a, err := s.toDecide(ctx, by, id)
		if err != nil {
			return nil, err
		}
		a.Denied = &ledger.Vote{By: by.Name, Kind: by.kind(), At: s.now().UTC(), Comment: comment}
		if rec.State == ledger.Active {
			err = s.dropExtension(ctx, g, rec, ledger.ActionApprovalDenied, "the longer window until "+g.Extension.ExpiresAt.UTC().Format(time.RFC3339)+" is denied: "+comment)
		} else {
			err = s.closeWaitingAt(ctx, g, rec, ledger.Denied, ledger.ActionApprovalDenied, comment)
		}
		if errors.Is(err, ledger.ErrConflict) && attempt < maxRecordRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		return g, nil
	}
}

// EndWaiting ends request id, which waits for approval, because its
// deadline passed (by the reconciler) or because someone ended it first
// (the requester withdrawing it, or whoever policy lets end it). For an
// active request whose longer window waits, only that longer window ends,
// and only once its deadline has passed. It reports whether it changed
// anything: a request that no longer waits is left alone.
func (s *Service) EndWaiting(ctx context.Context, by, id string, deadline bool) (bool, error) {
	s = s.as(by)
	for attempt := 1; ; attempt++ {
		g, rec, err := s.Load(ctx, id)
		if err != nil {
			return false, err
		}
		now := s.now()
		switch {
		case rec.State == ledger.Pending && deadline && !now.Before(g.Approval.Deadline):
			err = s.closeWaitingAt(ctx, g, rec, ledger.Expired, ledger.ActionApprovalExpired,
				fmt.Sprintf("no decision by %s: %d of %d approvals given", g.Approval.Deadline.UTC().Format(time.RFC3339), len(g.Approval.Given), g.Approval.Required))
		case rec.State == ledger.Pending && !deadline:
			err = s.closeWaitingAt(ctx, g, rec, ledger.Revoked, ledger.ActionWithdrawn, "ended before it was approved")
		case rec.State == ledger.Active && g.Extension != nil && !now.Before(g.Extension.Approval.Deadline):
			err = s.dropExtension(ctx, g, rec, ledger.ActionApprovalExpired,
				fmt.Sprintf("the longer window until %s had no decision by %s; the current window stands", g.Extension.ExpiresAt.UTC().Format(time.RFC3339), g.Extension.Approval.Deadline.UTC().Format(time.RFC3339)))
		default:
			return false, nil
		}
		if errors.Is(err, ledger.ErrConflict) && attempt < maxRecordRetries {
			continue
		}
		return err == nil, err
	}
}

// closeWaitingAt closes a pending request in state st (denied, expired,
// revoked), on the version read, with one audit event. Nothing was on a
// host, so nothing else is done.
func (s *Service) closeWaitingAt(ctx context.Context, g *Grant, rec ledger.Grant, st ledger.State, action ledger.Action, detail string) error {
	for i := range g.Targets {
		g.Targets[i].Status, g.Targets[i].Detail = "", ""
	}
	if err := s.commit(ctx, g, rec, st, st); err != nil {
		return err
	}
	return s.event(ctx, g, action, "", detail)
}

// closeWaiting closes a pending request g just created, which could not
// be kept, as failed, and returns why.
func (s *Service) closeWaiting(ctx context.Context, g *Grant, why string) error {
	err := classed(Unavailable, errors.New(why))
	rec, getErr := s.ledger.Get(ctx, g.ID)
	if getErr != nil {
		return errors.Join(err, getErr)
	}
	return errors.Join(err, s.commit(ctx, g, rec, ledger.Failed, ledger.Failed))
}

// dropExtension removes the longer window waiting on an active request,
// on the version read, with one audit event; the current window stands.
func (s *Service) dropExtension(ctx context.Context, g *Grant, rec ledger.Grant, action ledger.Action, detail string) error {
	g.Extension, g.clearExtension, g.Why = nil, true, detail
	if err := s.commit(ctx, g, rec, rec.State, ""); err != nil {
		return err
	}
	return s.event(ctx, g, action, "", detail)
}

// commit writes g's record in state st if the ledger still holds the
// version rec was read at: a decision about a waiting request (an
// approval, a denial, an expiry) is made on what was read, and made again
// from a new read when someone wrote in between (ErrConflict). With
// targetState, every target is recorded so.
func (s *Service) commit(ctx context.Context, g *Grant, rec ledger.Grant, st, targetState ledger.State) error {
	var all []string
	if targetState != "" {
		for _, t := range g.Targets {
			all = append(all, t.InstanceID)
		}
	}
	next := s.record(g, st, all, targetState, rec.Targets)
	next.Version, next.Lease, next.Groups, next.RequesterKind = rec.Version, rec.Lease, rec.Groups, rec.RequesterKind
	if rec.State.Closed() && st == rec.State {
		// A closed grant's record changes only in what it owes (a
		// review): its targets stay as they were closed.
		next.Targets = rec.Targets
	}
	if next.Extension == nil && !g.clearExtension {
		next.Extension = rec.Extension
	}
	_, err := s.ledger.Update(ctx, next)
	if err != nil && !errors.Is(err, ledger.ErrConflict) {
		return classed(Unavailable, fmt.Errorf("recording request %s in the ledger: %w", g.ID, err))
	}
	return err
}

// holdExtension records a longer window, which policy grants only with
// approval, as waiting on active grant g; the current window stands.
func (s *Service) holdExtension(ctx context.Context, g *Grant, end time.Time, approval *policy.ApprovalError) (*Grant, error) {
	if g.Extension != nil && s.now().Before(g.Extension.Approval.Deadline) && !g.Extension.ExpiresAt.Equal(end) {
		return nil, classed(Conflict, fmt.Errorf("request %s already waits for approval of a window until %s: wait for it, or end the request", g.ID, g.Extension.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	if g.Extension != nil && g.Extension.ExpiresAt.Equal(end) && s.now().Before(g.Extension.Approval.Deadline) {
		return g, nil // asked again, say by a retried apply: it waits already
	}
	for attempt := 1; ; attempt++ {
		rec, err := s.ledger.Get(ctx, g.ID)
		if err != nil {
			return nil, classed(Unavailable, err)
		}
		if rec.State != ledger.Active {
			return nil, classed(Conflict, fmt.Errorf("request %s is %s: only an active request's window changes", g.ID, rec.State))
		}
		next := g.clone()
		next.Extension = &ledger.Extension{ExpiresAt: end, Approval: *s.newApproval(approval)}
		err = s.commit(ctx, next, rec, ledger.Active, "")
		if errors.Is(err, ledger.ErrConflict) && attempt < maxRecordRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		a := next.Extension.Approval
		return next, s.event(ctx, next, ledger.ActionExtensionRequested, "", fmt.Sprintf("a window until %s waits for %s by %s until %s; the window until %s stands meanwhile",
			end.UTC().Format(time.RFC3339), plural(a.Required, "approval"), approverList(&a), a.Deadline.UTC().Format(time.RFC3339), g.ExpiresAt.UTC().Format(time.RFC3339)))
	}
}

// sealKey and openSealKey are the requester's password key as the ledger
// keeps it while a request waits.
func sealKey(g *Grant) string {
	if g.SealTo == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(g.SealTo)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(der)
}

// openSealKey reads what sealKey wrote; nil for none or a key that no
// longer reads, which then fails the Windows sealing check, by name.
func openSealKey(s string) *rsa.PublicKey {
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil || s == "" {
		return nil
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil
	}
	rk, _ := k.(*rsa.PublicKey)
	return rk
}
