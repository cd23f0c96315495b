// Package policy decides, with admin-owned Cedar policies, who may reach
// which instances, for how long, with what privileges, and with what kind
// of reason.
//
// Every target of a request is one Cedar request: the principal is
// Passport::User::"<subject>", a member of Passport::Group::"<group>" for
// each of the session's groups; the action is Passport::Action::"access";
// the resource is Passport::Instance::"<instance id>" with its platform as
// an attribute and its AWS tags as Cedar entity tags (hasTag/getTag, which
// take any key, "aws:cloudformation:stack-name" included); the context
// carries duration (seconds), reason, sudo and target_count. Schema holds
// the whole shape, and policies are validated against it when loaded.
//
// Policies come from a place only administrators can write, never from
// the requester: an SSM parameter (ssm:///passport/policy) in production,
// a file (file:///etc/passport/policy.cedar) in a lab. Where there is no
// policy, everything is denied, and the denial says where policy was
// looked for.
//
// Request values travel to Cedar as typed values, never as policy text, so
// no subject, group, reason or tag can change what a policy means.
package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// DefaultSource is where production policy lives.
const DefaultSource = "ssm:///passport/policy"

// maxPolicyBytes bounds a policy document. An SSM advanced parameter holds
// 8 KiB; a file is held to a generous multiple of that so a wrong path
// (a disk image, /dev/zero) fails fast instead of filling memory.
const maxPolicyBytes = 1 << 20

// Policy is a parsed, validated policy set and where it came from. The zero
// of a Policy is never used; a Policy with no statements denies everything.
type Policy struct {
	source     string
	statements []statement
	set        cedar.PolicyMap
	// approveSet is the part of set that can apply to the approve action,
	// and candidates the principals its permits name: what the decision
	// tries to say who may approve.
	approveSet cedar.PolicyMap
	candidates []candidate
	// approveReads is what approve policies read of an instance, when
	// that is its platform and named tags alone; nil otherwise.
	approveReads *instanceReads
	// missing says why there is no policy at all ("parameter ... not
	// found"), for denials to repeat.
	missing string
}

// statement is one policy of the set, named for people.
type statement struct {
	id   cedar.PolicyID
	name string // the @id annotation, or "policy N" in source order
	line int
	// approvals is the permit's @approvals: 0 grants at once.
	approvals int
	// failOpen is a record permit's @if_cannot_record("grant").
	failOpen bool
	// names record is set when the policy's action scope names
	// Passport::Action::"record" itself: a permit of every action is a
	// grant of rights, not an obligation to record.
	namesRecord bool
}

// ParameterGetter is the one SSM call Load needs; *ssm.Client has it.
type ParameterGetter interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Load reads the policy named by source: "ssm:///<parameter name>" (read
// with decryption, so a SecureString works) or "file:///<absolute path>".
// A parameter or file that does not exist gives a Policy that denies
// everything and says where it looked; a policy that does not parse or does
// not fit Schema is an error naming the line.
func Load(ctx context.Context, source string, params ParameterGetter) (*Policy, error) {
	u, err := url.Parse(source)
	if err != nil || u.Host != "" || u.Path == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("policy_source %q is not a policy location: write ssm:///<parameter name> or file:///<absolute path>", source)
	}
	switch u.Scheme {
	case "ssm":
		if params == nil {
			return nil, fmt.Errorf("policy_source %s needs an SSM client, and none was configured", source)
		}
		out, err := params.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(u.Path), WithDecryption: aws.Bool(true)})
		var notFound *ssmtypes.ParameterNotFound
		switch {
		case errors.As(err, &notFound):
			return &Policy{source: source, missing: "SSM parameter " + u.Path + " does not exist"}, nil
		case err != nil:
			return nil, fmt.Errorf("reading policy from SSM parameter %s: %w", u.Path, err)
		case out.Parameter == nil || out.Parameter.Value == nil:
			return &Policy{source: source, missing: "SSM parameter " + u.Path + " has no value"}, nil
		}
		return Parse(source, []byte(*out.Parameter.Value))
	case "file":
		f, err := os.Open(u.Path)
		if errors.Is(err, os.ErrNotExist) {
			return &Policy{source: source, missing: "file " + u.Path + " does not exist"}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading policy: %w", err)
		}
		defer f.Close()
		// A policy anyone may rewrite is the requester's policy, not the
		// administrator's.
		if info, err := f.Stat(); err == nil && info.Mode().Perm()&0o022 != 0 {
			return nil, fmt.Errorf("policy file %s is writable by group or others (mode %04o): make it writable by its owner alone (chmod go-w)", u.Path, info.Mode().Perm())
		}
		doc, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
		if err != nil {
			return nil, fmt.Errorf("reading policy file %s: %w", u.Path, err)
		}
		if len(doc) > maxPolicyBytes {
			return nil, fmt.Errorf("policy file %s is larger than %d bytes: is it the right file?", u.Path, maxPolicyBytes)
		}
		return Parse(source, doc)
	}
	return nil, fmt.Errorf("policy_source %q has scheme %q: use ssm:///<parameter name> or file:///<absolute path>", source, u.Scheme)
}

