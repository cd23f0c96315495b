package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file is the ledger's outbox. When Options.Announce is on, every
// Create and Update compares the grant with the version it replaces and
// records what people should hear about (a Notice: approval needed,
// granted, ended...) in the grant's own record, in the same write as the
// change: a row for sqlite, the same item for DynamoDB, whose servers
// without transactions (dynalite) serve it as well. A write that adds a
// notice marks the grant as in the outbox (a sparse index), and a
// deliverer (internal/notify) reads the outbox, sends each grant's notices
// in order, and keeps its progress per sink in the grant's Delivery, a
// document of its own with its own version: delivering never moves the
// grant's version, so it never makes a writer's Update conflict.

// NoticeKind names what a notice announces.
type NoticeKind string

// The kinds of notices.
const (
	// NoticeApprovalNeeded: a request, or a longer window of an active
	// one, waits for approval.
	NoticeApprovalNeeded NoticeKind = "approval-needed"
	// NoticeApproved: an approver approved (one of Required).
	NoticeApproved NoticeKind = "approved"
	// NoticeDenied: an approver denied the request or its longer window.
	NoticeDenied NoticeKind = "denied"
	// NoticeApprovalExpired: nobody decided before the deadline.
	NoticeApprovalExpired NoticeKind = "approval-expired"
	// NoticeGranted: the user exists on the hosts; the window runs.
	NoticeGranted NoticeKind = "granted"
	// NoticeWindowChanged: an active grant's window was moved.
	NoticeWindowChanged NoticeKind = "window-changed"
	// NoticeExpiringSoon: the window ends within the expiry lead.
	NoticeExpiringSoon NoticeKind = "expiring-soon"
	// NoticeEnded: access ended (the window ran out, someone ended it, a
	// request was withdrawn or could not be provisioned).
	NoticeEnded NoticeKind = "ended"
	// NoticeRevoked: the reconciler revoked access policy no longer
	// permits; Detail says why.
	NoticeRevoked NoticeKind = "revoked"
	// NoticeBreakGlass: access was given at once by breaking the glass.
	NoticeBreakGlass NoticeKind = "break-glass"
	// NoticeReviewOverdue: a break-glass grant's review is overdue.
	NoticeReviewOverdue NoticeKind = "review-overdue"
	// NoticeReviewed: someone reviewed a break-glass grant.
	NoticeReviewed NoticeKind = "reviewed"
)

// NoticeKinds lists every kind, in the order a request meets them.
func NoticeKinds() []NoticeKind {
	return []NoticeKind{NoticeBreakGlass, NoticeApprovalNeeded, NoticeApproved, NoticeDenied, NoticeApprovalExpired, NoticeGranted,
		NoticeWindowChanged, NoticeExpiringSoon, NoticeEnded, NoticeRevoked, NoticeReviewOverdue, NoticeReviewed}
}

// Notice is one thing announced about a grant. Seq numbers a grant's
// notices from 1 in the order of the writes that made them, so (grant id,
// Seq) identifies a notice everywhere, and a receiver can order and
// de-duplicate what it is sent.
type Notice struct {
	Seq  int64      `json:"seq"`
	Kind NoticeKind `json:"kind"`
	At   time.Time  `json:"at"`
	// By is who acted: the approver, the reviewer, whoever ended it, the
	// reconciler.
	By string `json:"by,omitempty"`
	// Detail is the approver's comment, or why (the reconciler's reason).
	Detail string `json:"detail,omitempty"`
	// Urgent marks what must be seen at once: break-glass, an overdue
	// review, a revocation by policy.
	Urgent bool `json:"urgent,omitempty"`
	// State is the grant's state after the write.
	State State `json:"state"`
	// IssuedAt and ExpiresAt are the window the notice is about: the one
	// granted, or the longer one asked for.
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Required, Given, Approvers and Deadline describe the approval a
	// notice about approval is for.
	Required  int       `json:"required,omitempty"`
	Given     int       `json:"given,omitempty"`
	Approvers []string  `json:"approvers,omitempty"`
	Deadline  time.Time `json:"deadline,omitzero"`
}

