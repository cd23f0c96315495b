// Package iam is the lab's slice of AWS Identity and Access Management: an
// identity-based policy, read from the same JSON IAM takes, decides whether
// a call may act on its resources. The lab gives each access key one
// policy (or none, for the operator, who may do anything), so tests can
// prove that an identity without a permission is refused as AWS refuses
// it.
//
// It is not IAM. It reads what Passport's shipped policies use and refuses
// the rest at Parse, naming it, rather than ignore it: Version 2012-10-17;
// Statement (one or a list) of Sid, Effect Allow or Deny, Action and
// Resource (a string or a list; * and ? wildcards; the policy variable
// ${aws:PrincipalAccount}); Condition with StringEquals, StringLike,
// StringNotEquals and Null on aws:ResourceTag/<key>. Evaluation is IAM's
// for one identity-based policy: an explicit Deny wins, otherwise every
// resource a call acts on must be allowed by some statement, and nothing
// is allowed by default.
package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Version is the policy language version every policy must name.
const Version = "2012-10-17"

// Policy is a parsed identity-based policy.
type Policy struct {
	statements []statement
}

type statement struct {
	sid       string
	allow     bool
	actions   []string // lower case, may hold wildcards
	named     []string // as the policy spells them
	resources []string
	// conditions are operator -> key -> values; all must hold.
	conditions map[string]map[string][]string
}

// Resource is what a call acts on, as IAM sees it: an ARN, or "*" for
// actions that act on no resource of their own, and the resource's tags
// for conditions on aws:ResourceTag.
type Resource struct {
	ARN  string
	Tags map[string]string
}

// Request is one call to decide.
type Request struct {
	Action    string     // service:Operation, such as ssm:SendCommand
	Resources []Resource // none means the call's resource is "*"
	Account   string     // the caller's account, for ${aws:PrincipalAccount}
}

// Decision is a policy's answer for a request.
type Decision struct {
	Allowed bool
	// Explicit is set when a Deny statement refused the request rather
	// than no statement allowing it.
	Explicit bool
	// Resource is the resource that was refused.
	Resource string
}

// oneOrMany reads IAM's "string or list of strings".
type oneOrMany []string

func (o *oneOrMany) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*o = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*o = many
	return nil
}

