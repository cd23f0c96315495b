package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// previewWindows are the lengths of window a preview asks policy about
// besides the one asked for: what a person picks from, up to the cap.
var previewWindows = []time.Duration{
	15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour,
	4 * time.Hour, 6 * time.Hour, 8 * time.Hour, access.MaxDuration,
}

// previewRequest says what a create with the same fields would meet,
// recording nothing and touching no host: the targets it reaches (tags
// resolved as create resolves them), whether each can take access now,
// and policy's answer for the caller, for the window asked and for the
// others a person might pick. Policy is asked exactly as the access core
// asks it, with the instances' platforms and tags, so that what the
// portal shows before a request is what the request then meets.
func (s *Server) previewRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	var in api.PreviewRequest
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.preview(r.Context(), p, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.write(w, http.StatusOK, out)
}

func (s *Server) preview(ctx context.Context, p *principal, in api.PreviewRequest) (*api.Preview, error) {
	d := access.DefaultDuration
	if in.Duration != "" {
		var err error
		if d, err = parseDuration(in.Duration); err != nil {
			return nil, err
		}
	}
	var ids []string
	switch {
	case len(in.Targets) > 0 && len(in.Tags) > 0:
		return nil, invalidField("targets", "give targets or tags, not both")
	case len(in.Tags) > 0:
		var err error
		if ids, err = s.targetsByTag(ctx, in.Tags); err != nil {
			return nil, err
		}
	case len(in.Targets) == 0:
		return nil, invalidField("targets", "name the targets, or the tags they all carry")
	default:
		if err := access.CheckTargets(in.Targets); err != nil {
			return nil, err
		}
		ids = in.Targets
	}
	inv, err := s.cfg.Access.Inventory(ctx, ids)
	if err != nil {
		return nil, &apiError{code: api.CodeUnavailable, msg: "the targets could not be looked up in Systems Manager; try again shortly", log: err}
	}
	pol, err := s.cfg.Policy(ctx)
	if err != nil {
		return nil, &apiError{code: api.CodeUnavailable, msg: "the administrators' policy could not be read; try again shortly", log: err}
	}
	req := policy.Request{Subject: p.Name, Kind: p.Kind, Groups: p.Groups, Reason: in.Reason, Sudo: in.Sudo, BreakGlass: in.BreakGlass}
	for _, id := range ids {
		req.Targets = append(req.Targets, policy.Instance{ID: id, Platform: inv[id].PlatformType})
	}
	// The tags are read once for every window asked about, as the gate
	// would read them for the one create asks.
	if req.Targets, err = withTags(ctx, s.cfg.Tags, pol, req.Targets); err != nil {
		return nil, &apiError{code: api.CodeUnavailable, msg: "the targets' tags, which policy reads, could not be read; try again shortly", log: err}
	}
	req.Duration = d
	dec := pol.Authorize(req)
	out := &api.Preview{Decision: string(outcome(dec, in.BreakGlass)), Duration: window(d), Message: previewMessage(dec, in.BreakGlass),
		Targets: make([]api.PreviewTarget, 0, len(ids)), Windows: make([]api.PreviewWindow, 0, len(previewWindows))}
	if !in.BreakGlass && dec.Outcome() != policy.Grant {
		glass := req
		glass.BreakGlass = true
		out.BreakGlassOffered = pol.Authorize(glass).Outcome() == policy.Grant
	}
	// A reason still being written is no reason to refuse the preview:
	// what the create would say of it comes with the answer.
	if in.Reason != "" {
		if err := access.CheckReason(in.Reason); err != nil {
			out.ReasonProblem = err.Error()
		}
	}
	if out.Decision == string(policy.NeedsApproval) {
		out.Approvals = dec.Approvals()
		for _, a := range dec.Approvers {
			out.Approvers = append(out.Approvers, a.String())
		}
	}
	for i, td := range dec.Targets {
		t := inv[ids[i]]
		out.Targets = append(out.Targets, api.PreviewTarget{InstanceID: t.InstanceID, ComputerName: t.ComputerName, Platform: t.PlatformType, PingStatus: t.PingStatus,
			Decision: targetDecision(td), Approvals: approvalsOf(td), Why: td.Why, Problem: access.Unusable(t)})
	}
	for _, wd := range previewWindows {
		req.Duration = wd
		dw := pol.Authorize(req)
		pw := api.PreviewWindow{Duration: window(wd), Decision: string(outcome(dw, in.BreakGlass))}
		if pw.Decision == string(policy.NeedsApproval) {
			pw.Approvals = dw.Approvals()
		}
		out.Windows = append(out.Windows, pw)
	}
	return out, nil
}

