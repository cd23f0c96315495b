package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// Request is one access request as policy sees it.
type Request struct {
	// Subject is who asks: the SAML subject, or the AWS caller ARN where
	// no SAML session is configured.
	Subject string
	// Kind is what Subject is: a Person (Passport::User, the default) or a
	// Machine (Passport::Machine, for callers the service knows by their
	// AWS identity).
	Kind Kind
	// Groups are the subject's groups from the identity store; none is fine.
	Groups []string
	// Action is what Subject wants to do: Access (the default) asks for
	// access to Targets; View and End ask to see or end a request someone
	// else made, described by the fields below and Requester.
	Action Action
	// Requester made the request in question; empty means Subject, which
	// is always the case for Access.
	Requester string
	Targets   []Instance
	// Duration is the whole window, from the grant's start.
	Duration time.Duration
	Reason   string
	Sudo     bool
	// BreakGlass says the requester asks for break-glass access: at once,
	// loudly, reviewed afterwards. Policy reads it as context.break_glass.
	BreakGlass bool
}

// Instance is one target.
type Instance struct {
	ID       string
	Platform string // "Linux" or "Windows"
	Tags     map[string]string
}

// Decision is the answer for every target of a Request, in its order.
type Decision struct {
	Targets []TargetDecision
	// Approvers are who policy lets approve every target, when the
	// request needs approval (Outcome is NeedsApproval).
	Approvers []Approver
}

// TargetDecision is the answer for one target.
type TargetDecision struct {
	ID string
	// Allowed is true when the target is granted at once.
	Allowed bool
	// Approvals, when Allowed is false, is how many distinct approvers
	// policy needs before it grants the target; 0 is a denial.
	Approvals int
	// Why says, for a denial, which policy forbade it (by @id and line) or
	// that no policy permits it; for a permit, which policies did.
	Why string
}

// Outcome is what policy says about a whole request.
type Outcome string

// Outcomes.
const (
	Grant         Outcome = "grant"
	NeedsApproval Outcome = "approval"
	Deny          Outcome = "deny"
)

// Outcome is grant when every target is granted at once, deny when any
// is denied, and approval otherwise.
func (d Decision) Outcome() Outcome {
	switch {
	case len(d.Targets) == 0 || len(d.Denied()) > 0:
		return Deny
	case slices.ContainsFunc(d.Targets, func(t TargetDecision) bool { return !t.Allowed }):
		return NeedsApproval
	}
	return Grant
}

// Approvals is how many distinct approvers the request needs: the most
// any of its targets needs.
func (d Decision) Approvals() int {
	n := 0
	for _, t := range d.Targets {
		if !t.Allowed {
			n = max(n, t.Approvals)
		}
	}
	return n
}

// Allowed reports whether every target is granted at once.
func (d Decision) Allowed() bool { return d.Outcome() == Grant }

// Denied lists the targets that are denied (not those that need approval).
func (d Decision) Denied() []TargetDecision {
	var out []TargetDecision
	for _, t := range d.Targets {
		if !t.Allowed && t.Approvals == 0 {
			out = append(out, t)
		}
	}
	return out
}

// Err is nil when every target is granted at once; a *DeniedError naming
// each denied target and why when any is denied; and otherwise an
// *ApprovalError saying how many approvals, from whom.
func (d Decision) Err() error {
	switch d.Outcome() {
	case Grant:
		return nil
	case NeedsApproval:
		e := &ApprovalError{Approvals: d.Approvals(), Approvers: d.Approvers}
		for _, t := range d.Targets {
			if !t.Allowed {
				e.Targets = append(e.Targets, t)
			}
		}
		return e
	}
	return &DeniedError{Targets: d.Denied()}
}

// DeniedError is a request policy refused.
type DeniedError struct {
	Targets []TargetDecision
}

