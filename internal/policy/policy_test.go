package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	staging    = "i-0123456789abcdef0"
	production = "i-0fedcba9876543210"
	untagged   = "i-00000000000000001"
	optedOut   = "i-00000000000000002"
)

var hosts = map[string]Instance{
	staging:    {ID: staging, Platform: "Linux", Tags: map[string]string{"Name": "web-1", "Env": "staging"}},
	production: {ID: production, Platform: "Linux", Tags: map[string]string{"Name": "web-2", "Env": "production"}},
	untagged:   {ID: untagged, Platform: "Linux"},
	optedOut:   {ID: optedOut, Platform: "Linux", Tags: map[string]string{"Env": "staging", "passport:opt-out": "true"}},
}

func examplePolicy(t testing.TB) *Policy {
	t.Helper()
	doc, err := os.ReadFile("testdata/example.cedar")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("file:///etc/passport/policy.cedar", doc)
	if err != nil {
		t.Fatalf("the example policy does not load: %v", err)
	}
	return p
}

func TestExamplePolicyMatrix(t *testing.T) {
	p := examplePolicy(t)
	const ticket = "INC-4711 disk full on web"
	tests := []struct {
		name     string
		groups   []string
		target   string
		duration time.Duration
		reason   string
		sudo     bool
		// why is in the decision's explanation; a denial must name the
		// policy that forbade it or say that none permits.
		allowed bool
		why     string
	}{
		{"ops reach staging", []string{"ops"}, staging, time.Hour, ticket, false, true, `"ops-staging"`},
		{"ops do not reach production", []string{"ops"}, production, time.Hour, ticket, false, false, `forbidden by policy "production-only-oncall" (line 30)`},
		{"ops at their 4h cap", []string{"ops"}, staging, 4 * time.Hour, ticket, false, true, `"ops-staging"`},
		{"ops over their 4h cap", []string{"ops"}, staging, 4*time.Hour + time.Minute, ticket, false, false, `no policy in file:///etc/passport/policy.cedar permits "alice@example.com" (groups "ops") to access it for 4h1m`},
		{"ops without sudo rights", []string{"ops"}, staging, time.Hour, ticket, true, false, `forbidden by policy "sudo-only-sre" (line 36)`},
		{"sre without a permit, with sudo", []string{"sre"}, staging, time.Hour, ticket, true, false, `permits "alice@example.com" (groups "sre") to access it for 1h with sudo`},
		{"ops and sre get sudo on staging", []string{"ops", "sre"}, staging, time.Hour, ticket, true, true, `"ops-staging"`},
		{"sre alone has no permit", []string{"sre"}, staging, time.Hour, ticket, false, false, "no policy"},
		{"a reason without a ticket", []string{"ops"}, staging, time.Hour, "disk full on web-1", false, false, `forbidden by policy "reason-names-ticket" (line 42)`},
		{"a ticket in lower case is no ticket", []string{"ops"}, staging, time.Hour, "inc-4711 disk full", false, false, `"reason-names-ticket"`},
		{"a ticket not at the start", []string{"ops"}, staging, time.Hour, "see INC-4711", false, false, `"reason-names-ticket"`},
		{"a change ticket", []string{"ops"}, staging, time.Hour, "CHG-99 rotate certificates", false, true, `"ops-staging"`},
		{"admins reach production with sudo for 12h", []string{"admins"}, production, 12 * time.Hour, ticket, true, true, `"admins-everything"`},
		{"admins still need a ticket", []string{"admins"}, production, time.Hour, "because I can", false, false, `"reason-names-ticket"`},
		{"on-call reach production for 2h", []string{"oncall"}, production, 2 * time.Hour, ticket, false, true, `"oncall-production"`},
		{"on-call not for 3h", []string{"oncall"}, production, 3 * time.Hour, ticket, false, false, "no policy"},
		{"on-call have no staging permit", []string{"oncall"}, staging, time.Hour, ticket, false, false, "no policy"},
		{"developers reach staging for 1h", []string{"developers"}, staging, time.Hour, ticket, false, true, `"developers-staging"`},
		{"developers not for 2h", []string{"developers"}, staging, 2 * time.Hour, ticket, false, false, "no policy"},
		{"no groups, as with an AWS caller ARN", nil, staging, time.Hour, ticket, false, false, `permits "arn:aws:iam::123456789012:user/alice" (in no groups)`},
		{"an instance without an Env tag", []string{"ops"}, untagged, time.Hour, ticket, false, false, "no policy"},
		{"a tag key with a colon", []string{"admins"}, optedOut, time.Hour, ticket, false, false, `"opted-out-hosts" (line 47)`},
		{"a group named like a tag value", []string{"staging"}, staging, time.Hour, ticket, false, false, "no policy"},
		{"a group differing in case", []string{"Ops"}, staging, time.Hour, ticket, false, false, "no policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := "alice@example.com"
			if tt.groups == nil {
				subject = "arn:aws:iam::123456789012:user/alice"
			}
			d := p.Authorize(Request{Subject: subject, Groups: tt.groups, Targets: []Instance{hosts[tt.target]}, Duration: tt.duration, Reason: tt.reason, Sudo: tt.sudo})
			if len(d.Targets) != 1 || d.Targets[0].ID != tt.target {
				t.Fatalf("decision %+v is not about %s alone", d, tt.target)
			}
			got := d.Targets[0]
			if got.Allowed != tt.allowed || !strings.Contains(got.Why, tt.why) {
				t.Errorf("allowed %v (%s), want %v with %q", got.Allowed, got.Why, tt.allowed, tt.why)
			}
			err := d.Err()
			if tt.allowed != (err == nil) {
				t.Fatalf("Err() = %v for allowed=%v", err, tt.allowed)
			}
			if err != nil && (!strings.Contains(err.Error(), tt.target) || !strings.Contains(err.Error(), tt.why)) {
				t.Errorf("the error does not name the target and why:\n%v", err)
			}
		})
	}
}

