package access

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// approvalPolicy: alice reaches anything at once for an hour, for up to 4
// hours once one administrator approves, and with sudo once two do; she
// may break the glass for up to 2 hours, sudo or not.
const approvalPolicy = `
permit (principal == Passport::User::"alice", action == Passport::Action::"access", resource)
when { context.duration <= 3600 && !context.sudo };

@approvals("1")
permit (principal == Passport::User::"alice", action == Passport::Action::"access", resource)
when { context.duration <= 4 * 3600 && !context.sudo };

@approvals("2")
permit (principal == Passport::User::"alice", action == Passport::Action::"access", resource)
when { context.sudo };

@id("alice-breaks-the-glass")
permit (principal == Passport::User::"alice", action == Passport::Action::"access", resource)
when { context.break_glass && context.duration <= 2 * 3600 };

permit (principal in Passport::Group::"admins", action == Passport::Action::"approve", resource);
`

var (
	carol = Approver{Name: "carol", Groups: []string{"admins"}}
	erin  = Approver{Name: "erin", Groups: []string{"admins"}}
	bob   = Approver{Name: "bob", Groups: []string{"dev"}}
)

// approvalService is a Service with a ledger that holds requests for
// approval under approvalPolicy.
func approvalService(t *testing.T, l *testLab) (*Service, *ledger.Ledger) {
	t.Helper()
	svc, led := withLedger(t, l)
	p, err := policy.Parse("test.cedar", []byte(approvalPolicy))
	if err != nil {
		t.Fatal(err)
	}
	svc.authz = &policy.Gate{Policy: p}
	svc.approvals = &Approvals{Deadline: 30 * time.Minute}
	return svc, led
}

// aliceAsks is alice's request with her own key, which a request that
// waits must bring.
func aliceAsks(t *testing.T, l *testLab, ca *sshca.CA, d time.Duration, sudo bool) (Request, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	req := request(ca, l.hostIDs()...)
	req.Requester, req.Duration, req.Sudo, req.PublicKey = "alice", d, sudo, authorizedKey(pub)
	return req, priv
}

func TestRequestsWaitForApproval(t *testing.T) {
	l := startLab(t, 2, 0)
	ca := newCA(t)
	svc, led := approvalService(t, l)
	ctx := context.Background()

	req, priv := aliceAsks(t, l, ca, 2*time.Hour, true)
	g, err := svc.Grant(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Waiting() || g.Approval.Required != 2 || !slices.Equal(g.Approval.Approvers, []string{"group:admins"}) || g.Username != "" {
		t.Fatalf("a sudo request: waiting %v, approval %+v, user %q; want 2 approvals from admins and no user yet", g.Waiting(), g.Approval, g.Username)
	}
	rec, _ := led.Get(ctx, g.ID)
	if rec.State != ledger.Pending || !slices.Equal(targetStates(rec), []ledger.State{ledger.Pending, ledger.Pending}) {
		t.Fatalf("recorded as %s %v, want pending", rec.State, targetStates(rec))
	}
	for _, h := range l.Hosts {
		if users := passportUsers(t, h); users != "" {
			t.Fatalf("a pending request touched %s: %s", h.Info().InstanceID, users)
		}
	}

	alice := Approver{Name: "alice"}
	for _, tt := range []struct {
		name  string
		by    Approver
		class Class
		want  string
	}{
		{"the requester", alice, Denied, "someone else must approve"},
		{"someone policy does not let approve", bob, Denied, "policy does not let you approve"},
	} {
		if _, err := svc.Approve(ctx, tt.by, g.ID, "", ca); ClassOf(err) != tt.class || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s approves: %v (%s), want %s with %q", tt.name, err, ClassOf(err), tt.class, tt.want)
		}
	}
	once, err := svc.Approve(ctx, carol, g.ID, "INC-9 is real", ca)
	if err != nil || !once.Waiting() || len(once.Approval.Given) != 1 {
		t.Fatalf("the first of two approvals: %+v, %v", once.Approval, err)
	}
	if _, err := svc.Approve(ctx, carol, g.ID, "again", ca); ClassOf(err) != Conflict || !strings.Contains(err.Error(), "each approver counts once; it needs 1 more") {
		t.Errorf("carol approving twice: %v", err)
	}
	if rec, _ := led.Get(ctx, g.ID); rec.State != ledger.Pending {
		t.Fatalf("after one of two approvals the request is %s", rec.State)
	}

	asked := g.IssuedAt
	l.clock.Advance(2 * time.Second)
	granted, err := svc.Approve(ctx, erin, g.ID, "", ca)
	if err != nil {
		t.Fatal(err)
	}
	if granted.Waiting() || granted.Username == "" || !granted.IssuedAt.After(asked) || granted.ExpiresAt.Sub(granted.IssuedAt) != 2*time.Hour {
		t.Fatalf("the last approval: user %q, window %s to %s (asked %s); want the 2h window to start at the approval", granted.Username, granted.IssuedAt, granted.ExpiresAt, asked)
	}
	for _, h := range l.Hosts {
		mustLogIn(t, h, granted.Username, credentialOf(t, granted, priv).signer)
	}
	rec, _ = led.Get(ctx, g.ID)
	if rec.State != ledger.Active || !rec.Approval.Done() || rec.Approval.Given[1].By != "erin" {
		t.Errorf("recorded as %s with %+v", rec.State, rec.Approval)
	}
	if _, err := svc.Approve(ctx, Approver{Name: "dan", Groups: []string{"admins"}}, g.ID, "", ca); ClassOf(err) != Conflict {
		t.Errorf("approving a granted request: %v", err)
	}
	events, _ := led.Events(ctx, ledger.Filter{GrantID: g.ID})
	var got []string
	for _, e := range events {
		got = append(got, e.Actor+" "+string(e.Action))
	}
	want := []string{"alice requested", "carol approved", "erin approved", "erin provisioned", "erin provisioned"}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail %q, want %q", got, want)
	}
	if !strings.Contains(events[1].Detail, "approval 1 of 2: INC-9 is real") || !strings.Contains(events[0].Detail, "waits for 2 approvals by group:admins") {
		t.Errorf("events say %q and %q", events[0].Detail, events[1].Detail)
	}
}