func (e *DeniedError) Error() string {
	var b strings.Builder
	if len(e.Targets) == 0 {
		return "access denied by policy: the request has no targets"
	}
	fmt.Fprintf(&b, "access denied by policy for %d target", len(e.Targets))
	if len(e.Targets) > 1 {
		b.WriteByte('s')
	}
	b.WriteString("; nothing was changed on any host:")
	for _, t := range e.Targets {
		fmt.Fprintf(&b, "\n  %s: %s", t.ID, t.Why)
	}
	return b.String()
}

// Action is what a principal asks to do, as policies name it.
type Action string

// Actions. The service asks View and End about someone else's request (a
// requester may always see and end their own), Approve about approving or
// reviewing it (never one's own), and DeleteRecording about deleting a
// recording made under it before its retention ends (never allowed
// without a permit, the requester's own included).
const (
	Access          Action = "access"
	View            Action = "view"
	End             Action = "end"
	Approve         Action = "approve"
	DeleteRecording Action = "delete-recording"
)

func (a Action) uid() types.EntityUID {
	if a == "" {
		a = Access
	}
	return types.NewEntityUID(typeAction, types.String(a))
}

// requestContext is the context of every action about req.
func requestContext(req Request) types.Record {
	requester := req.Requester
	if requester == "" {
		requester = req.Subject
	}
	return types.NewRecord(types.RecordMap{
		"duration":     types.Long(req.Duration / time.Second),
		"reason":       types.String(req.Reason),
		"sudo":         types.Boolean(req.Sudo),
		"target_count": types.Long(len(req.Targets)),
		"requester":    types.String(requester),
		"break_glass":  types.Boolean(req.BreakGlass),
	})
}

// Authorize decides every target of req. A Policy with no statements denies
// each target and says where policy was looked for.
//
// A forbid policy that fails to evaluate (say, a comparison on a tag the
// instance lacks, in a policy the schema could not check) denies the target
// too: Cedar itself would skip it, but a guard that silently stops guarding
// is worse than a refusal the administrator can see and fix.
func (p *Policy) Authorize(req Request) Decision {
	d := Decision{Targets: make([]TargetDecision, 0, len(req.Targets))}
	if len(p.statements) == 0 {
		why := "no policy is configured: " + p.missing + "; ask an administrator to publish one"
		for _, t := range req.Targets {
			d.Targets = append(d.Targets, TargetDecision{ID: t.ID, Why: why})
		}
		return d
	}
	entities, principal := principalEntities(req.Kind, req.Subject, req.Groups)
	ctx := requestContext(req)
	action := req.Action.uid()
	for _, t := range req.Targets {
		resource := instanceEntity(t)
		entities[resource.UID] = resource
		dec, diag := cedar.Authorize(p.set, entities, cedar.Request{
			Principal: principal,
			Action:    action,
			Resource:  resource.UID,
			Context:   ctx,
		})
		delete(entities, resource.UID)
		d.Targets = append(d.Targets, p.explain(t.ID, dec, diag, req))
	}
	if d.Outcome() == NeedsApproval {
		d.Approvers = p.approvers(req, ctx)
	}
	return d
}

