package service

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// The lab's Windows hosts carry the demo tags (win-1 staging, win-2
// production) and model nodes Env=scale; a preview touches no host, so
// neither needs to be a sandbox.

func TestAPreviewSaysWhatPolicyWouldBeforeARequestIsMade(t *testing.T) {
	r := startRigWith(t, lab.Options{WindowsHosts: 2, ModelNodes: 1})
	ctx := context.Background()
	staging, production := r.lab.Windows[0].Info().InstanceID, r.lab.Windows[1].Info().InstanceID
	model := r.lab.Models[0].Info().InstanceID
	alice, bob := r.signIn(t, "alice"), r.signIn(t, "bob")
	preview := func(c *client.Client, in api.PreviewRequest) api.Preview {
		t.Helper()
		p, err := c.Preview(ctx, in)
		if err != nil {
			t.Fatalf("preview %+v: %v", in, err)
		}
		return p
	}
	windows := func(p api.Preview) string {
		var out []string
		for _, w := range p.Windows {
			out = append(out, w.Duration+"="+w.Decision)
		}
		return strings.Join(out, " ")
	}

	// alice (ops) reaches staging at once for up to 2 hours, for 4 with
	// approval; the tag finds win-1.
	p := preview(alice, api.PreviewRequest{Tags: map[string]string{"Env": "staging"}, Reason: "INC-1 disk full", Duration: "2h"})
	if p.Decision != "grant" || p.Duration != "2h" || len(p.Targets) != 1 || p.Targets[0].InstanceID != staging ||
		p.Targets[0].Platform != "Windows" || p.Targets[0].ComputerName != "win-1" || p.Targets[0].Decision != "grant" || p.Targets[0].Problem != "" {
		t.Fatalf("alice's staging preview: %+v", p)
	}
	if got, want := windows(p), "15m=grant 30m=grant 1h=grant 2h=grant 3h=approval 4h=approval 6h=deny 8h=deny 12h=deny"; got != want {
		t.Errorf("alice's windows on staging: %s; want %s", got, want)
	}
	// bob (dev) reaches it for an hour at once, for longer once someone
	// approves; the preview names who.
	p = preview(bob, api.PreviewRequest{Targets: []string{staging}, Reason: "CHG-7 deploy", Duration: "3h"})
	if p.Decision != "approval" || p.Approvals != 1 || !slices.Contains(p.Approvers, "group:admins") || p.Targets[0].Decision != "approval" ||
		!strings.Contains(p.Message, "1 person approves") {
		t.Fatalf("bob's 3h preview: %+v", p)
	}
	if got, want := windows(p), "15m=grant 30m=grant 1h=grant 2h=approval 3h=approval 4h=approval 6h=deny 8h=deny 12h=deny"; got != want {
		t.Errorf("bob's windows on staging: %s; want %s", got, want)
	}
	// Denials say which policy and why; a target that cannot take access
	// says so, as the create would.
	p = preview(alice, api.PreviewRequest{Targets: []string{production, model, "i-0123456789abcdef0"}, Reason: "INC-1 disk full"})
	if p.Decision != "deny" || len(p.Targets) != 3 || p.Targets[0].Decision != "deny" || !strings.Contains(p.Targets[0].Why, "no policy") ||
		!strings.Contains(p.Message, production) {
		t.Fatalf("alice's production preview: %+v", p)
	}
	if p.Targets[1].Problem != "" || !strings.Contains(p.Targets[2].Problem, "not a managed node") {
		t.Errorf("the targets' problems: %+v", p.Targets)
	}
	p = preview(alice, api.PreviewRequest{Targets: []string{staging}})
	if p.Decision != "deny" || !strings.Contains(p.Targets[0].Why, "people-name-a-ticket") || p.ReasonProblem != "" {
		t.Errorf("a preview without a reason: %+v; want the ticket rule's denial", p)
	}
	// A reason still being written: policy's answer, and what the create
	// would say of it.
	p = preview(alice, api.PreviewRequest{Targets: []string{staging}, Reason: "INC-1"})
	if p.Decision != "grant" || !strings.Contains(p.ReasonProblem, "at least 10") {
		t.Errorf("a preview with a short reason: %+v; want a grant and the reason's problem", p)
	}

	// dave (oncall) reaches production once an administrator approves, or
	// at once by breaking the glass for up to 2 hours: the preview offers
	// it, and previewed as break-glass it is a grant, or a refusal past 2
	// hours (break-glass is never held for approval).
	dave := r.signIn(t, "dave")
	p = preview(dave, api.PreviewRequest{Targets: []string{production}, Reason: "INC-2 production is down"})
	if p.Decision != "approval" || !p.BreakGlassOffered {
		t.Errorf("dave's production preview: %+v; want approval, with break-glass offered", p)
	}
	p = preview(dave, api.PreviewRequest{Targets: []string{production}, Reason: "INC-2 production is down", BreakGlass: true})
	if p.Decision != "grant" || p.BreakGlassOffered || !strings.Contains(p.Message, "at once") {
		t.Errorf("dave's break-glass preview: %+v; want a grant", p)
	}
	if got, want := windows(p), "15m=grant 30m=grant 1h=grant 2h=grant 3h=deny 4h=deny 6h=deny 8h=deny 12h=deny"; got != want {
		t.Errorf("dave's break-glass windows: %s; want %s", got, want)
	}
	p = preview(dave, api.PreviewRequest{Targets: []string{production}, Reason: "INC-2 production is down", Duration: "3h", BreakGlass: true})
	if p.Decision != "deny" || !strings.Contains(p.Message, "waits for approval") || p.Approvals != 0 {
		t.Errorf("dave's 3h break-glass preview: %+v; want a refusal that says to ask without it", p)
	}
	if p = preview(alice, api.PreviewRequest{Targets: []string{production}, Reason: "INC-2 production is down"}); p.BreakGlassOffered {
		t.Errorf("alice's production preview offers break-glass: %+v", p)
	}

	for _, c := range []struct {
		name  string
		c     *client.Client
		in    api.PreviewRequest
		code  string
		field string
	}{
		{"no sign-in", r.anonymous(t), api.PreviewRequest{Targets: []string{staging}}, api.CodeUnauthenticated, ""},
		{"no targets", alice, api.PreviewRequest{Reason: "INC-1"}, api.CodeInvalid, "targets"},
		{"targets and tags", alice, api.PreviewRequest{Targets: []string{staging}, Tags: map[string]string{"Env": "staging"}}, api.CodeInvalid, "targets"},
		{"a tag nothing carries", alice, api.PreviewRequest{Tags: map[string]string{"Env": "nowhere"}}, api.CodeInvalid, "tags"},
		{"a bad duration", alice, api.PreviewRequest{Targets: []string{staging}, Duration: "forever"}, api.CodeInvalid, "duration"},
		{"past the cap", alice, api.PreviewRequest{Targets: []string{staging}, Duration: "13h"}, api.CodeInvalid, "duration"},
		{"a bad target", alice, api.PreviewRequest{Targets: []string{"i-$(id)"}}, api.CodeInvalid, "targets"},
	} {
		_, err := c.c.Preview(ctx, c.in)
		var e *api.Error
		if codeOf(err) != c.code || (c.field != "" && (!errors.As(err, &e) || e.Field != c.field)) {
			t.Errorf("%s: %v; want %s on %q", c.name, err, c.code, c.field)
		}
	}

	// Nothing was recorded, nothing asked of a host.
	for _, st := range ledger.States() {
		if recs, err := r.svc.Ledger.List(ctx, st); err != nil || len(recs) > 0 {
			t.Errorf("%s requests after previews: %d, %v; want none", st, len(recs), err)
		}
	}
	if events, err := r.svc.Ledger.Events(ctx, ledger.Filter{}); err != nil || len(events) > 0 {
		t.Errorf("audit events after previews: %d, %v; want none", len(events), err)
	}
}
