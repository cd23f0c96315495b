package policy

import (
	"context"
	"fmt"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Record is the action policy is asked about for each target of an access
// request: a permit of it means sessions on that target must be recorded.
const Record Action = "record"

// annotationIfCannotRecord says what a permit of Record does on a host
// that cannot record: "refuse" the grant there (the default) or "grant"
// it with a loud audit event.
const annotationIfCannotRecord = "if_cannot_record"

// RecordRule is policy's answer about recording on one target.
type RecordRule struct {
	ID string
	// Required: sessions on this target must be recorded.
	Required bool
	// FailOpen: where the host cannot record, grant anyway (with a loud
	// audit event) instead of refusing the target. Every permit that
	// requires recording must say so for it to hold: the strictest wins.
	FailOpen bool
	// Why names the policies that decided.
	Why string
}

// failOpenOf reads a policy's @if_cannot_record: true for "grant", false
// for "refuse" or none. Misspellings are refused, like @approvals.
func failOpenOf(p *xast.Policy) (bool, error) {
	open, set := false, false
	for _, a := range p.Annotations {
		key := string(a.Key)
		lower := strings.ToLower(key)
		if key != annotationIfCannotRecord && (strings.HasPrefix(lower, "if_cannot") || strings.HasPrefix(lower, "ifcannot") || strings.HasPrefix(lower, "record")) {
			return false, fmt.Errorf("@%s is not an annotation Passport knows: write @if_cannot_record(\"refuse\") or @if_cannot_record(\"grant\") on a permit for Passport::Action::\"record\"", key)
		}
		if key != annotationIfCannotRecord {
			continue
		}
		switch string(a.Value) {
		case "refuse":
		case "grant":
			open = true
		default:
			return false, fmt.Errorf("@if_cannot_record(%q) must be \"refuse\" (the grant is refused on a host that cannot record) or \"grant\" (granted there with a loud audit event)", string(a.Value))
		}
		set = true
	}
	if !set {
		return false, nil
	}
	if p.Effect != xast.EffectPermit {
		return false, fmt.Errorf("@if_cannot_record is on a forbid: only a permit of Passport::Action::\"record\" requires recording")
	}
	if eq, ok := p.Action.(xast.ScopeTypeEq); !ok || eq.Entity != Record.uid() {
		return false, fmt.Errorf("@if_cannot_record is on a policy whose action is not exactly Passport::Action::\"record\"")
	}
	return open, nil
}

// Recording says, for each target of req (an access request), whether
// policy requires its sessions to be recorded, and what to do on a host
// that cannot. Where no permit of Passport::Action::"record" applies,
// recording is not required (Passport still records where the host can).
func (p *Policy) Recording(req Request) []RecordRule {
	rules := make([]RecordRule, 0, len(req.Targets))
	if len(p.statements) == 0 {
		for _, t := range req.Targets {
			rules = append(rules, RecordRule{ID: t.ID})
		}
		return rules
	}
	entities, principal := principalEntities(req.Kind, req.Subject, req.Groups)
	ctx := requestContext(req)
	for _, t := range req.Targets {
		resource := instanceEntity(t)
		entities[resource.UID] = resource
		dec, diag := cedar.Authorize(p.set, entities, cedar.Request{Principal: principal, Action: Record.uid(), Resource: resource.UID, Context: ctx})
		delete(entities, resource.UID)
		r := RecordRule{ID: t.ID}
		if dec == cedar.Allow {
			var names []string
			r.FailOpen = true
			for _, reason := range diag.Reasons {
				s := p.statement(reason.PolicyID)
				if !s.namesRecord {
					continue
				}
				names = append(names, fmt.Sprintf("%s (line %d)", quoteName(s.name), s.line))
				r.FailOpen = r.FailOpen && s.failOpen
			}
			r.Required = len(names) > 0
			r.FailOpen = r.Required && r.FailOpen
			if r.Required {
				r.Why = "recording required by " + strings.Join(names, ", ")
			}
		}
		rules = append(rules, r)
	}
	return rules
}

// Recording is Policy.Recording with the targets' tags looked up as
// Decide does.
func (g *Gate) Recording(ctx context.Context, req Request) ([]RecordRule, error) {
	if g == nil || g.Policy == nil {
		return nil, fmt.Errorf("recording cannot be decided: no policy was loaded")
	}
	req, err := g.tagged(ctx, req)
	if err != nil {
		return nil, err
	}
	return g.Policy.Recording(req), nil
}

func isAllActions(scope xast.IsActionScopeNode) bool {
	_, all := scope.(xast.ScopeTypeAll)
	return all
}