// A request is allowed only when every target is; the error names the
// denied ones alone.
func TestMixedRequestNamesOnlyDeniedTargets(t *testing.T) {
	p := examplePolicy(t)
	d := p.Authorize(Request{
		Subject: "bob", Groups: []string{"ops"}, Duration: time.Hour, Reason: "INC-1 restart",
		Targets: []Instance{hosts[staging], hosts[production], hosts[untagged]},
	})
	if d.Allowed() {
		t.Fatal("a request with a production target is allowed for ops")
	}
	if !d.Targets[0].Allowed || d.Targets[1].Allowed || d.Targets[2].Allowed {
		t.Fatalf("per-target decisions: %+v", d.Targets)
	}
	msg := d.Err().Error()
	for _, want := range []string{"2 targets", production, `"production-only-oncall"`, untagged, "no policy"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, staging) {
		t.Errorf("error names the allowed target %s:\n%s", staging, msg)
	}
	var denied *DeniedError
	if !errors.As(d.Err(), &denied) || len(denied.Targets) != 2 {
		t.Errorf("Err() is not a DeniedError with 2 targets: %#v", d.Err())
	}
}

// target_count lets policy limit how wide one request may be.
func TestTargetCountLimitsWideRequests(t *testing.T) {
	p := examplePolicy(t)
	var many []Instance
	for i := range 6 {
		h := hosts[staging]
		h.ID = "i-0000000000000010" + string(rune('0'+i))
		many = append(many, h)
	}
	req := Request{Subject: "dev", Groups: []string{"developers"}, Duration: time.Hour, Reason: "INC-7 deploy check"}
	req.Targets = many[:5]
	if d := p.Authorize(req); !d.Allowed() {
		t.Fatalf("5 staging hosts refused: %v", d.Err())
	}
	req.Targets = many
	if d := p.Authorize(req); d.Allowed() {
		t.Fatal("6 staging hosts allowed for developers (limit 5)")
	}
}

