package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Cases are an administrator's tests of a policy: requests with the
// decision each must get, run offline by `passport policy test`.
//
//	{
//	  "instances": {"web-1": {"id": "i-0123456789abcdef0", "platform": "Linux", "tags": {"Env": "staging"}}},
//	  "defaults": {"reason": "INC-1 disk full", "duration": "1h"},
//	  "cases": [
//	    {"name": "ops reach staging at once", "principal": {"user": "alice", "groups": ["ops"]},
//	     "targets": ["web-1"], "expect": "grant"},
//	    {"name": "longer needs another operator", "principal": {"user": "alice", "groups": ["ops"]},
//	     "targets": ["web-1"], "duration": "3h", "expect": "approval", "approvals": 1,
//	     "approvers": ["group:admins", "group:ops"]},
//	    {"name": "bob may not approve", "action": "approve", "principal": {"user": "bob", "groups": ["dev"]},
//	     "requester": "alice", "targets": ["web-1"], "expect": "deny"}
//	  ]
//	}
//
// Every field is checked: a misspelt one is an error, never ignored.
type Cases struct {
	Instances map[string]CaseInstance `json:"instances"`
	Defaults  CaseRequest             `json:"defaults"`
	Cases     []Case                  `json:"cases"`
}

// CaseInstance is an instance as policy sees it.
type CaseInstance struct {
	ID       string            `json:"id"`
	Platform string            `json:"platform"`
	Tags     map[string]string `json:"tags"`
}

// CaseRequest is the part of a case that describes the request; Defaults
// fills what a case leaves out.
type CaseRequest struct {
	Principal  *CasePrincipal `json:"principal,omitempty"`
	Action     string         `json:"action,omitempty"`
	Requester  string         `json:"requester,omitempty"`
	Targets    []string       `json:"targets,omitempty"`
	Duration   string         `json:"duration,omitempty"`
	Reason     *string        `json:"reason,omitempty"`
	Sudo       *bool          `json:"sudo,omitempty"`
	BreakGlass *bool          `json:"break_glass,omitempty"`
}

// CasePrincipal is who asks: a person and their groups, or a machine.
type CasePrincipal struct {
	User    string   `json:"user,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Machine string   `json:"machine,omitempty"`
}

// Case is one request and what policy must say about it.
type Case struct {
	Name string `json:"name"`
	CaseRequest
	// Expect is grant, approval or deny for access; allow or deny for
	// view, end and approve.
	Expect string `json:"expect"`
	// Approvals and Approvers, with Expect approval: how many approvals
	// the request needs, and exactly who policy names as approvers
	// (Approver.String). Left out, they are not checked.
	Approvals int      `json:"approvals,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
}

// maxCasesBytes bounds a cases file, as maxPolicyBytes bounds a policy.
const maxCasesBytes = 4 << 20

// ParseCases reads a cases file, refusing unknown fields, cases without a
// name or an expectation, and targets no instance defines.
func ParseCases(r io.Reader) (*Cases, error) {
	doc, err := io.ReadAll(io.LimitReader(r, maxCasesBytes+1))
	if err != nil {
		return nil, err
	}
	if len(doc) > maxCasesBytes {
		return nil, fmt.Errorf("the cases file is larger than %d bytes", maxCasesBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	var cs Cases
	if err := dec.Decode(&cs); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			line := bytes.Count(doc[:min(int(syntax.Offset), len(doc))], []byte("\n")) + 1
			return nil, fmt.Errorf("the cases file is not JSON at line %d: %v", line, err)
		}
		return nil, fmt.Errorf("the cases file does not read as cases: %v", err)
	}
	if dec.More() {
		return nil, errors.New("the cases file holds more than one JSON value: put every case in one cases list")
	}
	if len(cs.Cases) == 0 {
		return nil, errors.New("the cases file has no cases")
	}
	for name, in := range cs.Instances {
		if in.ID == "" {
			return nil, fmt.Errorf("instance %q has no id", name)
		}
	}
	names := map[string]bool{}
	for i, c := range cs.Cases {
		if c.Name == "" {
			return nil, fmt.Errorf("case %d has no name", i+1)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("case %q is named twice: name each case once, so a failure says which", c.Name)
		}
		names[c.Name] = true
		if _, err := cs.request(c); err != nil {
			return nil, fmt.Errorf("case %q: %w", c.Name, err)
		}
	}
	return &cs, nil
}

