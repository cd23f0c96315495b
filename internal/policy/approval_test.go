package policy

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func approvalsPolicy(t testing.TB) *Policy {
	t.Helper()
	doc, err := os.ReadFile("testdata/approvals.cedar")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("file:///etc/passport/policy.cedar", doc)
	if err != nil {
		t.Fatalf("the approvals example does not load: %v", err)
	}
	return p
}

// The policy guide's three worked examples: production needs an
// administrator's approval; staging is granted at once to ops up to 2h
// and longer needs approval; on-call may break the glass on production.
func TestApprovalExamples(t *testing.T) {
	p := approvalsPolicy(t)
	const ticket = "INC-4711 disk full on web"
	tests := []struct {
		name       string
		groups     []string
		target     string
		duration   time.Duration
		breakGlass bool
		outcome    Outcome
		approvals  int
		approvers  []string
		why        string
	}{
		{"ops on staging for 1h: at once", []string{"ops"}, staging, time.Hour, false, Grant, 0, nil, `permitted by policy "ops-staging"`},
		{"ops on staging for 2h: at once", []string{"ops"}, staging, 2 * time.Hour, false, Grant, 0, nil, `"ops-staging"`},
		{"ops on staging for 3h: one approval", []string{"ops"}, staging, 3 * time.Hour, false, NeedsApproval, 1, []string{"group:admins", "group:ops"}, `needs 1 approval under policy "ops-staging-longer" (line 10)`},
		{"ops on staging for 9h: denied", []string{"ops"}, staging, 9 * time.Hour, false, Deny, 0, nil, "no policy"},
		{"ops on production: an admin approves", []string{"ops"}, production, time.Hour, false, NeedsApproval, 1, []string{"group:admins"}, `"production-approved"`},
		{"on-call on production: an admin approves", []string{"oncall"}, production, time.Hour, false, NeedsApproval, 1, []string{"group:admins"}, `"production-approved"`},
		{"on-call breaks the glass on production", []string{"oncall"}, production, time.Hour, true, Grant, 0, nil, `permitted by policy "oncall-break-glass"`},
		{"on-call breaks the glass for too long", []string{"oncall"}, production, 3 * time.Hour, true, NeedsApproval, 1, []string{"group:admins"}, `"production-approved"`},
		{"ops may not break the glass", []string{"ops"}, production, time.Hour, true, NeedsApproval, 1, []string{"group:admins"}, `"production-approved"`},
		{"developers have nothing", []string{"developers"}, production, time.Hour, true, Deny, 0, nil, "with break-glass"},
		{"staging break-glass is plain access for ops", []string{"ops"}, staging, time.Hour, true, Grant, 0, nil, `"ops-staging"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Authorize(Request{Subject: "alice", Groups: tt.groups, Targets: []Instance{hosts[tt.target]}, Duration: tt.duration, Reason: ticket, BreakGlass: tt.breakGlass})
			if d.Outcome() != tt.outcome || d.Approvals() != tt.approvals {
				t.Fatalf("outcome %s with %d approvals (%s), want %s with %d", d.Outcome(), d.Approvals(), d.Targets[0].Why, tt.outcome, tt.approvals)
			}
			if !strings.Contains(d.Targets[0].Why, tt.why) {
				t.Errorf("why %q lacks %q", d.Targets[0].Why, tt.why)
			}
			var got []string
			for _, a := range d.Approvers {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tt.approvers) {
				t.Errorf("approvers %q, want %q", got, tt.approvers)
			}
			err := d.Err()
			var approval *ApprovalError
			var denied *DeniedError
			switch tt.outcome {
			case Grant:
				if err != nil {
					t.Errorf("Err() = %v for a grant", err)
				}
			case NeedsApproval:
				if !errors.As(err, &approval) || approval.Approvals != tt.approvals || !strings.Contains(err.Error(), "other than the requester") {
					t.Errorf("Err() = %v, want an ApprovalError for %d", err, tt.approvals)
				}
			case Deny:
				if !errors.As(err, &denied) {
					t.Errorf("Err() = %v, want a DeniedError", err)
				}
			}
		})
	}
}

// A request needs what its most demanding target needs, and a denied
// target denies it all.
func TestApprovalAcrossTargets(t *testing.T) {
	p := approvalsPolicy(t)
	req := Request{Subject: "alice", Groups: []string{"ops"}, Duration: time.Hour, Reason: "INC-1 restart",
		Targets: []Instance{hosts[staging], hosts[production]}}
	d := p.Authorize(req)
	if d.Outcome() != NeedsApproval || !d.Targets[0].Allowed || d.Targets[1].Allowed || d.Approvals() != 1 {
		t.Fatalf("staging and production: %s %+v", d.Outcome(), d.Targets)
	}
	// Approvers must be able to approve every target: only administrators
	// approve production, so ops drop out.
	if len(d.Approvers) != 1 || d.Approvers[0].String() != "group:admins" {
		t.Errorf("approvers %v, want administrators alone", d.Approvers)
	}
	req.Targets = append(req.Targets, hosts[untagged])
	if d := p.Authorize(req); d.Outcome() != Deny || len(d.Denied()) != 1 || d.Denied()[0].ID != untagged {
		t.Errorf("with an untagged host: %s, denied %+v", d.Outcome(), d.Denied())
	}
}

// Approving is asked of the approver, with the request's context.
func TestWhoMayApprove(t *testing.T) {
	p := approvalsPolicy(t)
	ask := func(approver string, groups []string, target string) bool {
		return p.Authorize(Request{Action: Approve, Subject: approver, Groups: groups, Requester: "alice",
			Targets: []Instance{hosts[target]}, Duration: time.Hour, Reason: "INC-1 x"}).Allowed()
	}
	if !ask("carol", []string{"admins"}, production) || ask("dave", []string{"ops"}, production) {
		t.Error("production: admins approve, ops do not")
	}
	if !ask("dave", []string{"ops"}, staging) || ask("bob", []string{"developers"}, staging) {
		t.Error("staging: ops approve, developers do not")
	}
}

// Policies without @approvals mean what they meant before approvals
// existed: the example policy's matrix gives the same answers, and none
// of them needs approval.
func TestOldPoliciesNeverNeedApproval(t *testing.T) {
	p := examplePolicy(t)
	for _, groups := range [][]string{{"ops"}, {"admins"}, {"oncall"}, {"developers"}, nil} {
		for _, h := range hosts {
			for _, bg := range []bool{false, true} {
				d := p.Authorize(Request{Subject: "x", Groups: groups, Targets: []Instance{h}, Duration: time.Hour, Reason: "INC-1 look", BreakGlass: bg})
				if d.Outcome() == NeedsApproval {
					t.Errorf("%v on %s needs approval under a policy without @approvals", groups, h.ID)
				}
			}
		}
	}
}

func TestApprovalAnnotationsAreChecked(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"not a number", `@approvals("one") permit (principal, action == Passport::Action::"access", resource);`, `@approvals("one") must be a whole number from 1 to 5`},
		{"zero", `@approvals("0") permit (principal, action == Passport::Action::"access", resource);`, "from 1 to 5"},
		{"too many", `@approvals("6") permit (principal, action == Passport::Action::"access", resource);`, "from 1 to 5"},
		{"on a forbid", `@approvals("1") forbid (principal, action == Passport::Action::"access", resource);`, "on a forbid"},
		{"any action", `@approvals("1") permit (principal, action, resource);`, `not exactly Passport::Action::"access"`},
		{"on approve", `@approvals("1") permit (principal, action == Passport::Action::"approve", resource);`, `not exactly Passport::Action::"access"`},
		{"misspelt", "@id(\"p\")\n@approval(\"1\") permit (principal, action == Passport::Action::\"access\", resource);", `policy "p" (line 1): @approval is not an annotation Passport knows`},
		{"misspelt break glass", `@breakglass("true") permit (principal, action == Passport::Action::"access", resource);`, "@breakglass is not an annotation"},
		{"unknown context", `permit (principal, action, resource) when { context.breakglass };`, "does not fit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("file:///p.cedar", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Parse("file:///p.cedar", []byte(`@description("a note") @approvals(" 2 ") permit (principal, action == Passport::Action::"access", resource);`)); err != nil {
		t.Errorf("a valid @approvals with another annotation: %v", err)
	}
}

// Who may approve is found wherever policy names them: in the scope, in
// conditions, a person by name, and nobody at all.
func TestApproversNamed(t *testing.T) {
	const access = `@approvals("1") permit (principal, action == Passport::Action::"access", resource);`
	tests := []struct {
		name, approve string
		want          []string
	}{
		{"a group in the scope", `permit (principal in Passport::Group::"leads", action == Passport::Action::"approve", resource);`, []string{"group:leads"}},
		{"a group in a condition", `permit (principal, action == Passport::Action::"approve", resource) when { principal in Passport::Group::"leads" };`, []string{"group:leads"}},
		{"members of two groups", `permit (principal, action == Passport::Action::"approve", resource) when { principal in Passport::Group::"a" && principal in Passport::Group::"b" };`, []string{"group:a+b"}},
		{"a person", `permit (principal == Passport::User::"carol", action == Passport::Action::"approve", resource);`, []string{"user:carol"}},
		{"anyone", `permit (principal, action == Passport::Action::"approve", resource);`, []string{"anyone"}},
		{"a group but not another", `permit (principal in Passport::Group::"leads", action == Passport::Action::"approve", resource) unless { principal in Passport::Group::"contractors" };`, []string{"group:leads"}},
		{"nobody", `permit (principal in Passport::Group::"leads", action == Passport::Action::"view", resource);`, nil},
		{"forbidden", `permit (principal in Passport::Group::"leads", action == Passport::Action::"approve", resource);
forbid (principal, action == Passport::Action::"approve", resource);`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("file:///p.cedar", []byte(access+"\n"+tt.approve))
			if err != nil {
				t.Fatal(err)
			}
			d := p.Authorize(Request{Subject: "alice", Targets: []Instance{hosts[staging]}, Duration: time.Hour, Reason: "x"})
			var got []string
			for _, a := range d.Approvers {
				got = append(got, a.String())
			}
			if d.Outcome() != NeedsApproval || !slices.Equal(got, tt.want) {
				t.Errorf("%s, approvers %q; want approval from %q", d.Outcome(), got, tt.want)
			}
			if len(tt.want) == 0 && !strings.Contains(d.Err().Error(), "no permit of Passport::Action::\"approve\" covers every target") {
				t.Errorf("an approval nobody can give does not say so: %v", d.Err())
			}
		})
	}
}

// Approvers are asked about instances alike in what the approve policies
// read once; a policy that reads anything else (an instance's id) is
// asked about each.
func TestApproversOfEveryTarget(t *testing.T) {
	// Another staging host, without the Name tag the first has.
	other := Instance{ID: "i-0aaaaaaaaaaaaaaa1", Platform: "Linux", Tags: map[string]string{"Env": "staging"}}
	req := Request{Subject: "alice", Targets: []Instance{hosts[staging], other}, Duration: time.Hour, Reason: "x"}
	const access = `@approvals("1") permit (principal, action == Passport::Action::"access", resource);` + "\n"
	for _, tt := range []struct {
		name, approve string
		want          int
	}{
		{"by tag: both alike", `permit (principal in Passport::Group::"leads", action == Passport::Action::"approve", resource) when { resource.hasTag("Env") && resource.getTag("Env") == "staging" };`, 1},
		{"by id in the scope", `permit (principal in Passport::Group::"leads", action == Passport::Action::"approve", resource == Passport::Instance::"` + staging + `");`, 0},
		{"by id in a condition", `permit (principal in Passport::Group::"leads", action == Passport::Action::"approve", resource) when { resource == Passport::Instance::"` + staging + `" };`, 0},
		{"by a tag the other lacks", `permit (principal in Passport::Group::"leads", action == Passport::Action::"approve", resource) when { resource.hasTag("Name") };`, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("file:///p.cedar", []byte(access+tt.approve))
			if err != nil {
				t.Fatal(err)
			}
			if d := p.Authorize(req); len(d.Approvers) != tt.want {
				t.Errorf("approvers %v, want %d", d.Approvers, tt.want)
			}
		})
	}
}

// The approvals example's own cases, which the policy guide shows, pass;
// and a case that expects otherwise fails, saying what it got and why.
func TestCases(t *testing.T) {
	p := approvalsPolicy(t)
	f, err := os.Open("testdata/approvals-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cs, err := ParseCases(f)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if failed := Report(&out, p.Run(cs)); failed != 0 {
		t.Fatalf("%d cases failed:\n%s", failed, out.String())
	}
	if !strings.Contains(out.String(), "ok    production needs an admin: approval (1 approval, from group:admins)") {
		t.Errorf("report:\n%s", out.String())
	}

	cs.Cases[0].Expect = "approval"
	cs.Cases[1].Approvers = []string{"group:admins"}
	cs.Cases[3].Approvals = 2
	cs.Cases[7].Expect = "deny"
	out.Reset()
	if failed := Report(&out, p.Run(cs)); failed != 4 {
		t.Errorf("%d failed, want 4:\n%s", failed, out.String())
	}
	for _, want := range []string{
		"FAIL  ops reach staging at once: got grant, want approval\n        i-0123456789abcdef0: permitted by policy \"ops-staging\"",
		"got approval (1 approval, from group:admins, group:ops), want approvers group:admins",
		"FAIL  production needs an admin: got approval (1 approval, from group:admins), want 2 approvals",
		"FAIL  an admin approves production: got allow, want deny",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBadCases(t *testing.T) {
	const inst = `"instances": {"web-1": {"id": "i-0123456789abcdef0"}}, `
	for _, tt := range []struct{ name, doc, want string }{
		{"not json", "{\n  \"cases\": [}", "not JSON at line 2"},
		{"misspelt field", `{` + inst + `"cases": [{"name": "a", "principal": {"user": "a"}, "targets": ["web-1"], "expct": "grant"}]}`, `unknown field "expct"`},
		{"no cases", `{` + inst + `"cases": []}`, "no cases"},
		{"no name", `{` + inst + `"cases": [{"principal": {"user": "a"}, "targets": ["web-1"], "expect": "grant"}]}`, "case 1 has no name"},
		{"twice", `{` + inst + `"cases": [{"name": "a", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "grant"}, {"name": "a", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "deny"}]}`, `case "a" is named twice`},
		{"unknown target", `{` + inst + `"cases": [{"name": "a", "principal": {"user": "a"}, "targets": ["web-2"], "expect": "grant"}]}`, `target "web-2" is not one of the file's instances`},
		{"no principal", `{` + inst + `"cases": [{"name": "a", "targets": ["web-1"], "expect": "grant"}]}`, "give a principal"},
		{"user and machine", `{` + inst + `"cases": [{"name": "a", "principal": {"user": "a", "machine": "m"}, "targets": ["web-1"], "expect": "grant"}]}`, "give a principal"},
		{"bad expect", `{` + inst + `"cases": [{"name": "a", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "allow"}]}`, `expect "allow" must be one of grant, approval, deny`},
		{"bad expect for view", `{` + inst + `"cases": [{"name": "a", "action": "view", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "grant"}]}`, "allow, deny"},
		{"unknown action", `{` + inst + `"cases": [{"name": "a", "action": "delete", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "deny"}]}`, `action "delete"`},
		{"approvers on a grant", `{` + inst + `"cases": [{"name": "a", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "grant", "approvals": 1}]}`, "go with expect approval"},
		{"bad duration", `{` + inst + `"cases": [{"name": "a", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "grant", "duration": "an hour"}]}`, `duration "an hour"`},
		{"instance without id", `{"instances": {"web-1": {}}, "cases": [{"name": "a", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "grant"}]}`, `instance "web-1" has no id`},
		{"two values", `{` + inst + `"cases": [{"name": "a", "principal": {"user": "a"}, "targets": ["web-1"], "expect": "grant"}]} {}`, "more than one JSON value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCases(strings.NewReader(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