var (
	actionName = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9*?]+$`)
	sidName    = regexp.MustCompile(`^[A-Za-z0-9]*$`)
	variable   = regexp.MustCompile(`\$\{[^}]*\}`)
)

// Operators and condition keys the lab evaluates.
var (
	operators     = []string{"StringEquals", "StringLike", "StringNotEquals", "Null"}
	resourceTagAt = "aws:resourcetag/"
)

// Parse reads a policy document. It refuses what IAM would refuse and what
// the lab does not evaluate, saying which.
func Parse(doc []byte) (*Policy, error) {
	var raw struct {
		Version   string
		Id        string
		Statement json.RawMessage
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("iam: the policy is not a JSON object of Version, Id and Statement: %v", err)
	}
	if raw.Version != Version {
		return nil, fmt.Errorf("iam: Version is %q; policies must say %q", raw.Version, Version)
	}
	var list []json.RawMessage
	if json.Unmarshal(raw.Statement, &list) != nil {
		list = []json.RawMessage{raw.Statement}
	}
	if len(list) == 0 || len(raw.Statement) == 0 {
		return nil, errors.New("iam: the policy has no Statement")
	}
	p := &Policy{}
	sids := map[string]bool{}
	for i, rs := range list {
		st, err := parseStatement(rs)
		if err != nil {
			return nil, fmt.Errorf("iam: Statement %d: %w", i+1, err)
		}
		if st.sid != "" {
			if sids[st.sid] {
				return nil, fmt.Errorf("iam: Statement %d: Sid %q is used twice", i+1, st.sid)
			}
			sids[st.sid] = true
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

func parseStatement(b json.RawMessage) (statement, error) {
	var raw struct {
		Sid       string
		Effect    string
		Action    oneOrMany
		Resource  oneOrMany
		Condition map[string]map[string]oneOrMany
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return statement{}, fmt.Errorf("%v (the lab reads Sid, Effect, Action, Resource and Condition; NotAction, NotResource and Principal are not for identity policies it evaluates)", err)
	}
	st := statement{sid: raw.Sid}
	if !sidName.MatchString(raw.Sid) {
		return st, fmt.Errorf("Sid %q must be letters and digits only", raw.Sid)
	}
	switch raw.Effect {
	case "Allow":
		st.allow = true
	case "Deny":
	default:
		return st, fmt.Errorf("Effect is %q; use Allow or Deny", raw.Effect)
	}
	if len(raw.Action) == 0 {
		return st, errors.New("Action is missing")
	}
	for _, a := range raw.Action {
		if a != "*" && !actionName.MatchString(a) {
			return st, fmt.Errorf("Action %q is not service:Operation", a)
		}
		st.actions, st.named = append(st.actions, strings.ToLower(a)), append(st.named, a)
	}
	if len(raw.Resource) == 0 {
		return st, errors.New("Resource is missing")
	}
	for _, r := range raw.Resource {
		if err := checkResource(r); err != nil {
			return st, err
		}
		st.resources = append(st.resources, r)
	}
	st.conditions = map[string]map[string][]string{}
	for op, keys := range raw.Condition {
		if !slices.Contains(operators, op) {
			return st, fmt.Errorf("Condition operator %s is not one the lab evaluates (%s)", op, strings.Join(operators, ", "))
		}
		st.conditions[op] = map[string][]string{}
		for key, values := range keys {
			if !strings.HasPrefix(strings.ToLower(key), resourceTagAt) || len(key) == len(resourceTagAt) {
				return st, fmt.Errorf("Condition key %s is not one the lab evaluates (aws:ResourceTag/<key>)", key)
			}
			if op == "Null" && (len(values) != 1 || values[0] != "true" && values[0] != "false") {
				return st, fmt.Errorf("Null on %s takes \"true\" or \"false\"", key)
			}
			st.conditions[op][key[len(resourceTagAt):]] = values
		}
	}
	return st, nil
}

// checkResource accepts "*" and ARNs of six parts, arn:partition:service:
// region:account:resource, whose only variable is ${aws:PrincipalAccount}.
func checkResource(r string) error {
	if r == "*" {
		return nil
	}
	for _, v := range variable.FindAllString(r, -1) {
		if v != "${aws:PrincipalAccount}" {
			return fmt.Errorf("Resource %q uses %s; the lab substitutes ${aws:PrincipalAccount} only", r, v)
		}
	}
	parts := strings.SplitN(r, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] == "" || parts[5] == "" {
		return fmt.Errorf("Resource %q is not an ARN (arn:aws:service:region:account:resource) or *", r)
	}
	return nil
}

// Decide answers req. Every resource must be allowed and none denied.
func (p *Policy) Decide(req Request) Decision {
	resources := req.Resources
	if len(resources) == 0 {
		resources = []Resource{{ARN: "*"}}
	}
	action := strings.ToLower(req.Action)
	for _, r := range resources {
		for _, st := range p.statements {
			if !st.allow && st.matches(action, r, req.Account) {
				return Decision{Explicit: true, Resource: r.ARN}
			}
		}
	}
	for _, r := range resources {
		allowed := false
		for _, st := range p.statements {
			if st.allow && st.matches(action, r, req.Account) {
				allowed = true
				break
			}
		}
		if !allowed {
			return Decision{Resource: r.ARN}
		}
	}
	return Decision{Allowed: true}
}

func (st statement) matches(action string, r Resource, account string) bool {
	if !slices.ContainsFunc(st.actions, func(a string) bool { return glob(a, action) }) {
		return false
	}
	if !slices.ContainsFunc(st.resources, func(pattern string) bool {
		return glob(strings.ReplaceAll(pattern, "${aws:PrincipalAccount}", account), r.ARN)
	}) {
		return false
	}
	for op, keys := range st.conditions {
		for key, values := range keys {
			if !holds(op, tag(r.Tags, key), values) {
				return false
			}
		}
	}
	return true
}

// tag finds a resource tag; IAM compares tag keys without regard to case.
func tag(tags map[string]string, key string) *string {
	for k, v := range tags {
		if strings.EqualFold(k, key) {
			return &v
		}
	}
	return nil
}

// holds evaluates one condition on a value that may be absent. An absent
// key fails every operator but Null "true" and StringNotEquals, as in IAM.
func holds(op string, value *string, values []string) bool {
	switch op {
	case "Null":
		return (value == nil) == (values[0] == "true")
	case "StringNotEquals":
		return value == nil || !slices.Contains(values, *value)
	}
	if value == nil {
		return false
	}
	for _, v := range values {
		if op == "StringEquals" && v == *value || op == "StringLike" && glob(v, *value) {
			return true
		}
	}
	return false
}

// glob matches IAM's wildcards: * any run of characters, ? any one. It
// backtracks only to the last star, so it takes time proportional to the
// product of the lengths at worst, whatever the pattern.
func glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p, mark = star+1, mark+1
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Actions lists every action a policy names, in the order it names them,
// for checks that each is a real one.
func (p *Policy) Actions() []string {
	var out []string
	for _, st := range p.statements {
		out = append(out, st.named...)
	}
	return out
}