func TestNoPolicyDeniesAndSaysWhere(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.cedar")
	if err := os.WriteFile(empty, []byte("// policies go here\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		source string
		where  string
	}{
		{"file://" + filepath.Join(dir, "absent.cedar"), "file " + filepath.Join(dir, "absent.cedar") + " does not exist"},
		{"file://" + empty, "file://" + empty + " holds no policies"},
	}
	for _, tt := range tests {
		t.Run(tt.where, func(t *testing.T) {
			p, err := Load(context.Background(), tt.source, nil)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Authorize(Request{Subject: "root", Groups: []string{"admins"}, Targets: []Instance{hosts[staging]}, Duration: time.Hour, Reason: "INC-1 anything"})
			err = d.Err()
			if err == nil {
				t.Fatal("allowed without a policy")
			}
			if !strings.Contains(err.Error(), tt.where) || !strings.Contains(err.Error(), staging) {
				t.Errorf("denial does not say where policy was looked for:\n%v", err)
			}
		})
	}
}

func TestBadPolicyIsAnErrorNamingTheLine(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"syntax", "@id(\"a\")\npermit (principal, action, resource)\nwhen { context.duration <= };\n", "line 3"},
		{"unterminated", "permit (principal, action, resource)\nwhen { context.reason like \"INC-*", "does not parse"},
		{"misspelt context attribute", "\n\n@id(\"typo\")\npermit (principal, action, resource) when { context.duraton < 60 };", `policy "typo" (line 3) does not fit`},
		{"tag read without hasTag", "permit (principal, action, resource) when { resource.getTag(\"Env\") == \"staging\" };", "policy 1 (line 1) does not fit"},
		{"wrong type", "permit (principal, action, resource) when { context.sudo == \"yes\" };", "does not fit"},
		{"unknown entity type", "permit (principal in Group::\"ops\", action, resource);", "does not fit"},
		{"duplicate id", "@id(\"x\")\npermit (principal, action, resource);\n@id(\"x\")\nforbid (principal, action, resource);", `@id("x") at line 3 is already used at line 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("ssm:///passport/policy", []byte(tt.doc))
			if err == nil {
				t.Fatalf("accepted (%d policies)", p.Len())
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "ssm:///passport/policy") {
				t.Errorf("error %q lacks %q or the source", err, tt.want)
			}
		})
	}
}

func TestLoadRefusesOtherSources(t *testing.T) {
	for _, src := range []string{"", "policy.cedar", "https://example.com/policy", "ssm://passport/policy", "file://./relative", "s3:///bucket/key", "ssm:///p?x=1"} {
		if _, err := Load(context.Background(), src, nil); err == nil {
			t.Errorf("Load(%q) accepted", src)
		}
	}
	if _, err := Load(context.Background(), DefaultSource, nil); err == nil || !strings.Contains(err.Error(), "SSM client") {
		t.Errorf("ssm source without a client: %v", err)
	}
}

// A forbid that fails at evaluation time still forbids.
func TestForbidThatErrorsDenies(t *testing.T) {
	doc := `@id("all") permit (principal, action, resource);
@id("overflow") forbid (principal, action, resource) when { context.duration * 9223372036854775807 > 0 };`
	p, err := Parse("file:///p.cedar", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	d := p.Authorize(Request{Subject: "a", Targets: []Instance{hosts[staging]}, Duration: time.Hour, Reason: "x"})
	if d.Allowed() || !strings.Contains(d.Err().Error(), `policy "overflow" (line 2) in file:///p.cedar could not be evaluated`) {
		t.Fatalf("an erroring forbid did not deny: %+v", d)
	}
}

func TestSchemaIsShippedAndValid(t *testing.T) {
	if !strings.Contains(Schema, `action "access"`) || resolvedSchema == nil {
		t.Fatal("schema missing")
	}
}

// The policy guide quotes this denial word for word.
func TestGuideDenialText(t *testing.T) {
	doc, err := os.ReadFile("testdata/example.cedar")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(DefaultSource, doc)
	if err != nil {
		t.Fatal(err)
	}
	prod := hosts[production]
	prod.ID = "i-0b000000000000002"
	err = p.Authorize(Request{Subject: "alice", Groups: []string{"ops"}, Duration: time.Hour, Reason: "INC-7 restart the web tier", Targets: []Instance{hosts[staging], prod}}).Err()
	want := `access denied by policy for 1 target; nothing was changed on any host:
  i-0b000000000000002: forbidden by policy "production-only-oncall" (line 30) in ssm:///passport/policy`
	if err == nil || err.Error() != want {
		t.Errorf("denial\n%v\nwant\n%s", err, want)
	}
	guide, err := os.ReadFile("../../templates/guides/policy.md.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(guide), want) {
		t.Error("the policy guide no longer quotes the denial this policy gives")
	}
}

func TestPolicyFileWritableByOthersIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.cedar")
	if err := os.WriteFile(path, []byte(`permit (principal, action, resource);`), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := Load(context.Background(), "file://"+path, nil); err != nil || p.Len() != 1 {
		t.Fatalf("an owner-only file: %v", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(context.Background(), "file://"+path, nil); err == nil || !strings.Contains(err.Error(), "chmod go-w") {
		t.Fatalf("a world-writable policy file: %v", err)
	}
}