func (p *Policy) explain(id string, dec cedar.Decision, diag cedar.Diagnostic, req Request) TargetDecision {
	for _, e := range diag.Errors {
		if p.set[e.PolicyID].Effect() == cedar.Forbid {
			s := p.statement(e.PolicyID)
			return TargetDecision{ID: id, Why: fmt.Sprintf("%s (line %d) in %s could not be evaluated (%s), so it is taken as forbidding: ask an administrator to fix it", quoteName(s.name), s.line, p.source, oneLine(e.Message))}
		}
	}
	names := make([]string, 0, len(diag.Reasons))
	var now, later []string
	approvals := 0
	for _, r := range diag.Reasons {
		s := p.statement(r.PolicyID)
		name := fmt.Sprintf("%s (line %d)", quoteName(s.name), s.line)
		names = append(names, name)
		if s.approvals == 0 {
			now = append(now, name)
			continue
		}
		later = append(later, name)
		if approvals == 0 || s.approvals < approvals {
			approvals = s.approvals
		}
	}
	slices.Sort(names)
	slices.Sort(now)
	slices.Sort(later)
	switch {
	case dec == cedar.Allow && len(now) > 0:
		return TargetDecision{ID: id, Allowed: true, Why: "permitted by " + strings.Join(now, ", ")}
	case dec == cedar.Allow:
		return TargetDecision{ID: id, Approvals: approvals, Why: fmt.Sprintf("needs %s under %s", plural(approvals, "approval"), strings.Join(later, ", "))}
	}
	if len(names) > 0 {
		return TargetDecision{ID: id, Why: "forbidden by " + strings.Join(names, ", ") + " in " + p.source}
	}
	sudo := ""
	if req.Sudo {
		sudo = " with sudo"
	}
	if req.Action == DeleteRecording {
		return TargetDecision{ID: id, Why: fmt.Sprintf("no policy in %s permits %q%s to delete recordings of requests of %q made on it", p.source, req.Subject, groupsPhrase(req.Groups), req.Requester)}
	}
	if req.Action == View || req.Action == End || req.Action == Approve {
		return TargetDecision{ID: id, Why: fmt.Sprintf("no policy in %s permits %q%s to %s requests of %q on it", p.source, req.Subject, groupsPhrase(req.Groups), req.Action, req.Requester)}
	}
	if req.BreakGlass {
		sudo += " with break-glass"
	}
	return TargetDecision{ID: id, Why: fmt.Sprintf("no policy in %s permits %q%s to access it for %s%s", p.source, req.Subject, groupsPhrase(req.Groups), window(req.Duration), sudo)}
}

// window writes a duration as people do: 4h, 90m, 2h30m.
func window(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// groupsPhrase quotes each group: they come from outside, and a quoted
// string cannot break an error message into forged lines.
func groupsPhrase(groups []string) string {
	if len(groups) == 0 {
		return " (in no groups)"
	}
	q := make([]string, len(groups))
	for i, g := range groups {
		q[i] = fmt.Sprintf("%q", g)
	}
	return " (groups " + strings.Join(q, ", ") + ")"
}

// principalEntities returns the entities every target shares: the user
// and its groups, or the machine.
func principalEntities(kind Kind, subject string, groups []string) (types.EntityMap, types.EntityUID) {
	user := kind.uid(subject)
	em := make(types.EntityMap, len(groups)+2)
	parents := make([]types.EntityUID, 0, len(groups))
	for _, g := range groups {
		uid := types.NewEntityUID(typeGroup, types.String(g))
		parents = append(parents, uid)
		em[uid] = types.Entity{UID: uid}
	}
	em[user] = types.Entity{UID: user, Parents: types.NewEntityUIDSet(parents...)}
	return em, user
}

func instanceEntity(t Instance) types.Entity {
	tags := make(types.RecordMap, len(t.Tags))
	for k, v := range t.Tags {
		tags[types.String(k)] = types.String(v)
	}
	return types.Entity{
		UID:        types.NewEntityUID(typeInstance, types.String(t.ID)),
		Attributes: types.NewRecord(types.RecordMap{"platform": types.String(t.Platform)}),
		Tags:       types.NewRecord(tags),
	}
}

// Kind is what a principal is.
type Kind string

// Principal kinds. The empty Kind is a Person: records made before
// machines could ask name people, or AWS callers in direct mode.
const (
	Person  Kind = "person"
	Machine Kind = "machine"
)

// uid is the Cedar entity of a principal of kind k named subject.
func (k Kind) uid(subject string) types.EntityUID {
	if k == Machine {
		return types.NewEntityUID(typeMachine, types.String(subject))
	}
	return types.NewEntityUID(typeUser, types.String(subject))
}

// Valid reports whether k is a known kind; empty counts as Person.
func (k Kind) Valid() bool { return k == "" || k == Person || k == Machine }
