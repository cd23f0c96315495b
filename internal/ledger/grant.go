package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// State is where a grant, or one of its targets, is in its life.
type State string

const (
	// Pending: waiting for approval; nothing has touched a host.
	Pending State = "pending"
	// Provisioning: written before any host is touched; the user may exist
	// on some targets.
	Provisioning State = "provisioning"
	// Active: the user exists on the target(s) and may log in.
	Active State = "active"
	// Revoking: removal has started and has not been confirmed everywhere.
	Revoking State = "revoking"
	// Revoked: removed before or at the end of the window, on request.
	Revoked State = "revoked"
	// Expired: removed because the window ended.
	Expired State = "expired"
	// Failed: never provisioned, and nothing is left on the host.
	Failed State = "failed"
	// Denied: an approver refused it while it was pending; no host was
	// touched.
	Denied State = "denied"
)

var states = []State{Pending, Provisioning, Active, Revoking, Revoked, Expired, Failed, Denied}

// States lists every grant state, open ones first.
func States() []State { return slices.Clone(states) }

// OpenStates lists the states of grants someone still acts on.
func OpenStates() []State { return []State{Pending, Provisioning, Active, Revoking} }

// Closed reports whether s is final: nothing of the grant is left on a host
// and no one needs to act on it again.
func (s State) Closed() bool {
	return s == Revoked || s == Expired || s == Failed || s == Denied
}

func (s State) valid() bool {
	for _, v := range states {
		if s == v {
			return true
		}
	}
	return false
}

// Grant is the ledger's record of one access request. It holds no secret:
// a generated private key never reaches the ledger.
type Grant struct {
	ID        string
	Requester string // the SAML subject or AWS principal the grant was issued to
	// RequesterKind says what Requester is: "machine" for a caller the
	// service knew by its AWS identity, "person" or empty (records made
	// before machines could ask) for a person or a direct-mode caller.
	RequesterKind string
	// Groups are the requester's groups in the identity store when the
	// grant was made: what policy decided on, and what a reconciler
	// re-checks the grant with when policy changes.
	Groups   []string
	Reason   string
	Username string // the short-lived user on every target
	Sudo     bool
	Targets  []Target

	// What revocation needs: the certificate's serial, to put it on the
	// revoked-keys list of the CA that signed it.
	Serial      uint64
	CAPublicKey string // authorized_keys form
	PublicKey   string // the requester's key, authorized_keys form
	Certificate string

	// IssuedAt and ExpiresAt are the window. While the grant is pending
	// they are the window asked for, from the time it was asked; the last
	// approval moves it to start then.
	IssuedAt  time.Time
	ExpiresAt time.Time
	State     State

	// Approval is what the grant waits for, or waited for, when policy
	// wanted approval; nil when it was granted at once.
	Approval *Approval
	// Extension is a longer window waiting for approval while the current
	// one stands; nil when none is asked for.
	Extension *Extension
	// SealTo is the requester's key for Windows passwords (PKIX DER,
	// base64), kept while a grant waits so that hosts provisioned after
	// the approval seal to it. A public key, no secret.
	SealTo string
	// BreakGlass marks a grant policy gave at once because the requester
	// broke the glass; Review is the review someone else owes it.
	BreakGlass bool
	Review     *Review

	// Notices are what the ledger announced about the grant lately
	// (notice.go), NoticeSeq the Seq of the last one ever; Delivery is how
	// far their delivery has got. The ledger writes all three: Update
	// ignores what a caller puts there.
	Notices   []Notice
	NoticeSeq int64
	Delivery  Delivery
	// Outbox says the grant may have notices some sink has not been sent.
	Outbox bool
	// Cause is who makes this write and why: not stored, put on the
	// notices the write makes.
	Cause Cause

	// Version is the grant's revision: Update succeeds only when it still
	// matches the stored one. Create starts at 1; every write adds 1.
	Version int64
	Lease   Lease

	// Written by the ledger.
	CreatedAt time.Time
	UpdatedAt time.Time
	// DueAt is when a reconciler should next act on the grant: the end of
	// the window for an active grant, StuckAfter after the last write for
	// one left provisioning or revoking. A revoke that ended without
	// reaching every target is due again at once, then after a pause that
	// doubles from a minute with each failure, never longer than
	// StuckAfter. Zero once the grant is closed.
	DueAt time.Time
}

