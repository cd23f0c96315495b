package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Approvals in policy.
//
// A permit for Passport::Action::"access" annotated @approvals("N") grants
// only once N distinct people (or machines) other than the requester have
// approved; a permit without the annotation grants at once. Who may
// approve is policy too: the permits of Passport::Action::"approve", asked
// about the approver with the request's own context, on every target.
//
// Per target: forbids deny as always; among the permits that matched, one
// without @approvals grants at once, else the smallest count of those that
// matched is what the target needs. A request needs the largest count of
// its targets, from approvers policy lets approve on every target.
//
// A policy without @approvals therefore means exactly what it meant
// before approvals existed.

// MaxApprovals bounds @approvals: as many distinct approvers as AWS's own
// just-in-time node access asks for at most.
const MaxApprovals = 5

// annotationApprovals is the annotation that makes a permit need approval.
const annotationApprovals = "approvals"

// approvalsOf reads a policy's @approvals and checks where it stands: on a
// permit for the access action only. It returns 0 for a policy without
// one. Annotations that look like a misspelt @approvals are refused: a
// typo there would grant at once what was meant to wait for approval.
func approvalsOf(p *xast.Policy) (int, error) {
	n := 0
	for _, a := range p.Annotations {
		key := string(a.Key)
		lower := strings.ToLower(key)
		if key != annotationApprovals && (strings.HasPrefix(lower, "approv") || strings.HasPrefix(lower, "break")) {
			return 0, fmt.Errorf("@%s is not an annotation Passport knows: write @approvals(\"N\") on a permit for Passport::Action::\"access\" to need N approvals", key)
		}
		if key != annotationApprovals {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(a.Value)))
		if err != nil || v < 1 || v > MaxApprovals {
			return 0, fmt.Errorf("@approvals(%q) must be a whole number from 1 to %d: how many distinct people must approve", string(a.Value), MaxApprovals)
		}
		n = v
	}
	if n == 0 {
		return 0, nil
	}
	if p.Effect != xast.EffectPermit {
		return 0, fmt.Errorf("@approvals is on a forbid: only a permit can grant with approval")
	}
	if eq, ok := p.Action.(xast.ScopeTypeEq); !ok || eq.Entity != Access.uid() {
		return 0, fmt.Errorf("@approvals is on a policy whose action is not exactly Passport::Action::\"access\": write action == Passport::Action::\"access\" (approval is about access, never about view, end or approve)")
	}
	return n, nil
}

// appliesTo reports whether a policy's action scope can match action.
func appliesTo(scope xast.IsActionScopeNode, action types.EntityUID) bool {
	switch s := scope.(type) {
	case xast.ScopeTypeAll:
		return true
	case xast.ScopeTypeEq:
		return s.Entity == action
	case xast.ScopeTypeIn:
		return s.Entity == action
	case xast.ScopeTypeInSet:
		return slices.Contains(s.Entities, action)
	}
	return true
}

// Approver is someone policy lets approve a request, as the decision
// names them: a group's members, one person, one machine, or anyone.
type Approver struct {
	// Kind is "group", "user", "machine" or "anyone".
	Kind string
	// Names are the groups (all of them, for Kind "group"), or the user
	// or machine.
	Names []string
}

// String is the approver as cases and notices write it: group:admins,
// group:admins+sre (members of both), user:carol, machine:<arn>, anyone.
func (a Approver) String() string {
	if a.Kind == "anyone" {
		return "anyone"
	}
	return a.Kind + ":" + strings.Join(a.Names, "+")
}

// Describe is the approver in words.
func (a Approver) Describe() string {
	switch a.Kind {
	case "group":
		if len(a.Names) == 1 {
			return "a member of " + a.Names[0]
		}
		return "a member of each of " + strings.Join(a.Names, ", ")
	case "anyone":
		return "anyone signed in"
	}
	return a.Kind + " " + strings.Join(a.Names, "")
}

// candidate is a principal that stands for the approvers one approve
// permit may let in: evaluating the policy for it tells whether its kind
// of principal may approve a given request.
type candidate struct {
	approver Approver
	uid      types.EntityUID
	entities types.EntityMap
}

// candidateName is the id of a candidate that stands for "any member": no
// subject can be named so, so no condition on a real name matches it.
const candidateName = "\x00any"

