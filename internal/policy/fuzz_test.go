package policy

import (
	"strings"
	"testing"
	"time"
)

const fuzzPolicy = `@id("ops-staging-with-ticket")
permit (principal in Passport::Group::"ops", action == Passport::Action::"access", resource)
when { resource.hasTag("Env") && resource.getTag("Env") == "staging" && context.reason like "INC-*" };

@id("not-mallory")
forbid (principal == Passport::User::"mallory", action, resource);
`

// FuzzRequestValues feeds hostile subjects, groups, reasons and tags into a
// fixed policy and checks the decision against the policy's meaning written
// in Go: a string that looks like Cedar must stay a string.
func FuzzRequestValues(f *testing.F) {
	p, err := Parse("fuzz.cedar", []byte(fuzzPolicy))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("alice", "ops", "INC-1 restart", "Env", "staging")
	f.Add("mallory", "ops", "INC-1 restart", "Env", "staging")
	f.Add(`alice" || true || "`, `ops"}, Passport::Group::"admins`, `INC-*`, "Env", "staging")
	f.Add("alice", `ops" || principal == "x`, `"; permit(principal, action, resource); //`, `Env"] || true || ["`, "staging")
	f.Add("alice\n  i-0123: allowed", "ops", "INC-\x00\xff", "Env", `staging" || true`)
	f.Add("", "", "", "", "")
	f.Add("alice", "ops", "INC-", "Env\x00", "staging")
	f.Add("alice", "ops", "INC-ü", "env", "staging")
	f.Fuzz(func(t *testing.T, subject, group, reason, tagKey, tagValue string) {
		tags := map[string]string{"Env": "staging", tagKey: tagValue}
		d := p.Authorize(Request{
			Subject: subject, Groups: []string{group}, Reason: reason, Duration: time.Hour,
			Targets: []Instance{{ID: "i-0123456789abcdef0", Platform: "Linux", Tags: tags}},
		})
		want := group == "ops" && tags["Env"] == "staging" && strings.HasPrefix(reason, "INC-") && subject != "mallory"
		if d.Allowed() != want {
			t.Fatalf("subject %q group %q reason %q tags %q: allowed %v (%s), policy means %v", subject, group, reason, tags, d.Allowed(), d.Targets[0].Why, want)
		}
		if err := d.Err(); err != nil && strings.Count(err.Error(), "\n") != 1 {
			t.Fatalf("a request value broke the denial into extra lines:\n%s", err)
		}
	})
}

// FuzzParse feeds arbitrary documents to Parse: it must refuse or accept
// without panicking, and an accepted policy must decide without panicking.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fuzzPolicy,
		`permit (principal, action, resource);`,
		`forbid (principal, action, resource) when { context.duration * 9223372036854775807 > 0 };`,
		`@id("x") permit (principal in Passport::Group::"ops", action, resource) when { resource.hasTag("a:b") && resource.getTag("a:b") like "*x*" };`,
		"permit (principal, action, resource)\nwhen { context.reason like \"INC-",
		`@id("") @id("") permit(principal,action,resource);`,
		`@approvals("2") permit (principal, action == Passport::Action::"access", resource); permit (principal in Passport::Group::"a", action == Passport::Action::"approve", resource) when { principal in Passport::Group::"b" && resource.hasTag("a:b") };`,
		`@approvals("1") permit (principal, action == Passport::Action::"access", resource); permit (principal == Passport::Machine::"m", action in [Passport::Action::"approve"], resource == Passport::Instance::"i-1");`,
		"\x00\xff/*",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := Parse("fuzz.cedar", []byte(doc))
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.cedar") {
				t.Fatalf("error does not name the source: %v", err)
			}
			return
		}
		p.Authorize(Request{Subject: "a", Groups: []string{"ops"}, Duration: time.Hour, Reason: "INC-1",
			Targets: []Instance{{ID: "i-0123456789abcdef0", Platform: "Linux", Tags: map[string]string{"Env": "staging", "a:b": "xx"}}}})
	})
}

// FuzzParseCases feeds arbitrary cases files to ParseCases: it must
// refuse or accept without panicking, and accepted cases must run.
func FuzzParseCases(f *testing.F) {
	p, err := Parse("fuzz.cedar", []byte(fuzzPolicy))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(`{"instances": {"w": {"id": "i-1", "tags": {"Env": "staging"}}}, "defaults": {"reason": "INC-1"}, "cases": [{"name": "a", "principal": {"user": "alice", "groups": ["ops"]}, "targets": ["w"], "expect": "grant"}]}`)
	f.Add(`{"instances": {"w": {"id": "i-1"}}, "cases": [{"name": "a", "action": "approve", "principal": {"machine": "m"}, "requester": "x", "targets": ["w"], "expect": "allow"}]}`)
	f.Add(`{"cases": [{"name": "a", "expect": "approval", "approvals": 3, "approvers": []}]}`)
	f.Add(`{"instances": {"w": {"id": "i-1"}}, "cases": [{"name": "a", "principal": {"user": "u"}, "targets": ["w"], "duration": "-1h", "expect": "deny"}]}`)
	f.Add("[]")
	f.Fuzz(func(t *testing.T, doc string) {
		cs, err := ParseCases(strings.NewReader(doc))
		if err != nil {
			return
		}
		for _, r := range p.Run(cs) {
			if r.Got == "" {
				t.Fatalf("case %q got no decision", r.Case.Name)
			}
		}
	})
}