// Target is one host of a grant.
type Target struct {
	InstanceID string `json:"instance_id"`
	// Platform is Linux or Windows: which program revokes the user there.
	// Empty in records made before Windows targets, which were all Linux.
	Platform string `json:"platform,omitempty"`
	State    State  `json:"state"`
	Address  string `json:"address,omitempty"`
	Detail   string `json:"detail,omitempty"` // why it failed, or what is left
	// Failures counts the revoke attempts in a row that ended without
	// reaching this target (it was down, say). It is zero while an attempt
	// is under way, so a reconciler tells a revoke someone is running from
	// one that ended and is waiting for its retry (see DueAt).
	Failures int `json:"failures,omitempty"`
}

// RevokeFailures is how many revoke attempts in a row have ended without
// reaching some target of g, when the last one has ended: the most
// Failures of its revoking targets. It is zero when none failed, and while
// a revoke of any of them is under way.
func (g Grant) RevokeFailures() int {
	n := 0
	for _, t := range g.Targets {
		if t.State != Revoking {
			continue
		}
		if t.Failures == 0 {
			return 0
		}
		n = max(n, t.Failures)
	}
	return n
}

// retryDelay is how long a grant waits for its next revoke attempt after n
// failed ones: none after the first (the next pass retries), then one
// minute, doubling; dueAt caps it at StuckAfter.
func retryDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return time.Minute << min(n-2, 16)
}

// Approval is what a request or an extension waits for: Required
// distinct approvals, from those policy lets approve (Approvers names them
// as the decision did), before Deadline. One denial ends it.
type Approval struct {
	Required  int      `json:"required"`
	Approvers []string `json:"approvers,omitempty"`
	// Why is policy's reason for asking, per target.
	Why      string    `json:"why,omitempty"`
	Deadline time.Time `json:"deadline"`
	// Given are the approvals so far, in order; Denied the denial that
	// ended it.
	Given  []Vote `json:"given,omitempty"`
	Denied *Vote  `json:"denied,omitempty"`
}

// Done reports whether every required approval has been given.
func (a *Approval) Done() bool { return a != nil && a.Denied == nil && len(a.Given) >= a.Required }

