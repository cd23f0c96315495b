package policy

import (
	"strings"
	"testing"
)

const recordPolicy = `
@id("anyone")
permit (principal, action, resource);

@id("record-production")
permit (principal, action == Passport::Action::"record", resource)
when { resource.hasTag("env") && resource.getTag("env") == "production" };

@id("record-staging")
@if_cannot_record("grant")
permit (principal, action == Passport::Action::"record", resource)
when { resource.hasTag("env") && resource.getTag("env") == "staging" };

@id("not-the-lab")
forbid (principal, action == Passport::Action::"record", resource)
when { resource.hasTag("lab") };
`

// TestRecordingRules: policy says by tag where sessions must be recorded
// and what a host that cannot record means (refuse, or grant loudly); a
// permit of every action requires nothing; a forbid lifts the duty.
func TestRecordingRules(t *testing.T) {
	p, err := Parse("file:///p.cedar", []byte(recordPolicy))
	if err != nil {
		t.Fatal(err)
	}
	rules := p.Recording(Request{Subject: "alice", Targets: []Instance{
		{ID: "i-prod", Platform: "Linux", Tags: map[string]string{"env": "production"}},
		{ID: "i-stage", Platform: "Linux", Tags: map[string]string{"env": "staging"}},
		{ID: "i-dev", Platform: "Linux", Tags: map[string]string{"env": "dev"}},
		{ID: "i-lab", Platform: "Linux", Tags: map[string]string{"env": "production", "lab": "1"}},
	}})
	want := []struct {
		required, open bool
		why            string
	}{{true, false, `"record-production"`}, {true, true, `"record-staging"`}, {false, false, ""}, {false, false, ""}}
	for i, w := range want {
		r := rules[i]
		if r.Required != w.required || r.FailOpen != w.open || !strings.Contains(r.Why, w.why) {
			t.Errorf("%s: %+v, want required %v, fail open %v, naming %s", r.ID, r, w.required, w.open, w.why)
		}
	}
	// Where two permits require it, the strictest decides.
	both, err := Parse("file:///p.cedar", []byte(`
@if_cannot_record("grant") permit (principal, action == Passport::Action::"record", resource);
permit (principal, action in [Passport::Action::"record"], resource) when { resource.hasTag("pci") };`))
	if err != nil {
		t.Fatal(err)
	}
	r := both.Recording(Request{Subject: "alice", Targets: []Instance{{ID: "i-pci", Platform: "Linux", Tags: map[string]string{"pci": "yes"}}}})
	if !r[0].Required || r[0].FailOpen {
		t.Errorf("a refusing permit beside a granting one: %+v, want fail closed", r[0])
	}
}

func TestRecordingAnnotationsAreChecked(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"unknown value", `@if_cannot_record("allow") permit (principal, action == Passport::Action::"record", resource);`, `must be "refuse"`},
		{"misspelt", `@if_cannot_recrd("grant") permit (principal, action == Passport::Action::"record", resource);`, "@if_cannot_recrd is not an annotation"},
		{"on a forbid", `@if_cannot_record("grant") forbid (principal, action == Passport::Action::"record", resource);`, "on a forbid"},
		{"on access", `@if_cannot_record("grant") permit (principal, action == Passport::Action::"access", resource);`, `not exactly Passport::Action::"record"`},
	} {
		if _, err := Parse("file:///p.cedar", []byte(tt.doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
