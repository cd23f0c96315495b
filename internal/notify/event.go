package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Event is the body of a generic webhook: one notice, with the request it
// is about. Its fields are documented in docs/guides/notifications.md;
// new fields may be added, none is removed or changes meaning.
type Event struct {
	// ID is the idempotency key, the same on every retry and replica:
	// "<request id>.<seq>".
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Seq numbers a request's events from 1 in the order they happened.
	Seq    int64  `json:"seq"`
	Urgent bool   `json:"urgent"`
	By     string `json:"by,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Summary is the event in one line, as Slack shows it.
	Summary string `json:"summary"`
	// Command is what the reader may run about it: passport approve ID
	// for a request that needs approval, passport review ID for a
	// break-glass grant.
	Command  string         `json:"command,omitempty"`
	Request  EventRequest   `json:"request"`
	Approval *EventApproval `json:"approval,omitempty"`
	Review   *EventReview   `json:"review,omitempty"`
}

// EventRequest is the request an event is about.
type EventRequest struct {
	ID         string    `json:"id"`
	Requester  string    `json:"requester"`
	Reason     string    `json:"reason"`
	State      string    `json:"state"`
	Targets    []string  `json:"targets"`
	Sudo       bool      `json:"sudo"`
	BreakGlass bool      `json:"break_glass"`
	IssuedAt   time.Time `json:"issued_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// EventApproval is the approval an approval event is about.
type EventApproval struct {
	Required  int       `json:"required"`
	Given     int       `json:"given"`
	Approvers []string  `json:"approvers,omitempty"`
	Deadline  time.Time `json:"deadline"`
}

// EventReview is the review a break-glass grant owes.
type EventReview struct {
	Due time.Time `json:"due"`
}

// NewEvent is notice n of grant g as a webhook sends it.
func NewEvent(g ledger.Grant, n ledger.Notice) Event {
	e := Event{
		ID: n.ID(g.ID), Type: string(n.Kind), Time: n.At.UTC(), Seq: n.Seq, Urgent: n.Urgent, By: n.By, Detail: n.Detail,
		Request: EventRequest{ID: g.ID, Requester: g.Requester, Reason: g.Reason, State: string(n.State), Sudo: g.Sudo, BreakGlass: g.BreakGlass,
			IssuedAt: n.IssuedAt.UTC(), ExpiresAt: n.ExpiresAt.UTC(), Targets: []string{}},
	}
	for _, t := range g.Targets {
		e.Request.Targets = append(e.Request.Targets, t.InstanceID)
	}
	switch n.Kind {
	case ledger.NoticeApprovalNeeded, ledger.NoticeApproved, ledger.NoticeDenied, ledger.NoticeApprovalExpired:
		e.Approval = &EventApproval{Required: n.Required, Given: n.Given, Approvers: n.Approvers, Deadline: n.Deadline.UTC()}
	case ledger.NoticeReviewOverdue, ledger.NoticeReviewed:
		e.Review = &EventReview{Due: n.Deadline.UTC()}
	}
	switch n.Kind {
	case ledger.NoticeApprovalNeeded:
		e.Command = "passport approve " + g.ID
	case ledger.NoticeBreakGlass, ledger.NoticeReviewOverdue:
		e.Command = "passport review " + g.ID + ` --comment "..."`
	}
	e.Summary = summary(e)
	return e
}

const stamp = "2006-01-02 15:04 UTC"

func when(t time.Time) string { return t.UTC().Format(stamp) }

// targets names up to five targets, then how many more.
func targets(ts []string) string {
	switch {
	case len(ts) == 0:
		return "no targets"
	case len(ts) > 5:
		return fmt.Sprintf("%s and %d more", strings.Join(ts[:5], ", "), len(ts)-5)
	}
	return strings.Join(ts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func comment(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// summary is e in one line of plain text.
func summary(e Event) string {
	r := e.Request
	on := targets(r.Targets)
	if r.Sudo {
		on += " (sudo)"
	}
	switch ledger.NoticeKind(e.Type) {
	case ledger.NoticeBreakGlass:
		return fmt.Sprintf("BREAK-GLASS: %s broke the glass for %s until %s, reason: %s. Someone else must review it: %s", r.Requester, on, when(r.ExpiresAt), r.Reason, e.Command)
	case ledger.NoticeApprovalNeeded:
		a := e.Approval
		ask := fmt.Sprintf("%s asks for %s of access to %s, reason: %s.", r.Requester, human(r.ExpiresAt.Sub(r.IssuedAt)), on, r.Reason)
		if r.State == string(ledger.Active) {
			ask = fmt.Sprintf("%s asks to keep access to %s until %s, reason: %s.", r.Requester, on, when(r.ExpiresAt), r.Reason)
		}
		return fmt.Sprintf("%s Needs %s from %s by %s. Approve: %s (or: passport deny %s --comment ...)",
			ask, plural(a.Required, "approval"), approvers(a), when(a.Deadline), e.Command, r.ID)
	case ledger.NoticeApproved:
		return fmt.Sprintf("%s approved %s's request %s (%d of %d)%s", e.By, r.Requester, r.ID, e.Approval.Given, e.Approval.Required, comment(e.Detail))
	case ledger.NoticeDenied:
		return fmt.Sprintf("%s denied %s's request %s%s", e.By, r.Requester, r.ID, comment(e.Detail))
	case ledger.NoticeApprovalExpired:
		return fmt.Sprintf("%s's request %s had no decision by %s (%d of %d approvals)", r.Requester, r.ID, when(e.Approval.Deadline), e.Approval.Given, e.Approval.Required)
	case ledger.NoticeGranted:
		return fmt.Sprintf("%s has access to %s until %s (request %s), reason: %s", r.Requester, on, when(r.ExpiresAt), r.ID, r.Reason)
	case ledger.NoticeWindowChanged:
		return fmt.Sprintf("%s's access to %s now ends %s (request %s)", r.Requester, on, when(r.ExpiresAt), r.ID)
	case ledger.NoticeExpiringSoon:
		return fmt.Sprintf("%s's access to %s ends in %s, at %s (request %s)", r.Requester, on, human(r.ExpiresAt.Sub(e.Time)), when(r.ExpiresAt), r.ID)
	case ledger.NoticeEnded:
		return fmt.Sprintf("%s's access to %s ended (request %s)%s", r.Requester, on, r.ID, comment(e.Detail))
	case ledger.NoticeRevoked:
		return fmt.Sprintf("Passport revoked %s's access to %s (request %s)%s", r.Requester, on, r.ID, comment(e.Detail))
	case ledger.NoticeReviewOverdue:
		return fmt.Sprintf("Break-glass access %s by %s was due for review by %s and has none: %s", r.ID, r.Requester, when(e.Review.Due), e.Command)
	case ledger.NoticeReviewed:
		return fmt.Sprintf("%s reviewed %s's break-glass access %s%s", e.By, r.Requester, r.ID, comment(e.Detail))
	}
	return fmt.Sprintf("%s: request %s by %s", e.Type, r.ID, r.Requester)
}

func approvers(a *EventApproval) string {
	if len(a.Approvers) == 0 {
		return "an approver policy allows"
	}
	return strings.Join(a.Approvers, " or ")
}

// human writes a duration as people say it: 1h, 90m, 2h30m.
func human(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "less than a minute"
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.Replace(s, "h0m", "h", 1)
}