// approveCandidates finds, in the approve permits of list, the principals
// policy names: the one in the scope (a user, a machine, a group's
// members, anyone) alone, with each group the policy's conditions name,
// and with all of them. The decision tries each, so it can say who may
// approve; the check at approval time is exact whatever this finds.
func approveCandidates(list []*cedar.Policy) []candidate {
	approve := Approve.uid()
	var out []candidate
	seen := map[string]bool{}
	add := func(kind string, uid types.EntityUID, groups []string) {
		slices.Sort(groups)
		groups = slices.Compact(groups)
		a := Approver{Kind: kind}
		switch {
		case kind == "user" || kind == "machine":
			a.Names = []string{string(uid.ID)}
		case len(groups) > 0:
			a.Kind, a.Names = "group", groups
		default:
			a.Kind = "anyone"
		}
		key := a.String() + "\x00" + strings.Join(groups, "\x00")
		if seen[key] {
			return
		}
		seen[key] = true
		em, _ := principalEntities(kindOf(uid), string(uid.ID), groups)
		out = append(out, candidate{approver: a, uid: uid, entities: em})
	}
	for _, c := range list {
		p := (*xast.Policy)(c.AST())
		if p.Effect != xast.EffectPermit || !appliesTo(p.Action, approve) {
			continue
		}
		kind, uid, scopeGroup := "anyone", types.NewEntityUID(typeUser, candidateName), ""
		switch s := p.Principal.(type) {
		case xast.ScopeTypeEq:
			uid = s.Entity
			kind = "user"
			if s.Entity.Type == typeMachine {
				kind = "machine"
			}
		case xast.ScopeTypeIn:
			if s.Entity.Type == typeGroup {
				scopeGroup = string(s.Entity.ID)
			} else {
				uid, kind = s.Entity, "user"
			}
		case xast.ScopeTypeIs:
			if s.Type == typeMachine {
				uid, kind = types.NewEntityUID(typeMachine, candidateName), "anyone"
			}
		case xast.ScopeTypeIsIn:
			if s.Type == typeMachine {
				uid = types.NewEntityUID(typeMachine, candidateName)
			}
			if s.Entity.Type == typeGroup {
				scopeGroup = string(s.Entity.ID)
			}
		}
		var base []string
		if scopeGroup != "" {
			base = []string{scopeGroup}
		}
		named := groupsNamed(p)
		add(kind, uid, slices.Clone(base))
		for _, g := range named {
			add(kind, uid, append(slices.Clone(base), g))
		}
		if len(named) > 1 {
			add(kind, uid, append(slices.Clone(base), named...))
		}
	}
	// Narrowest first: "anyone" before groups, one group before several.
	slices.SortStableFunc(out, func(a, b candidate) int {
		return cmp.Compare(breadth(a.approver), breadth(b.approver))
	})
	return out
}

func breadth(a Approver) int {
	if a.Kind == "anyone" {
		return 0
	}
	return len(a.Names)
}

// kindOf is the principal kind of an entity.
func kindOf(uid types.EntityUID) Kind {
	if uid.Type == typeMachine {
		return Machine
	}
	return Person
}

// groupsNamed lists the groups a policy's conditions name.
func groupsNamed(p *xast.Policy) []string {
	var out []string
	for _, c := range p.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			if v, ok := n.(xast.NodeValue); ok {
				if uid, ok := v.Value.(types.EntityUID); ok && uid.Type == typeGroup && !slices.Contains(out, string(uid.ID)) {
					out = append(out, string(uid.ID))
				}
			}
			return true
		})
	}
	return out
}