// request builds a case's request, its defaults filled in.
func (cs *Cases) request(c Case) (Request, error) {
	d := cs.Defaults
	p := c.Principal
	if p == nil {
		p = d.Principal
	}
	req := Request{Action: Action(first(c.Action, d.Action, string(Access))), Requester: first(c.Requester, d.Requester)}
	switch {
	case p == nil || (p.User == "") == (p.Machine == ""):
		return req, errors.New(`give a principal: {"user": "...", "groups": [...]} or {"machine": "<ARN>"}`)
	case p.Machine != "" && len(p.Groups) > 0:
		return req, errors.New("a machine has no groups")
	case p.Machine != "":
		req.Subject, req.Kind = p.Machine, Machine
	default:
		req.Subject, req.Groups = p.User, p.Groups
	}
	if !slices.Contains([]Action{Access, View, End, Approve, DeleteRecording}, req.Action) {
		return req, fmt.Errorf("action %q is not access, view, end, approve or delete-recording", req.Action)
	}
	want := []string{string(Grant), string(NeedsApproval), string(Deny)}
	if req.Action != Access {
		want = []string{"allow", "deny"}
	}
	if !slices.Contains(want, c.Expect) {
		return req, fmt.Errorf("expect %q must be one of %s for action %s", c.Expect, strings.Join(want, ", "), req.Action)
	}
	if (c.Approvals != 0 || c.Approvers != nil) && c.Expect != string(NeedsApproval) {
		return req, errors.New("approvals and approvers go with expect approval")
	}
	dur := first(c.Duration, d.Duration, "1h")
	var err error
	if req.Duration, err = time.ParseDuration(dur); err != nil || req.Duration <= 0 {
		return req, fmt.Errorf("duration %q is not a duration like 45m or 2h", dur)
	}
	req.Reason = deref(c.Reason, deref(d.Reason, ""))
	req.Sudo = deref(c.Sudo, deref(d.Sudo, false))
	req.BreakGlass = deref(c.BreakGlass, deref(d.BreakGlass, false))
	targets := c.Targets
	if targets == nil {
		targets = d.Targets
	}
	if len(targets) == 0 {
		return req, errors.New("give targets: names from instances")
	}
	for _, name := range targets {
		in, ok := cs.Instances[name]
		if !ok {
			return req, fmt.Errorf("target %q is not one of the file's instances", name)
		}
		req.Targets = append(req.Targets, Instance{ID: in.ID, Platform: first(in.Platform, "Linux"), Tags: in.Tags})
	}
	return req, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// CaseResult is what one case got.
type CaseResult struct {
	Case Case
	// Got is the decision in the words of Case.Expect.
	Got       string
	Approvals int
	Approvers []string
	Decision  Decision
	// Problem says how Got differs from what the case expects; empty when
	// the case passed.
	Problem string
}

// Passed reports whether the case got what it expects.
func (r CaseResult) Passed() bool { return r.Problem == "" }

// Run decides every case with p.
func (p *Policy) Run(cs *Cases) []CaseResult {
	out := make([]CaseResult, 0, len(cs.Cases))
	for _, c := range cs.Cases {
		req, _ := cs.request(c) // ParseCases checked it
		d := p.Authorize(req)
		r := CaseResult{Case: c, Decision: d, Got: string(d.Outcome()), Approvals: d.Approvals()}
		if req.Action != Access {
			r.Got = "allow"
			if !d.Allowed() {
				r.Got = "deny"
			}
		}
		for _, a := range d.Approvers {
			r.Approvers = append(r.Approvers, a.String())
		}
		switch {
		case r.Got != c.Expect:
			r.Problem = fmt.Sprintf("got %s, want %s", r.gotPhrase(), c.Expect)
		case c.Approvals != 0 && c.Approvals != r.Approvals:
			r.Problem = fmt.Sprintf("got %s, want %s", r.gotPhrase(), plural(c.Approvals, "approval"))
		case c.Approvers != nil && !sameSet(c.Approvers, r.Approvers):
			r.Problem = fmt.Sprintf("got %s, want approvers %s", r.gotPhrase(), strings.Join(c.Approvers, ", "))
		}
		out = append(out, r)
	}
	return out
}

// gotPhrase is the decision in a line: "approval (1 approval, from
// group:admins)".
func (r CaseResult) gotPhrase() string {
	if r.Got != string(NeedsApproval) {
		return r.Got
	}
	from := "no one policy names"
	if len(r.Approvers) > 0 {
		from = strings.Join(r.Approvers, ", ")
	}
	return fmt.Sprintf("approval (%s, from %s)", plural(r.Approvals, "approval"), from)
}

// Report writes one line per case (ok or FAIL, with the decision) and,
// for a failure, why policy decided so per target. It returns how many
// failed.
func Report(w io.Writer, results []CaseResult) int {
	failed := 0
	for _, r := range results {
		if r.Passed() {
			fmt.Fprintf(w, "ok    %s: %s\n", r.Case.Name, r.gotPhrase())
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL  %s: %s\n", r.Case.Name, r.Problem)
		for _, t := range r.Decision.Targets {
			fmt.Fprintf(w, "        %s: %s\n", t.ID, t.Why)
		}
	}
	fmt.Fprintf(w, "%d cases, %d failed\n", len(results), failed)
	return failed
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