func TestDenialsDeadlinesAndWithdrawals(t *testing.T) {
	l := startLab(t, 1, 0)
	ca := newCA(t)
	svc, led := approvalService(t, l)
	ctx := context.Background()
	ask := func() *Grant {
		t.Helper()
		req, _ := aliceAsks(t, l, ca, 3*time.Hour, false)
		g, err := svc.Grant(ctx, req)
		if err != nil || !g.Waiting() {
			t.Fatalf("a 3h request: %v, waiting %v", err, g != nil && g.Waiting())
		}
		return g
	}

	denied := ask()
	if _, err := svc.Deny(ctx, carol, denied.ID, " "); ClassOf(err) != Invalid || FieldOf(err) != "comment" {
		t.Errorf("a denial without a comment: %v", err)
	}
	if _, err := svc.Deny(ctx, Approver{Name: "alice"}, denied.ID, "never mind"); ClassOf(err) != Denied {
		t.Errorf("the requester denying: %v", err)
	}
	if _, err := svc.Deny(ctx, carol, denied.ID, "no change ticket for this"); err != nil {
		t.Fatal(err)
	}
	rec, _ := led.Get(ctx, denied.ID)
	if rec.State != ledger.Denied || rec.Approval.Denied.By != "carol" || rec.Approval.Denied.Comment != "no change ticket for this" {
		t.Errorf("after a denial: %s %+v", rec.State, rec.Approval)
	}
	if _, err := svc.Approve(ctx, erin, denied.ID, "", ca); ClassOf(err) != Conflict {
		t.Errorf("approving a denied request: %v", err)
	}

	withdrawn := ask()
	if ended, err := svc.EndWaiting(ctx, "alice", withdrawn.ID, false); !ended || err != nil {
		t.Fatalf("withdrawing: %v %v", ended, err)
	}
	if rec, _ := led.Get(ctx, withdrawn.ID); rec.State != ledger.Revoked {
		t.Errorf("a withdrawn request is %s", rec.State)
	}

	late := ask()
	if ended, err := svc.EndWaiting(ctx, "reconciler/test", late.ID, true); ended || err != nil {
		t.Errorf("before its deadline a request is not ended: %v %v", ended, err)
	}
	l.clock.Advance(30 * time.Minute)
	if _, err := svc.Approve(ctx, carol, late.ID, "", ca); ClassOf(err) != Conflict || !strings.Contains(err.Error(), "which has passed") {
		t.Errorf("approving after the deadline: %v", err)
	}
	if ended, err := svc.EndWaiting(ctx, "reconciler/test", late.ID, true); !ended || err != nil {
		t.Fatalf("at the deadline: %v %v", ended, err)
	}
	rec, _ = led.Get(ctx, late.ID)
	if rec.State != ledger.Expired {
		t.Errorf("an unapproved request past its deadline is %s", rec.State)
	}
	trails := map[string][]string{denied.ID: {"requested", "approval-denied"}, withdrawn.ID: {"requested", "withdrawn"}, late.ID: {"requested", "approval-expired"}}
	for id, want := range trails {
		if got := trail(t, led, id); !slices.Equal(got, want) {
			t.Errorf("%s: trail %q, want %q", id, got, want)
		}
	}
	if users := passportUsers(t, l.Hosts[0]); users != "" {
		t.Errorf("requests that never were granted left users: %s", users)
	}
}