// Vote is one approver's word on a request.
type Vote struct {
	By string `json:"by"`
	// Kind is "person" or "machine", as for the requester.
	Kind    string    `json:"kind,omitempty"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Extension is a window, longer than the current one, that policy grants
// only with approval. The current window stands meanwhile.
type Extension struct {
	ExpiresAt time.Time `json:"expires_at"`
	Approval  Approval  `json:"approval"`
}

// Review is the review a break-glass grant owes: someone other than its
// requester says, by Due, that it was right.
type Review struct {
	Due time.Time `json:"due"`
	// By, Kind, At and Comment are the review, once recorded.
	By      string    `json:"by,omitempty"`
	Kind    string    `json:"kind,omitempty"`
	At      time.Time `json:"at,omitzero"`
	Comment string    `json:"comment,omitempty"`
	// Reminded is when the last notice that the review is overdue went
	// out; the next goes ReviewReminderEvery after it.
	Reminded time.Time `json:"reminded,omitzero"`
}

// ReviewReminderEvery is how often an overdue review is announced again.
const ReviewReminderEvery = 24 * time.Hour

// Done reports whether the review was recorded.
func (r *Review) Done() bool { return r != nil && r.By != "" }

// NextReminder is when an unreviewed grant is next due for a notice that
// its review is overdue: at Due, then every ReviewReminderEvery; zero once
// reviewed.
func (r *Review) NextReminder() time.Time {
	switch {
	case r == nil || r.Done():
		return time.Time{}
	case r.Reminded.IsZero():
		return r.Due
	}
	return r.Reminded.Add(ReviewReminderEvery)
}

// workflow is how a grant's approvals travel to a backend: one JSON
// document, so that what waits for whom can grow without a schema change.
type workflow struct {
	Approval   *Approval  `json:"approval,omitempty"`
	Extension  *Extension `json:"extension,omitempty"`
	SealTo     string     `json:"seal_to,omitempty"`
	BreakGlass bool       `json:"break_glass,omitempty"`
	Review     *Review    `json:"review,omitempty"`
}

func (g *Grant) workflow() workflow {
	return workflow{Approval: g.Approval, Extension: g.Extension, SealTo: g.SealTo, BreakGlass: g.BreakGlass, Review: g.Review}
}

// encodeWorkflow is g's workflow document, or "" when there is none.
func encodeWorkflow(g *Grant) (string, error) {
	w := g.workflow()
	if w == (workflow{}) {
		return "", nil
	}
	b, err := json.Marshal(w)
	return string(b), err
}

// setWorkflow reads what encodeWorkflow wrote into g.
func (g *Grant) setWorkflow(s string) error {
	if s == "" || s == "{}" {
		return nil
	}
	var w workflow
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return fmt.Errorf("ledger: grant %s has an unreadable workflow: %w", g.ID, err)
	}
	g.Approval, g.Extension, g.SealTo, g.BreakGlass, g.Review = w.Approval, w.Extension, w.SealTo, w.BreakGlass, w.Review
	return nil
}

// Lease says who is working on a grant until when. A lease that has run
// out is free for anyone to take.
type Lease struct {
	Holder string
	Until  time.Time
}

// held reports whether someone holds the lease at now.
func (l Lease) held(now time.Time) bool {
	return l.Holder != "" && now.Before(l.Until)
}

var (
	// ErrNotFound: no grant with that id.
	ErrNotFound = errors.New("no such grant")
	// ErrExists: Create found a grant with that id already.
	ErrExists = errors.New("a grant with this id already exists")
	// ErrConflict: the grant changed since it was read. Read it again and
	// decide again.
	ErrConflict = errors.New("grant changed since it was read")
	// ErrLeaseHeld: someone else holds the grant's lease.
	ErrLeaseHeld = errors.New("grant is leased by another holder")
	// ErrClosed: the grant is revoked, expired or failed, and a closed
	// grant is never reopened: its user is gone and its name is not
	// reused. Access again is a new grant.
	ErrClosed = errors.New("grant is closed")
)

// updateRefused explains a refused Update from the grant as stored now.
func updateRefused(cur Grant, prev int64) error {
	if cur.Version == prev && cur.State.Closed() {
		return fmt.Errorf("grant %s is %s and cannot become open again; request access anew: %w", cur.ID, cur.State, ErrClosed)
	}
	return &ConflictError{GrantID: cur.ID, Version: prev}
}

// ConflictError is returned by Update when the stored version is no longer
// the one the caller read. It matches ErrConflict with errors.Is.
type ConflictError struct {
	GrantID string
	Version int64 // the version the caller wrote from
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("grant %s was changed by another writer since version %d was read; read it again and retry", e.GrantID, e.Version)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// LeaseHeldError is returned by Acquire and Release when another holder has
// the lease. It matches ErrLeaseHeld with errors.Is.
type LeaseHeldError struct {
	GrantID string
	Holder  string
	Until   time.Time
}

func (e *LeaseHeldError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("grant %s is not leased by the caller", e.GrantID)
	}
	return fmt.Sprintf("grant %s is leased by %s until %s", e.GrantID, e.Holder, e.Until.UTC().Format(time.RFC3339))
}

func (e *LeaseHeldError) Is(target error) bool { return target == ErrLeaseHeld }

func notFound(id string) error { return fmt.Errorf("grant %s: %w", id, ErrNotFound) }

// Bounds on the groups a grant records: generous for any identity store,
// small enough that one grant stays one small record. The access core
// refuses a request beyond them before anything is written.
const (
	MaxGroups    = 256
	MaxGroupName = 256
)

// ValidGroupName reports whether a group name can be recorded: 1 to
// MaxGroupName bytes without control characters.
func ValidGroupName(name string) bool {
	return name != "" && len(name) <= MaxGroupName && !strings.ContainsFunc(name, unicode.IsControl)
}

func (g *Grant) validate() error {
	var problems []string
	if g.ID == "" {
		problems = append(problems, "id is empty")
	}
	if !g.State.valid() {
		problems = append(problems, fmt.Sprintf("state %q is not one of %s", g.State, stateList()))
	}
	if g.ExpiresAt.IsZero() || g.IssuedAt.IsZero() {
		problems = append(problems, "issued_at and expires_at must both be set")
	} else if !g.ExpiresAt.After(g.IssuedAt) {
		problems = append(problems, "expires_at must be after issued_at")
	}
	if g.State == Pending && g.Approval == nil {
		problems = append(problems, "a pending grant needs an approval to wait for")
	}
	if g.RequesterKind != "" && g.RequesterKind != "person" && g.RequesterKind != "machine" {
		problems = append(problems, fmt.Sprintf("requester kind %.20q is not person or machine", g.RequesterKind))
	}
	if len(g.Groups) > MaxGroups {
		problems = append(problems, fmt.Sprintf("%d groups is more than %d", len(g.Groups), MaxGroups))
	}
	for _, name := range g.Groups {
		if !ValidGroupName(name) {
			problems = append(problems, fmt.Sprintf("group %.40q must be 1 to %d bytes without control characters", name, MaxGroupName))
			break
		}
	}
	for _, t := range g.Targets {
		if t.InstanceID == "" {
			problems = append(problems, "a target has no instance id")
		}
		if !t.State.valid() {
			problems = append(problems, fmt.Sprintf("target %s: state %q is not one of %s", t.InstanceID, t.State, stateList()))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("ledger: grant %q cannot be stored: %s", g.ID, strings.Join(problems, "; "))
	}
	return nil
}

// normalize keeps times in UTC at the precision both backends store
// (nanoseconds since the epoch), so a grant reads back equal to what was
// written.
func (g *Grant) normalize() {
	for _, t := range []*time.Time{&g.IssuedAt, &g.ExpiresAt, &g.CreatedAt, &g.UpdatedAt, &g.DueAt, &g.Lease.Until} {
		*t = fromNanos(nanos(*t))
	}
	for _, a := range []*Approval{g.Approval, g.extensionApproval()} {
		if a == nil {
			continue
		}
		a.Deadline = fromNanos(nanos(a.Deadline))
		for i := range a.Given {
			a.Given[i].At = fromNanos(nanos(a.Given[i].At))
		}
		if a.Denied != nil {
			a.Denied.At = fromNanos(nanos(a.Denied.At))
		}
	}
	if g.Extension != nil {
		g.Extension.ExpiresAt = fromNanos(nanos(g.Extension.ExpiresAt))
	}
	if r := g.Review; r != nil {
		for _, t := range []*time.Time{&r.Due, &r.At, &r.Reminded} {
			*t = fromNanos(nanos(*t))
		}
	}
}

func (g *Grant) extensionApproval() *Approval {
	if g.Extension == nil {
		return nil
	}
	return &g.Extension.Approval
}

func stateList() string {
	s := make([]string, len(states))
	for i, v := range states {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// nanos and fromNanos are the stored form of a time: 0 stands for the zero
// time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func encodeTargets(ts []Target) (string, error) {
	if ts == nil {
		ts = []Target{}
	}
	b, err := json.Marshal(ts)
	return string(b), err
}

func encodeGroups(gs []string) string {
	if gs == nil {
		gs = []string{}
	}
	b, _ := json.Marshal(gs) // a []string always marshals
	return string(b)
}

// decodeGroups reads what encodeGroups wrote; a record from before groups
// were kept has none.
func decodeGroups(id, s string) ([]string, error) {
	var gs []string
	if s == "" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(s), &gs); err != nil {
		return nil, fmt.Errorf("ledger: grant %s has unreadable groups: %w", id, err)
	}
	if len(gs) == 0 {
		return nil, nil
	}
	return gs, nil
}

func decodeTargets(id, s string) ([]Target, error) {
	var ts []Target
	if err := json.Unmarshal([]byte(s), &ts); err != nil {
		return nil, fmt.Errorf("ledger: grant %s has unreadable targets: %w", id, err)
	}
	if len(ts) == 0 {
		return nil, nil
	}
	return ts, nil
}