// withTags fills in the targets' tags from src, leaving none nil, so
// that policy is asked with them every time without reading them again.
func withTags(ctx context.Context, src policy.TagSource, pol *policy.Policy, ts []policy.Instance) ([]policy.Instance, error) {
	tags := map[string]map[string]string{}
	if src != nil && pol.Len() > 0 && len(ts) > 0 {
		ids := make([]string, len(ts))
		for i, t := range ts {
			ids[i] = t.ID
		}
		var err error
		if tags, err = src.Tags(ctx, ids); err != nil {
			return nil, err
		}
	}
	for i := range ts {
		ts[i].Tags = tags[ts[i].ID]
		if ts[i].Tags == nil {
			ts[i].Tags = map[string]string{}
		}
	}
	return ts, nil
}

// window writes a length of window as the API does (1h, 90m, 1h30m).
func window(d time.Duration) string { return duration(time.Time{}, time.Time{}.Add(d)) }

// approvalsOf is how many approvals a target waits for; none when it is
// granted or denied.
func approvalsOf(t policy.TargetDecision) int {
	if t.Allowed {
		return 0
	}
	return t.Approvals
}

func targetDecision(t policy.TargetDecision) string {
	switch {
	case t.Allowed:
		return string(policy.Grant)
	case t.Approvals > 0:
		return string(policy.NeedsApproval)
	}
	return string(policy.Deny)
}

// outcome is what a create meets: break-glass is access at once or not
// at all, so one policy would only hold for approval is refused, as the
// access core refuses it.
func outcome(d policy.Decision, breakGlass bool) policy.Outcome {
	if breakGlass && d.Outcome() == policy.NeedsApproval {
		return policy.Deny
	}
	return d.Outcome()
}

// previewMessage says a decision in words.
func previewMessage(d policy.Decision, breakGlass bool) string {
	if outcome(d, breakGlass) != d.Outcome() {
		return "Policy would grant this only once someone approves, and break-glass is access at once: ask without breaking the glass, and it waits for approval."
	}
	switch d.Outcome() {
	case policy.Grant:
		return "Policy grants this at once."
	case policy.NeedsApproval:
		who := make([]string, len(d.Approvers))
		for i, a := range d.Approvers {
			who[i] = a.Describe()
		}
		if len(who) == 0 {
			return fmt.Sprintf("Policy grants this once %s, but names no one who may approve every target: ask an administrator.", approvalsPhrase(d.Approvals()))
		}
		return fmt.Sprintf("Policy grants this once %s by %s (not you); it waits until then, and its window starts at the last approval.", approvalsPhrase(d.Approvals()), strings.Join(who, " or "))
	}
	var b strings.Builder
	b.WriteString("Policy denies this:")
	for _, t := range d.Denied() {
		fmt.Fprintf(&b, " %s: %s.", t.ID, t.Why)
	}
	if len(d.Targets) == 0 {
		b.WriteString(" the request has no targets.")
	}
	return b.String()
}

func approvalsPhrase(n int) string {
	if n == 1 {
		return "1 person approves"
	}
	return fmt.Sprintf("%d people approve", n)
}