// approvers lists who policy lets approve every target of req: each
// candidate that may approve them all, the narrowest first (a group
// whose members may is not repeated as that group together with
// another).
func (p *Policy) approvers(req Request, ctx types.Record) []Approver {
	var out []Approver
	approve := Approve.uid()
	// Candidates come narrowest first (see approveCandidates), so one
	// whose groups include an approver's already found says no more and
	// is not asked; once anyone may, nobody else needs naming.
	for _, c := range p.candidates {
		if slices.ContainsFunc(out, func(a Approver) bool { return covers(a, c.approver) }) {
			continue
		}
		allowed := true
		for _, t := range p.approveShapes(req.Targets) {
			resource := instanceEntity(t)
			dec, _ := cedar.Authorize(p.approveSet, withResource{c.entities, resource}, cedar.Request{Principal: c.uid, Action: approve, Resource: resource.UID, Context: ctx})
			if dec != cedar.Allow {
				allowed = false
				break
			}
		}
		if allowed {
			out = slices.DeleteFunc(out, func(a Approver) bool { return covers(c.approver, a) })
			out = append(out, c.approver)
		}
	}
	slices.SortFunc(out, func(a, b Approver) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// approveShapes is one target of each kind the approve policies can tell
// apart: when they read nothing of an instance but its platform and the
// tags they name, two instances alike in those get the same answer, and
// 200 web servers are asked about once. Otherwise every target.
func (p *Policy) approveShapes(targets []Instance) []Instance {
	if p.approveReads == nil {
		return targets
	}
	seen := make(map[string]bool, 4)
	var out []Instance
	var key strings.Builder
	for _, t := range targets {
		key.Reset()
		if p.approveReads.platform {
			key.WriteString(t.Platform)
		}
		for _, k := range p.approveReads.tags {
			v, ok := t.Tags[k]
			fmt.Fprintf(&key, "\x00%t%q", ok, v)
		}
		if !seen[key.String()] {
			seen[key.String()] = true
			out = append(out, t)
		}
	}
	return out
}

// instanceReads is what policies read of an instance.
type instanceReads struct {
	platform bool
	tags     []string
}

// readsOf finds what the policies read of the resource, when that is its
// platform and tags named by literal keys alone; nil when they read
// anything else (its id in a scope or a comparison, a tag named by an
// expression).
func readsOf(list []*cedar.Policy) *instanceReads {
	r := &instanceReads{}
	for _, c := range list {
		p := (*xast.Policy)(c.AST())
		if _, all := p.Resource.(xast.ScopeTypeAll); !all {
			if is, ok := p.Resource.(xast.ScopeTypeIs); !ok || is.Type != typeInstance {
				return nil
			}
		}
		uses, known := 0, 0
		for _, cond := range p.Conditions {
			xast.Inspect(xast.NewNode(cond.Body), func(n xast.IsNode) bool {
				switch n := n.(type) {
				case xast.NodeTypeVariable:
					if n.Name == "resource" {
						uses++
					}
				case xast.NodeTypeHasTag:
					known += r.tag(n.Left, n.Right)
				case xast.NodeTypeGetTag:
					known += r.tag(n.Left, n.Right)
				case xast.NodeTypeAccess:
					known += r.attribute(n.Arg, n.Value)
				case xast.NodeTypeHas:
					known += r.attribute(n.Arg, n.Value)
				}
				return true
			})
		}
		if uses != known {
			return nil
		}
	}
	slices.Sort(r.tags)
	return r
}

func isResource(n xast.IsNode) bool {
	v, ok := n.(xast.NodeTypeVariable)
	return ok && v.Name == "resource"
}

// tag notes resource.hasTag("k") or getTag("k") and counts it as a known
// use of the resource.
func (r *instanceReads) tag(on, key xast.IsNode) int {
	v, ok := key.(xast.NodeValue)
	s, isString := v.Value.(types.String)
	if !isResource(on) || !ok || !isString {
		return 0
	}
	if !slices.Contains(r.tags, string(s)) {
		r.tags = append(r.tags, string(s))
	}
	return 1
}

func (r *instanceReads) attribute(on xast.IsNode, name types.String) int {
	if !isResource(on) || name != "platform" {
		return 0
	}
	r.platform = true
	return 1
}

// covers reports whether approver a already says what b would: anyone
// covers everyone, members of a group cover members of that group and
// another, and each covers itself.
func covers(a, b Approver) bool {
	switch {
	case a.String() == b.String(), a.Kind == "anyone":
		return true
	case a.Kind == "group" && b.Kind == "group":
		return subset(a.Names, b.Names)
	}
	return false
}

// withResource is a candidate's entities and one instance, without
// changing the candidate's map: a Policy decides for many callers at once.
type withResource struct {
	principal types.EntityMap
	resource  types.Entity
}

func (w withResource) Get(uid types.EntityUID) (types.Entity, bool) {
	if uid == w.resource.UID {
		return w.resource, true
	}
	return w.principal.Get(uid)
}

func subset(small, big []string) bool {
	for _, s := range small {
		if !slices.Contains(big, s) {
			return false
		}
	}
	return true
}

// ApprovalError says a request may be granted, but only once enough
// people have approved it. The Passport service holds such a request as
// pending; anything else (direct mode) has no one to hold it and refuses.
type ApprovalError struct {
	// Approvals is how many distinct approvers are needed.
	Approvals int
	// Approvers are who policy lets approve every target.
	Approvers []Approver
	// Targets are the targets that need approval, with why.
	Targets []TargetDecision
}

func (e *ApprovalError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "access needs %s by %s", plural(e.Approvals, "approval"), approverPhrase(e.Approvers))
	fmt.Fprintf(&b, " before it is granted; nothing was changed on any host:")
	for _, t := range e.Targets {
		fmt.Fprintf(&b, "\n  %s: %s", t.ID, t.Why)
	}
	return b.String()
}

// approverPhrase names approvers in words.
func approverPhrase(as []Approver) string {
	if len(as) == 0 {
		return "approvers no policy names (no permit of Passport::Action::\"approve\" covers every target: ask an administrator)"
	}
	words := make([]string, len(as))
	for i, a := range as {
		words[i] = a.Describe()
	}
	return strings.Join(words, " or ") + ", other than the requester"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
