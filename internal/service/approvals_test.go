package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
)

// The lab's policy: dave (oncall) reaches production once an
// administrator (carol, erin) approves, with sudo once two do; bob (dev)
// reaches staging for an hour at once and for up to 4 once an operator
// (alice) or an administrator approves. web-1 is staging, web-2
// production.

func TestRequestsWaitForApproversThroughTheService(t *testing.T) {
	clk := &clock.Offset{}
	r := startRig(t, 2, 0, func(s *Settings) { s.Now = clk.Now })
	ctx := context.Background()
	web1, web2 := r.lab.Hosts[0], r.lab.Hosts[1]
	dave, carol, erin := r.signIn(t, "dave"), r.signIn(t, "carol"), r.signIn(t, "erin")
	alice, bob := r.signIn(t, "alice"), r.signIn(t, "bob")
	key := newUserKey(t)
	ask := func(c *client.Client, target string, d time.Duration, sudo bool) api.Request {
		t.Helper()
		in := api.CreateRequest{Targets: []string{target}, Reason: "INC-77 database failover", Duration: d.String(), Sudo: sudo, PublicKey: key.line}
		req, err := c.Create(ctx, in, "")
		if err != nil {
			t.Fatal(err)
		}
		return req
	}

	waiting := ask(dave, web2.Info().InstanceID, time.Hour, false)
	if waiting.State != "pending" || waiting.Username != "" || waiting.Approval == nil || waiting.Approval.Required != 1 ||
		!slices.Equal(waiting.Approval.Approvers, []string{"group:admins"}) || waiting.Targets[0].Status != "pending" {
		t.Fatalf("dave's production request: %+v approval %+v; want pending for one admin", waiting, waiting.Approval)
	}
	if users := labtest.OnHost(t, web2, "ls /var/lib/passport/grants 2>/dev/null || true"); users != "" {
		t.Fatalf("a pending request touched web-2: %s", users)
	}
	// erin sees what waits for her; bob does not learn it exists.
	if list, err := erin.List(ctx, client.ListOptions{All: true, State: "pending"}); err != nil || len(list) != 1 || list[0].ID != waiting.ID || !list[0].CallerMayDecide {
		t.Errorf("erin's pending list: %+v, %v; want dave's, hers to decide", list, err)
	}
	// The requester reads his own, which is not his to decide.
	if own, err := dave.Get(ctx, waiting.ID); err != nil || own.CallerMayDecide || waiting.CallerMayDecide {
		t.Errorf("dave's own pending request says he may decide it: %+v, %v", own, err)
	}
	for _, c := range []struct {
		name string
		err  error
		code string
	}{
		{"dave approves his own", second(dave.Approve(ctx, waiting.ID, "")), api.CodeDenied},
		{"dave denies his own", second(dave.Deny(ctx, waiting.ID, "never mind")), api.CodeDenied},
		{"alice approves production", second(alice.Approve(ctx, waiting.ID, "")), api.CodeNotFound},
		{"bob reads it", second(bob.Get(ctx, waiting.ID)), api.CodeNotFound},
		{"bob denies it", second(bob.Deny(ctx, waiting.ID, "no")), api.CodeNotFound},
		{"dave connects before it is granted", second(dave.StartSession(ctx, waiting.ID, api.SessionRequest{Target: web2.Info().InstanceID, Kind: "ssh"})), api.CodeConflict},
	} {
		if codeOf(c.err) != c.code {
			t.Errorf("%s: %v; want %s", c.name, c.err, c.code)
		}
	}

	granted, err := carol.Approve(ctx, waiting.ID, "INC-77 is real, go")
	if err != nil {
		t.Fatal(err)
	}
	if granted.State != "active" || granted.Username == "" || !granted.IssuedAt.After(waiting.IssuedAt.Add(-time.Second)) || granted.Duration != "1h" {
		t.Fatalf("approved: %+v", granted)
	}
	mine, err := dave.Get(ctx, waiting.ID)
	if err != nil || mine.Certificate == "" {
		t.Fatalf("dave reads his granted request: %+v, %v", mine, err)
	}
	if after, err := erin.Get(ctx, waiting.ID); err != nil || after.CallerMayDecide {
		t.Errorf("erin reads the granted request: %+v, %v; want nothing left to decide", after, err)
	}
	labtest.MustLogIn(t, web2, mine.Username, labtest.CertSigner(t, key.signer, mine.Certificate))
	if _, err := erin.Approve(ctx, waiting.ID, ""); codeOf(err) != api.CodeConflict {
		t.Errorf("approving a granted request: %v", err)
	}
	events, err := dave.Audit(ctx, client.AuditFilter{Request: waiting.ID})
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, e := range events {
		trail = append(trail, e.Actor+" "+e.Action)
	}
	if want := []string{"dave requested", "carol approved", "carol provisioned"}; !slices.Equal(trail, want) || !strings.Contains(events[1].Detail, "INC-77 is real, go") {
		t.Errorf("trail %q (%q), want %q with carol's comment", trail, events[1].Detail, want)
	}

	// Two approvals, each person once; one denial ends it.
	sudo := ask(dave, web2.Info().InstanceID, time.Hour, true)
	if sudo.Approval.Required != 2 {
		t.Fatalf("sudo on production: %+v", sudo.Approval)
	}
	once, err := carol.Approve(ctx, sudo.ID, "")
	if err != nil || once.State != "pending" || len(once.Approval.Given) != 1 {
		t.Fatalf("the first of two: %+v, %v", once, err)
	}
	if _, err := carol.Approve(ctx, sudo.ID, ""); codeOf(err) != api.CodeConflict {
		t.Errorf("carol approving twice: %v", err)
	}
	var noComment *client.Error
	if _, err := erin.Deny(ctx, sudo.ID, ""); !errors.As(err, &noComment) || noComment.Err.Field != "comment" {
		t.Errorf("a denial without a comment: %v", err)
	}
	denied, err := erin.Deny(ctx, sudo.ID, "sudo on the primary needs a change ticket")
	if err != nil || denied.State != "denied" || denied.Approval.Denied == nil || denied.Approval.Denied.By != "erin" {
		t.Fatalf("denied: %+v, %v", denied, err)
	}

	// The requester ends one that waits: nothing to undo.
	withdrawn := ask(dave, web2.Info().InstanceID, time.Hour, false)
	if ended, err := dave.End(ctx, withdrawn.ID); err != nil || ended.State != "revoked" {
		t.Errorf("ending a pending request: %+v, %v", ended, err)
	}

	// A longer window waits while the current one stands.
	short := ask(bob, web1.Info().InstanceID, time.Hour, false)
	if short.State != "active" {
		t.Fatalf("bob's hour on staging: %+v", short)
	}
	held, err := bob.Extend(ctx, short.ID, 3*time.Hour)
	if err != nil || held.Extension == nil || !held.ExpiresAt.Equal(short.ExpiresAt) {
		t.Fatalf("bob's 3h: %+v, %v; want the hour standing and 3h waiting", held, err)
	}
	moved, err := alice.Approve(ctx, short.ID, "")
	if err != nil || !moved.ExpiresAt.Equal(short.IssuedAt.Add(3*time.Hour)) || moved.Extension != nil {
		t.Fatalf("alice approving bob's 3h: %+v, %v", moved, err)
	}
	labtest.MustLogIn(t, web1, moved.Username, labtest.CertSigner(t, key.signer, moved.Certificate))

	// Unapproved past the deadline, the reconciler inside the service ends
	// it.
	late := ask(dave, web2.Info().InstanceID, time.Hour, false)
	clk.Advance(31 * time.Minute)
	if _, err := r.svc.Reconciler.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := dave.Get(ctx, late.ID)
	if err != nil || after.State != "expired" {
		t.Errorf("a request past its approval deadline: %+v, %v", after, err)
	}
	if _, err := carol.Approve(ctx, late.ID, ""); codeOf(err) != api.CodeConflict {
		t.Errorf("approving an expired request: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

// TestApprovalThatFailsOnHosts: the last approval provisions in the
// approver's call, and a host that fails answers 502 with the request as
// it now stands. Model nodes answer as told, under a policy of the test's
// own.
func TestApprovalThatFailsOnHosts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.cedar")
	doc := `@approvals("1") permit (principal in Passport::Group::"ops", action == Passport::Action::"access", resource);
permit (principal in Passport::Group::"admins", action == Passport::Action::"approve", resource);`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRigWith(t, lab.Options{ModelNodes: 1}, func(s *Settings) { s.PolicySource = "file://" + file })
	ctx := context.Background()
	alice, carol := r.signIn(t, "alice"), r.signIn(t, "carol")
	m := r.lab.Models[0]
	req, err := alice.Create(ctx, api.CreateRequest{Targets: []string{m.Info().InstanceID}, Reason: "CHG-9 scale test", PublicKey: newUserKey(t).line}, "")
	if err != nil || req.State != "pending" {
		t.Fatalf("%+v, %v", req, err)
	}
	m.SetAnswer(1, "", "disk full")
	_, err = carol.Approve(ctx, req.ID, "")
	var failed *client.Error
	if codeOf(err) != api.CodeHostFailure || !errors.As(err, &failed) || failed.Request == nil || failed.Request.Username == "" {
		t.Fatalf("an approval whose host fails: %v; want host_failure with the request", err)
	}
	if failed.Request.SealedPasswords != nil {
		t.Error("the approver's answer carries the requester's sealed passwords")
	}
}

// dave (oncall) breaks the glass on production: granted at once, and
// owing a review. The review is listed, counted, announced again once
// overdue, and recorded by an administrator, never by dave.
func TestBreakGlassThroughTheService(t *testing.T) {
	clk := &clock.Offset{}
	r := startRig(t, 2, 0, func(s *Settings) { s.Now = clk.Now; s.ReviewWithin = time.Hour })
	ctx := context.Background()
	web2 := r.lab.Hosts[1]
	dave, erin, alice := r.signIn(t, "dave"), r.signIn(t, "erin"), r.signIn(t, "alice")
	key := newUserKey(t)
	in := api.CreateRequest{Targets: []string{web2.Info().InstanceID}, Reason: "INC-90 primary database down", Duration: "1h", PublicKey: key.line, BreakGlass: true}
	req, err := dave.Create(ctx, in, "")
	if err != nil {
		t.Fatal(err)
	}
	if req.State != "active" || !req.BreakGlass || req.Review == nil || req.Review.At != nil {
		t.Fatalf("break-glass: %+v, review %+v; want active at once, owing a review", req, req.Review)
	}
	labtest.MustLogIn(t, web2, req.Username, labtest.CertSigner(t, key.signer, req.Certificate))

	// alice (ops) may not break the glass; without it she has no production.
	in.Duration = "1h"
	if _, err := alice.Create(ctx, in, ""); codeOf(err) != api.CodeDenied {
		t.Errorf("alice breaking the glass: %v", err)
	}
	// Longer than break-glass allows: refused, not held.
	in.Duration = "3h"
	if _, err := dave.Create(ctx, in, ""); codeOf(err) != api.CodeDenied || !strings.Contains(err.Error(), "Ask without break-glass") {
		t.Errorf("3h of break-glass: %v", err)
	}

	un, err := erin.List(ctx, client.ListOptions{All: true, Unreviewed: true})
	if err != nil || len(un) != 1 || un[0].ID != req.ID || !un[0].CallerMayDecide {
		t.Fatalf("unreviewed for erin: %+v, %v; want dave's, hers to review", un, err)
	}
	if _, err := r.svc.Reconciler.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, r.svc, "passport_unreviewed_break_glass_grants", "overdue", "false"); got != 1 {
		t.Errorf("unreviewed (not overdue) break-glass grants: %v, want 1", got)
	}
	clk.Advance(time.Hour)
	if _, err := r.svc.Reconciler.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, r.svc, "passport_unreviewed_break_glass_grants", "overdue", "true"); got != 1 {
		t.Errorf("overdue break-glass reviews: %v, want 1", got)
	}
	if _, err := dave.Review(ctx, req.ID, "it was fine"); codeOf(err) != api.CodeDenied {
		t.Errorf("dave reviewing his own: %v", err)
	}
	if _, err := erin.Review(ctx, req.ID, ""); codeOf(err) != api.CodeInvalid {
		t.Errorf("a review without a comment: %v", err)
	}
	reviewed, err := erin.Review(ctx, req.ID, "INC-90 was real; the access was needed")
	if err != nil || reviewed.Review == nil || reviewed.Review.By != "erin" || reviewed.Review.At == nil {
		t.Fatalf("erin's review: %+v, %v", reviewed, err)
	}
	if _, err := erin.Review(ctx, req.ID, "again"); codeOf(err) != api.CodeConflict {
		t.Errorf("a second review: %v", err)
	}
	if un, err := erin.List(ctx, client.ListOptions{All: true, Unreviewed: true}); err != nil || len(un) != 0 {
		t.Errorf("unreviewed after the review: %+v, %v", un, err)
	}
	events, err := erin.Audit(ctx, client.AuditFilter{Request: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, e := range events {
		trail = append(trail, e.Actor+" "+e.Action)
	}
	// The hour that made the review overdue ended the window too.
	if want := []string{"dave requested", "dave break-glass", "dave provisioned", r.svc.Name + " review-overdue", r.svc.Name + " revoked", r.svc.Name + " expired", "erin reviewed"}; !slices.Equal(trail, want) {
		t.Errorf("trail %q, want %q", trail, want)
	}
	if _, err := alice.Review(ctx, req.ID, "x"); codeOf(err) != api.CodeNotFound {
		t.Errorf("alice reviewing what she may not see: %v", err)
	}
}

// gauge reads one labelled gauge of the service's metrics.
func gauge(t *testing.T, svc *Service, name, label, value string) float64 {
	t.Helper()
	families, err := svc.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