// A longer window that needs approval waits while the current one stands;
// approved, it moves the window and is what the grant now stands on.
func TestLongerWindowsWaitForApproval(t *testing.T) {
	l := startLab(t, 1, 0)
	ca := newCA(t)
	svc, led := approvalService(t, l)
	ctx := context.Background()
	req, priv := aliceAsks(t, l, ca, time.Hour, false)
	g := grant(t, svc, req)
	if g.Waiting() || g.Approval != nil {
		t.Fatalf("an hour is granted at once: %+v", g.Approval)
	}
	held, err := svc.Extend(ctx, "alice", g, ca, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !held.ExpiresAt.Equal(g.ExpiresAt) || held.Extension == nil || !held.Extension.ExpiresAt.Equal(g.IssuedAt.Add(3*time.Hour)) || held.Certificate != g.Certificate {
		t.Fatalf("a longer window needing approval: expires %s, extension %+v; want the old window standing and 3h waiting", held.ExpiresAt, held.Extension)
	}
	mustLogIn(t, l.Hosts[0], g.Username, credentialOf(t, g, priv).signer)

	moved, err := svc.Approve(ctx, carol, g.ID, "fine", ca)
	if err != nil {
		t.Fatal(err)
	}
	if !moved.ExpiresAt.Equal(g.IssuedAt.Add(3*time.Hour)) || moved.Extension != nil || !moved.Approval.Done() || moved.Certificate == g.Certificate {
		t.Fatalf("approved: expires %s, extension %+v, approval %+v", moved.ExpiresAt, moved.Extension, moved.Approval)
	}
	mustLogIn(t, l.Hosts[0], g.Username, credentialOf(t, moved, priv).signer)
	rec, _ := led.Get(ctx, g.ID)
	if rec.Extension != nil || !rec.ExpiresAt.Equal(moved.ExpiresAt) || rec.Approval == nil || rec.Approval.Given[0].By != "carol" {
		t.Errorf("recorded: expires %s, extension %+v, approval %+v", rec.ExpiresAt, rec.Extension, rec.Approval)
	}

	g2, _, err := svc.Load(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Extend(ctx, "alice", g2, ca, 12*time.Hour); ClassOf(err) != Denied {
		t.Errorf("12h, which no policy permits: %v", err)
	}
	if _, err := svc.Extend(ctx, "alice", g2, ca, 4*time.Hour); err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(30 * time.Minute)
	if ended, err := svc.EndWaiting(ctx, "reconciler/test", g.ID, true); !ended || err != nil {
		t.Fatalf("the longer window's deadline: %v %v", ended, err)
	}
	rec, _ = led.Get(ctx, g.ID)
	if rec.State != ledger.Active || rec.Extension != nil || !rec.ExpiresAt.Equal(moved.ExpiresAt) {
		t.Errorf("after the longer window's deadline: %s, extension %+v, expires %s; want the 3h window standing", rec.State, rec.Extension, rec.ExpiresAt)
	}
	want := []string{"requested", "provisioned " + l.Hosts[0].Info().InstanceID, "extension-requested", "approved", "extended", "extension-requested", "approval-expired"}
	if got := trail(t, led, g.ID); !slices.Equal(got, want) {
		t.Errorf("trail %q, want %q", got, want)
	}
}

// Break-glass is granted at once, loudly, and owes a review by someone
// else, which is announced again once overdue.
func TestBreakGlassIsGrantedAtOnceAndReviewed(t *testing.T) {
	l := startLab(t, 1, 0)
	ca := newCA(t)
	svc, led := approvalService(t, l)
	svc.approvals.ReviewWithin = time.Hour
	ctx := context.Background()

	req, priv := aliceAsks(t, l, ca, 2*time.Hour, true)
	req.BreakGlass = true
	g := grant(t, svc, req)
	if !g.BreakGlass || g.Waiting() || g.Review == nil || !g.Review.Due.Equal(g.IssuedAt.Add(time.Hour)) {
		t.Fatalf("break-glass sudo for 2h: break-glass %v, waiting %v, review %+v; want granted at once with a review due in an hour", g.BreakGlass, g.Waiting(), g.Review)
	}
	mustLogIn(t, l.Hosts[0], g.Username, credentialOf(t, g, priv).signer)
	if got := trail(t, led, g.ID); !slices.Equal(got[:2], []string{"requested", "break-glass"}) {
		t.Errorf("trail %q: want requested, then break-glass before any host", got)
	}
	un, err := led.Unreviewed(ctx)
	if err != nil || len(un) != 1 || un[0].ID != g.ID {
		t.Fatalf("unreviewed: %d, %v", len(un), err)
	}

	// Too long for break-glass: policy grants 3h only with approval, and
	// break-glass does not wait.
	long, _ := aliceAsks(t, l, ca, 3*time.Hour, false)
	long.BreakGlass = true
	if _, err := svc.Grant(ctx, long); ClassOf(err) != Denied || !strings.Contains(err.Error(), "Ask without break-glass") {
		t.Errorf("break-glass where policy wants approval: %v", err)
	}
	direct := l.service(t, "")
	if _, err := direct.Grant(ctx, req); ClassOf(err) != Invalid || FieldOf(err) != "break_glass" {
		t.Errorf("break-glass in direct mode: %v", err)
	}

	if sent, err := svc.RemindReview(ctx, "reconciler/test", g.ID); sent || err != nil {
		t.Errorf("a reminder before the review is due: %v %v", sent, err)
	}
	for _, tt := range []struct {
		by   Approver
		want Class
	}{{Approver{Name: "alice"}, Denied}, {bob, Denied}} {
		if _, err := svc.Review(ctx, tt.by, g.ID, "looked at it"); ClassOf(err) != tt.want {
			t.Errorf("%s reviewing: %v, want %s", tt.by.Name, err, tt.want)
		}
	}
	if err := svc.Revoke(ctx, "alice", g); err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(time.Hour)
	if sent, err := svc.RemindReview(ctx, "reconciler/test", g.ID); !sent || err != nil {
		t.Fatalf("a reminder once the review is overdue: %v %v", sent, err)
	}
	if sent, _ := svc.RemindReview(ctx, "reconciler/test", g.ID); sent {
		t.Error("reminded twice in a row")
	}
	if _, err := svc.Review(ctx, carol, g.ID, " "); ClassOf(err) != Invalid {
		t.Errorf("a review without a comment: %v", err)
	}
	reviewed, err := svc.Review(ctx, carol, g.ID, "the primary was down; sudo was needed")
	if err != nil || !reviewed.Review.Done() {
		t.Fatalf("carol reviewing the ended grant: %+v, %v", reviewed, err)
	}
	rec, _ := led.Get(ctx, g.ID)
	if rec.State != ledger.Revoked || !rec.Review.Done() || rec.Targets[0].State != ledger.Revoked {
		t.Errorf("after the review: %s, targets %v, review %+v", rec.State, targetStates(rec), rec.Review)
	}
	if _, err := svc.Review(ctx, erin, g.ID, "me too"); ClassOf(err) != Conflict {
		t.Errorf("a second review: %v", err)
	}
	if un, _ := led.Unreviewed(ctx); len(un) != 0 {
		t.Errorf("still unreviewed: %d", len(un))
	}
	want := []string{"requested", "break-glass", "provisioned " + l.Hosts[0].Info().InstanceID, "revoked " + l.Hosts[0].Info().InstanceID, "review-overdue", "reviewed"}
	if got := trail(t, led, g.ID); !slices.Equal(got, want) {
		t.Errorf("trail %q, want %q", got, want)
	}
}