// ID is the notice's idempotency key: the same on every replica and every
// retry.
func (n Notice) ID(grantID string) string { return fmt.Sprintf("%s.%d", grantID, n.Seq) }

// Cause is who makes a write and why. It is not stored: the ledger puts it
// on the notices the write makes.
type Cause struct {
	By string
	// Why is the reason for ending or refusing something, when the writer
	// has one beyond what the record says (the reconciler's policy
	// reason, an approver's comment on a longer window).
	Why string

	expiring bool // WarnExpiry's write
}

// Delivery is a deliverer's progress on a grant's notices: per sink, the
// last notice delivered (or given up on), and the attempts at the next.
// It has its own Version: SetDelivery writes it only over the version
// read, so two replicas never both take a grant's notices.
type Delivery struct {
	Version int64 `json:"-"`
	// Holder is the replica sending the grant's notices until Until.
	Holder string               `json:"holder,omitempty"`
	Until  time.Time            `json:"until,omitzero"`
	Sinks  map[string]*Progress `json:"sinks,omitempty"`
}

// Progress is one sink's delivery of a grant's notices.
type Progress struct {
	// Through is the Seq of the last notice delivered or dead-lettered.
	Through int64 `json:"through"`
	// Attempts at the next notice, failed since FailingSince; the next is
	// not before RetryAt.
	Attempts     int       `json:"attempts,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	RetryAt      time.Time `json:"retry_at,omitzero"`
	// Dead are the notices given up on, most recent last.
	Dead []int64 `json:"dead,omitempty"`
}

// Held reports whether someone other than holder is sending the grant's
// notices at now.
func (d Delivery) Held(holder string, now time.Time) bool {
	return d.Holder != "" && d.Holder != holder && now.Before(d.Until)
}

// DefaultExpiryNotice is how long before a window ends its grant is
// announced as expiring soon.
const DefaultExpiryNotice = 10 * time.Minute

// Notices are kept in the record for noticeKeep after they were made, and
// at most maxNotices of them: long enough for any delivery to finish or be
// dead-lettered (notify caps its dead-letter time well below), small
// enough that a record stays one small item.
const (
	noticeKeep = 7 * 24 * time.Hour
	maxNotices = 100
)

// MaxDeadLetterAfter bounds how long a notice may be retried: it must be
// delivered or given up on while the record still holds it.
const MaxDeadLetterAfter = 72 * time.Hour

// announce is what changed from cur (nil for a new grant) to next, as
// notices, numbered after cur's last.
func announce(cur, next *Grant, now time.Time) []Notice {
	var out []Notice
	add := func(n Notice) {
		n.At = now
		if n.By == "" {
			n.By = next.Cause.By
		}
		n.State = next.State
		if n.ExpiresAt.IsZero() {
			n.ExpiresAt = next.ExpiresAt
		}
		n.IssuedAt = next.IssuedAt
		out = append(out, n)
	}
	var was Grant // a new grant was nothing before
	if cur != nil {
		was = *cur
	}
	if next.BreakGlass && !was.BreakGlass {
		add(Notice{Kind: NoticeBreakGlass, By: next.Requester, Urgent: true, Detail: next.Reason})
	}
	if next.State == Pending && was.State != Pending {
		add(approvalNotice(NoticeApprovalNeeded, next.Approval, time.Time{}))
	}
	if next.Approval != nil {
		votes(add, was.Approval, next.Approval, time.Time{})
	}
	if e := next.Extension; e != nil {
		var before *Approval
		if was.Extension != nil && was.Extension.Approval.Deadline.Equal(e.Approval.Deadline) {
			before = &was.Extension.Approval
		} else {
			add(approvalNotice(NoticeApprovalNeeded, &e.Approval, e.ExpiresAt))
		}
		votes(add, before, &e.Approval, e.ExpiresAt)
	}
	if e := was.Extension; e != nil && next.Extension == nil && !next.ExpiresAt.Equal(e.ExpiresAt) {
		// The longer window is gone without becoming the window.
		n := approvalNotice(NoticeDenied, &e.Approval, e.ExpiresAt)
		n.Detail = next.Cause.Why
		if !now.Before(e.Approval.Deadline) {
			n.Kind, n.By = NoticeApprovalExpired, ""
		}
		add(n)
	}
	switch {
	case next.State == Active && (cur == nil || was.State == Provisioning || was.State == Pending):
		add(Notice{Kind: NoticeGranted, Urgent: next.BreakGlass})
	case next.State == Active && was.State == Active && !next.ExpiresAt.Equal(was.ExpiresAt):
		add(Notice{Kind: NoticeWindowChanged})
	case cur != nil && !was.State.Closed() && was.State != Revoking && (next.State == Revoking || next.State.Closed()):
		if n, ok := ending(&was, next, now); ok {
			add(n)
		}
	}
	if r := next.Review; r != nil {
		if !r.Reminded.IsZero() && (was.Review == nil || !was.Review.Reminded.Equal(r.Reminded)) {
			add(Notice{Kind: NoticeReviewOverdue, Urgent: true, Deadline: r.Due})
		}
		if r.Done() && !was.Review.Done() {
			add(Notice{Kind: NoticeReviewed, By: r.By, Detail: r.Comment, Deadline: r.Due})
		}
	}
	if next.Cause.expiring {
		add(Notice{Kind: NoticeExpiringSoon})
	}
	return out
}

// ending is the notice for a grant that leaves pending, provisioning or
// active to be revoked or closed; none for a denial, which its vote
// announced.
func ending(was, next *Grant, now time.Time) (Notice, bool) {
	switch {
	case next.State == Denied:
		return Notice{}, false
	case was.State == Pending && next.State == Expired:
		n := approvalNotice(NoticeApprovalExpired, was.Approval, time.Time{})
		n.By = ""
		return n, true
	case was.State == Pending:
		return Notice{Kind: NoticeEnded, Detail: "withdrawn before it was approved"}, true
	case next.Cause.Why != "":
		return Notice{Kind: NoticeRevoked, Urgent: true, Detail: next.Cause.Why}, true
	case next.State == Failed:
		return Notice{Kind: NoticeEnded, Detail: "it could not be provisioned; nothing was granted"}, true
	case next.State == Expired || !now.Before(next.ExpiresAt):
		return Notice{Kind: NoticeEnded, Detail: "the window ended"}, true
	}
	return Notice{Kind: NoticeEnded, Detail: "ended before its window did"}, true
}

func approvalNotice(kind NoticeKind, a *Approval, window time.Time) Notice {
	n := Notice{Kind: kind, ExpiresAt: window}
	if a != nil {
		n.Required, n.Given, n.Approvers, n.Deadline = a.Required, len(a.Given), a.Approvers, a.Deadline
	}
	return n
}

// votes announces the approvals and the denial next holds that before
// (the same approval as it was, nil when new) did not.
func votes(add func(Notice), before, next *Approval, window time.Time) {
	seen := 0
	if before != nil {
		seen = len(before.Given)
	}
	for i := seen; i < len(next.Given); i++ {
		n := approvalNotice(NoticeApproved, next, window)
		n.Given, n.By, n.Detail = i+1, next.Given[i].By, next.Given[i].Comment
		add(n)
	}
	if next.Denied != nil && (before == nil || before.Denied == nil) {
		n := approvalNotice(NoticeDenied, next, window)
		n.By, n.Detail = next.Denied.By, next.Denied.Comment
		add(n)
	}
}

// stamp numbers added after g's last notice and keeps the record's recent
// notices, in g.
func stamp(g *Grant, kept []Notice, lastSeq int64, added []Notice, now time.Time) {
	kept = slices.DeleteFunc(slices.Clone(kept), func(n Notice) bool { return now.Sub(n.At) > noticeKeep })
	for i := range added {
		lastSeq++
		added[i].Seq = lastSeq
		added[i].At = fromNanos(nanos(added[i].At))
		added[i].Deadline = fromNanos(nanos(added[i].Deadline))
		added[i].IssuedAt, added[i].ExpiresAt = fromNanos(nanos(added[i].IssuedAt)), fromNanos(nanos(added[i].ExpiresAt))
	}
	kept = append(kept, added...)
	if len(kept) > maxNotices {
		kept = kept[len(kept)-maxNotices:]
	}
	g.Notices, g.NoticeSeq = kept, lastSeq
}

// warned reports whether g's current window was announced as expiring.
func (g *Grant) warned() bool {
	return slices.ContainsFunc(g.Notices, func(n Notice) bool { return n.Kind == NoticeExpiringSoon && n.ExpiresAt.Equal(g.ExpiresAt) })
}

func encodeNotices(ns []Notice) (string, error) {
	if len(ns) == 0 {
		return "", nil
	}
	b, err := json.Marshal(ns)
	return string(b), err
}

func decodeNotices(id, s string) ([]Notice, error) {
	if s == "" {
		return nil, nil
	}
	var ns []Notice
	if err := json.Unmarshal([]byte(s), &ns); err != nil {
		return nil, fmt.Errorf("ledger: grant %s has unreadable notices: %w", id, err)
	}
	return ns, nil
}

func encodeDelivery(d Delivery) (string, error) {
	b, err := json.Marshal(d)
	return string(b), err
}

func decodeDelivery(id, s string, version int64) (Delivery, error) {
	d := Delivery{Version: version}
	if s == "" {
		return d, nil
	}
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return Delivery{}, fmt.Errorf("ledger: grant %s has an unreadable delivery record: %w", id, err)
	}
	d.Version = version
	d.Until = fromNanos(nanos(d.Until))
	return d, nil
}

// Announcements is signalled (without blocking) after a write of this
// Ledger that added notices, so a deliverer in the same process sends
// them at once instead of at its next poll.
func (l *Ledger) Announcements() <-chan struct{} { return l.announced }

// ExpiryNotice is how long before a window ends it is announced, when
// the ledger announces; 0 when it does not.
func (l *Ledger) ExpiryNotice() time.Duration {
	if !l.announce {
		return 0
	}
	return l.expiryNotice
}

func (l *Ledger) signal() {
	select {
	case l.announced <- struct{}{}:
	default:
	}
}

// Outbox lists the grants that may have notices some sink has not been
// sent, oldest first. It reads an index of those grants only.
func (l *Ledger) Outbox(ctx context.Context) ([]Grant, error) { return l.b.outboxGrants(ctx) }

// SetDelivery writes d as grant id's delivery record if the stored one is
// still at d.Version, and returns it at the next version; otherwise it
// returns a *ConflictError. The grant's own version does not move.
func (l *Ledger) SetDelivery(ctx context.Context, id string, d Delivery) (Delivery, error) {
	d.Until = fromNanos(nanos(d.Until))
	prev := d.Version
	d.Version++
	if err := l.b.putDelivery(ctx, id, d, prev); err != nil {
		return Delivery{}, err
	}
	return d, nil
}

// Settle takes grant id out of the outbox when its last notice is still
// through and its delivery record still at version: every sink has been
// sent everything. Otherwise (a notice was added, another replica wrote)
// it leaves the grant in the outbox and returns nil.
func (l *Ledger) Settle(ctx context.Context, id string, through, version int64) error {
	return l.b.settle(ctx, id, through, version)
}

// WarnExpiry announces that active grant id's window ends soon, once per
// window, when it ends within ExpiryNotice of now; it reports whether it
// did. by is who announces it (the reconciler).
func (l *Ledger) WarnExpiry(ctx context.Context, id, by string) (bool, error) {
	if !l.announce {
		return false, nil
	}
	for attempt := 1; ; attempt++ {
		g, err := l.Get(ctx, id)
		if err != nil {
			return false, err
		}
		now := l.now()
		if g.State != Active || g.warned() || now.Before(g.ExpiresAt.Add(-l.expiryNotice)) || !now.Before(g.ExpiresAt) {
			return false, nil
		}
		g.Cause = Cause{By: by, expiring: true}
		_, err = l.Update(ctx, g)
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		return err == nil, err
	}
}
