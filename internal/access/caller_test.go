package access

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// These tests hold the core to what a shared caller, the Passport service,
// relies on: grants loaded by id from the ledger, failures that carry a
// class, the kind of principal on record, and Windows passwords the core
// passes on sealed without reading.

func TestLoadReadsTheGrantFromTheLedger(t *testing.T) {
	l := startLab(t, 0, 0)
	n := newAnsweringNode(l, nil)
	svc, _ := withLedger(t, l)
	ctx := context.Background()
	req := request(newCA(t), instanceIDs(n)...)
	req.Requester, req.RequesterKind = "arn:aws:iam::123456789012:role/deploy", policy.Machine
	g := grant(t, svc, req)

	loaded, rec, err := svc.Load(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Username != g.Username || loaded.Serial != g.Serial || loaded.Requester != req.Requester || rec.State != ledger.Active {
		t.Errorf("loaded %+v (record %s), want the granted %s of %s, active", loaded, rec.State, g.Username, req.Requester)
	}
	if loaded.RequesterKind != policy.Machine || rec.RequesterKind != "machine" {
		t.Errorf("requester kind %q on record %q, want machine: policy re-checks must see a machine as one", loaded.RequesterKind, rec.RequesterKind)
	}
	if err := svc.Revoke(ctx, "admin@example.com", loaded); err != nil {
		t.Fatal(err)
	}
	wantRuns(t, n, "provision "+g.Username, "revoke "+g.Username)

	_, _, err = svc.Load(ctx, "ar-0000000000000000")
	if ClassOf(err) != NotFound || !strings.Contains(err.Error(), "ar-0000000000000000") {
		t.Errorf("loading an unknown id: %v (class %q), want not_found naming the id", err, ClassOf(err))
	}
}

func TestFailuresCarryTheirClass(t *testing.T) {
	l := startLab(t, 0, 0)
	ok := newAnsweringNode(l, nil)
	broken := newAnsweringNode(l, map[string][]int{"provision": {hostscript.ExitFailed}})
	ca := newCA(t)

	_, err := l.svc.Grant(context.Background(), request(ca, instanceIDs(ok, broken)...))
	if ClassOf(err) != HostFailure {
		t.Errorf("a failed host: %v is %q, want %q", err, ClassOf(err), HostFailure)
	}

	denier := l.service(t, "")
	denier.authz = refuseAll{}
	_, err = denier.Grant(context.Background(), request(ca, instanceIDs(ok)...))
	if ClassOf(err) != Denied {
		t.Errorf("a policy refusal: %v is %q, want %q", err, ClassOf(err), Denied)
	}

	broke := l.service(t, "")
	broke.authz = unreadablePolicy{}
	_, err = broke.Grant(context.Background(), request(ca, instanceIDs(ok)...))
	if ClassOf(err) != Unavailable {
		t.Errorf("a policy that cannot be read: %v is %q, want %q", err, ClassOf(err), Unavailable)
	}

	// Without the service nobody can hold a request for approval, so one
	// that needs it is refused, saying where approvals are given.
	direct := l.service(t, "")
	direct.authz = wantsApproval{}
	_, err = direct.Grant(context.Background(), request(ca, instanceIDs(ok)...))
	if ClassOf(err) != Denied || !strings.Contains(err.Error(), "only through the Passport service") || !strings.Contains(err.Error(), "1 approval by a member of admins") {
		t.Errorf("a request that needs approval in direct mode: %v is %q, want %q naming the service", err, ClassOf(err), Denied)
	}

	g := grant(t, l.svc, request(ca, instanceIDs(ok)...))
	l.clock.Advance(2 * DefaultDuration)
	_, err = l.svc.SetTargets(context.Background(), testActor, g, ca, instanceIDs(ok, broken))
	if ClassOf(err) != Conflict {
		t.Errorf("changing an expired grant: %v is %q, want %q", err, ClassOf(err), Conflict)
	}
	if ClassOf(nil) != "" || ClassOf(errors.New("something")) != Internal {
		t.Error("nil must have no class and an unclassed error must be internal")
	}
}

type refuseAll struct{}

func (refuseAll) Authorize(_ context.Context, req policy.Request) error {
	d := policy.Decision{}
	for _, t := range req.Targets {
		d.Targets = append(d.Targets, policy.TargetDecision{ID: t.ID, Why: "refused by the test"})
	}
	return d.Err()
}

// wantsApproval says every target needs one approval from admins.
type wantsApproval struct{}

func (wantsApproval) Authorize(_ context.Context, req policy.Request) error {
	d := policy.Decision{Approvers: []policy.Approver{{Kind: "group", Names: []string{"admins"}}}}
	for _, t := range req.Targets {
		d.Targets = append(d.Targets, policy.TargetDecision{ID: t.ID, Approvals: 1, Why: "needs 1 approval in the test"})
	}
	return d.Err()
}

type unreadablePolicy struct{}

func (unreadablePolicy) Authorize(context.Context, policy.Request) error {
	return errors.New("the policy parameter could not be read")
}

func TestSealedPasswordsReachOnlyTheKeysOwner(t *testing.T) {
	l := startMixedLab(t, 0, 1)
	h := l.Windows[0]
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	req := request(newCA(t), windowsIDs(l)...)
	req.SealTo = &key.PublicKey
	g := grant(t, l.svc, req)
	id := h.Info().InstanceID

	if len(g.Passwords) != 0 {
		t.Fatalf("the core opened a password sealed to the requester's key: %d passwords", len(g.Passwords))
	}
	sealed := g.SealedPasswords[id]
	if sealed == "" {
		t.Fatalf("no sealed password for %s: %v", id, g.SealedPasswords)
	}
	pw, err := hostscript.OpenSealedPassword(key, g.Username, sealed)
	if err != nil {
		t.Fatal(err)
	}
	mustLogOn(t, h, g.Username, pw)

	other, _ := rsa.GenerateKey(rand.Reader, 3072)
	if _, err := hostscript.OpenSealedPassword(other, g.Username, sealed); err == nil {
		t.Error("another key opened the sealed password")
	}
	if err := l.svc.Revoke(context.Background(), testActor, g); err != nil {
		t.Fatal(err)
	}
	if len(g.SealedPasswords) != 0 {
		t.Errorf("sealed passwords of revoked targets are kept: %v", g.SealedPasswords)
	}
	mustBeDenied(t, h, g.Username, pw, "after revoke")
}