// parsePos is where cedar-go's parser reports an error.
var parsePos = regexp.MustCompile(`<input>:(\d+):(\d+)`)

// Parse parses a Cedar policy set read from source (named in errors and
// denials) and validates every policy against Schema. Two policies with the
// same @id are refused, since denials name policies by it.
func Parse(source string, doc []byte) (*Policy, error) {
	list, err := cedar.NewPolicyListFromBytes(source, doc)
	if err != nil {
		msg := parsePos.ReplaceAllString(err.Error(), "line $1, column $2")
		return nil, fmt.Errorf("policy from %s does not parse: %s", source, msg)
	}
	p := &Policy{source: source, set: make(cedar.PolicyMap, len(list)), approveSet: cedar.PolicyMap{}}
	if len(list) == 0 {
		p.missing = source + " holds no policies"
		return p, nil
	}
	v := validate.New(resolvedSchema)
	named := map[string]int{}
	for i, c := range list {
		line := c.Position().Line
		name := fmt.Sprintf("policy %d", i+1)
		if id, ok := c.Annotations()["id"]; ok {
			name = string(id)
			if prev, dup := named[name]; dup {
				return nil, fmt.Errorf("policy from %s: @id(%q) at line %d is already used at line %d: give each policy its own id", source, name, line, prev)
			}
			named[name] = line
		}
		ast := (*xast.Policy)(c.AST())
		if err := v.Policy(name, ast); err != nil {
			return nil, fmt.Errorf("policy from %s: %s (line %d) does not fit Passport's schema: %s", source, quoteName(name), line, oneLine(err.Error()))
		}
		approvals, err := approvalsOf(ast)
		if err != nil {
			return nil, fmt.Errorf("policy from %s: %s (line %d): %s", source, quoteName(name), line, err)
		}
		failOpen, err := failOpenOf(ast)
		if err != nil {
			return nil, fmt.Errorf("policy from %s: %s (line %d): %s", source, quoteName(name), line, err)
		}
		id := cedar.PolicyID(fmt.Sprint(i))
		p.set[id] = c
		if appliesTo(ast.Action, Approve.uid()) {
			p.approveSet[id] = c
		}
		p.statements = append(p.statements, statement{id: id, name: name, line: line, approvals: approvals, failOpen: failOpen,
			namesRecord: appliesTo(ast.Action, Record.uid()) && !isAllActions(ast.Action)})
	}
	p.candidates = approveCandidates(list)
	var approveList []*cedar.Policy
	for _, st := range p.statements {
		if c, ok := p.approveSet[st.id]; ok {
			approveList = append(approveList, c)
		}
	}
	p.approveReads = readsOf(approveList)
	return p, nil
}

// Source says where the policy was read from.
func (p *Policy) Source() string { return p.source }

// Missing says why there is no policy at all (the parameter or file does
// not exist, or holds no policies); empty when there is one.
func (p *Policy) Missing() string { return p.missing }

// Len is the number of policies in the set; 0 denies everything.
func (p *Policy) Len() int { return len(p.statements) }

func (p *Policy) statement(id cedar.PolicyID) statement {
	for _, s := range p.statements {
		if s.id == id {
			return s
		}
	}
	return statement{id: id, name: string(id)}
}

// quoteName shows an @id quoted and a positional name as it is.
func quoteName(name string) string {
	if strings.HasPrefix(name, "policy ") {
		return name
	}
	return fmt.Sprintf("policy %q", name)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Summary counts a policy set's statements by kind.
type Summary struct {
	Permits, Forbids int
	// WithApprovals counts the permits that grant only with approval.
	WithApprovals int
}

// Summary counts p's statements.
func (p *Policy) Summary() Summary {
	var s Summary
	for _, st := range p.statements {
		if p.set[st.id].Effect() == cedar.Forbid {
			s.Forbids++
			continue
		}
		s.Permits++
		if st.approvals > 0 {
			s.WithApprovals++
		}
	}
	return s
}
