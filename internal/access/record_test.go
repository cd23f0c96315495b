package access

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// These tests check what the ledger holds after each operation: the record
// a reconciler would act on, and the audit trail a person would read.

func withLedger(t *testing.T, l *testLab) (*Service, *ledger.Ledger) {
	t.Helper()
	led, err := ledger.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Now: l.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	svc := l.service(t, "")
	svc.ledger = led
	return svc, led
}

// trail lists a grant's events as "action target".
func trail(t *testing.T, led *ledger.Ledger, id string) []string {
	t.Helper()
	events, err := led.Events(context.Background(), ledger.Filter{GrantID: id})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, strings.TrimSpace(string(e.Action)+" "+e.Target))
	}
	return out
}

func targetStates(r ledger.Grant) []ledger.State {
	var out []ledger.State
	for _, t := range r.Targets {
		out = append(out, t.State)
	}
	return out
}

func TestLedgerFollowsGrantAndRevoke(t *testing.T) {
	l := startLab(t, 0, 0)
	a, b := newAnsweringNode(l, nil), newAnsweringNode(l, nil)
	svc, led := withLedger(t, l)
	ctx := context.Background()
	req := request(newCA(t), instanceIDs(a, b)...)
	req.Groups = []string{"ops", "oncall"}
	g := grant(t, svc, req)

	r, err := led.Get(ctx, g.ID)
	if err != nil {
		t.Fatalf("the granted request is not in the ledger: %v", err)
	}
	if r.State != ledger.Active || !slices.Equal(targetStates(r), []ledger.State{ledger.Active, ledger.Active}) {
		t.Errorf("record after grant: %s %v, want active on both targets", r.State, targetStates(r))
	}
	if !slices.Equal(r.Groups, req.Groups) {
		t.Errorf("the record's groups %v, want the requester's %v", r.Groups, req.Groups)
	}
	rebuilt := FromRecord(r)
	// Terraform's state holds no groups: a revoke from it keeps the record's.
	rebuilt.Groups = nil
	if rebuilt.Username != g.Username || rebuilt.Serial != g.Serial || rebuilt.CAPublicKey != g.CAPublicKey || len(rebuilt.Targets) != 2 {
		t.Errorf("the record does not carry what revoke needs: %+v", rebuilt)
	}
	if strings.Contains(r.Certificate+r.PublicKey+r.Reason, "PRIVATE KEY") || g.PrivateKey == "" {
		t.Error("a private key reached the ledger (or none was generated to check against)")
	}

	// The reconciler revokes from the record alone, after the window.
	l.clock.Advance(2 * time.Hour)
	reconciler := l.service(t, "")
	reconciler.ledger = led
	if err := reconciler.Revoke(ctx, "reconciler/test", rebuilt); err != nil {
		t.Fatal(err)
	}
	r, _ = led.Get(ctx, g.ID)
	if r.State != ledger.Expired || !slices.Equal(targetStates(r), []ledger.State{ledger.Expired, ledger.Expired}) {
		t.Errorf("record after the reconciler's revoke: %s %v, want expired everywhere", r.State, targetStates(r))
	}
	if !slices.Equal(r.Groups, req.Groups) {
		t.Errorf("after the revoke the record's groups are %v, want %v kept", r.Groups, req.Groups)
	}
	ia, ib := a.info.InstanceID, b.info.InstanceID
	want := []string{"requested", "provisioned " + ia, "provisioned " + ib, "revoked " + ia, "revoked " + ib, "expired"}
	if got := trail(t, led, g.ID); !slices.Equal(got, want) {
		t.Errorf("audit trail %q, want %q", got, want)
	}
	events, _ := led.Events(ctx, ledger.Filter{GrantID: g.ID})
	if events[0].Actor != g.Requester || events[len(events)-1].Actor != "reconciler/test" {
		t.Errorf("actors %q and %q: the request is the requester's, the expiry the reconciler's", events[0].Actor, events[len(events)-1].Actor)
	}
	if err := led.Verify(ctx); err != nil {
		t.Error(err)
	}
}

func TestLedgerRecordsFailuresAndOfflineRevokes(t *testing.T) {
	l := startLab(t, 0, 0)
	ok := newAnsweringNode(l, nil)
	bad := newAnsweringNode(l, map[string][]int{"provision": {hostscript.ExitHost}})
	svc, led := withLedger(t, l)
	ctx := context.Background()

	g, err := svc.Grant(ctx, request(newCA(t), instanceIDs(ok, bad)...))
	if err == nil || g != nil {
		t.Fatalf("Grant: %v, %v; want a refusal", g, err)
	}
	failed, _ := led.List(ctx, ledger.Failed)
	if len(failed) != 1 {
		t.Fatalf("%d failed records, want the refused request", len(failed))
	}
	r := failed[0]
	if !slices.Equal(targetStates(r), []ledger.State{ledger.Revoked, ledger.Failed}) {
		t.Errorf("targets %v: want the undone host closed and the failed one failed", targetStates(r))
	}
	io, ib := ok.info.InstanceID, bad.info.InstanceID
	want := []string{"requested", "provisioned " + io, "provision-failed " + ib, "revoked " + io}
	if got := trail(t, led, r.ID); !slices.Equal(got, want) {
		t.Errorf("audit trail %q, want %q", got, want)
	}

	// A revoke a host does not take leaves the grant revoking, retried later.
	good := grant(t, svc, request(newCA(t), io))
	ok.mu.Lock()
	ok.fail = map[string][]int{"revoke": {hostscript.ExitFailed}}
	ok.mu.Unlock()
	if err := svc.Revoke(ctx, testActor, good); err == nil {
		t.Fatal("Revoke reported success although the host failed")
	}
	if r, _ := led.Get(ctx, good.ID); r.State != ledger.Revoking || r.Targets[0].State != ledger.Revoking {
		t.Errorf("record after a failed revoke: %s %v, want revoking", r.State, targetStates(r))
	}
	if err := svc.Revoke(ctx, testActor, good); err != nil {
		t.Fatal(err)
	}
	if r, _ := led.Get(ctx, good.ID); r.State != ledger.Revoked {
		t.Errorf("record after the retried revoke: %s, want revoked", r.State)
	}
}

func TestLedgerFollowsExtendAndSetTargets(t *testing.T) {
	l := startLab(t, 0, 0)
	a, b := newAnsweringNode(l, nil), newAnsweringNode(l, nil)
	svc, led := withLedger(t, l)
	ctx := context.Background()
	ca := newCA(t)
	g := grant(t, svc, request(ca, a.info.InstanceID))
	made := l.clock.Now()

	l.clock.Advance(10 * time.Minute)
	// Each call names who made it: one service acts for many people.
	longer, err := svc.Extend(ctx, "bob@example.com", g, ca, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := led.Get(ctx, g.ID)
	if !r.ExpiresAt.Equal(longer.ExpiresAt) || !r.DueAt.Equal(longer.ExpiresAt) || r.Serial != longer.Serial {
		t.Errorf("record after Extend: expires %v, due %v, serial %d; want the new window %v and serial %d", r.ExpiresAt, r.DueAt, r.Serial, longer.ExpiresAt, longer.Serial)
	}
	if !r.CreatedAt.Equal(made) || !r.UpdatedAt.Equal(l.clock.Now()) {
		t.Errorf("record after Extend: created %v, updated %v; want created when granted (%v), updated now (%v)", r.CreatedAt, r.UpdatedAt, made, l.clock.Now())
	}

	ia, ib := a.info.InstanceID, b.info.InstanceID
	moved, err := svc.SetTargets(ctx, "carol@example.com", longer, ca, []string{ib})
	if err != nil {
		t.Fatal(err)
	}
	r, _ = led.Get(ctx, g.ID)
	states := map[string]ledger.State{}
	for _, tg := range r.Targets {
		states[tg.InstanceID] = tg.State
	}
	if r.State != ledger.Active || states[ib] != ledger.Active || states[ia] != ledger.Revoked || r.Serial != moved.Serial {
		t.Errorf("record after moving to %s: %s %v serial %d; want active there, %s revoked, serial %d", ib, r.State, states, r.Serial, ia, moved.Serial)
	}
	want := []string{"requested", "provisioned " + ia, "extended", "provisioned " + ib, "revoked " + ia}
	if got := trail(t, led, g.ID); !slices.Equal(got, want) {
		t.Errorf("audit trail %q, want %q", got, want)
	}
	events, _ := led.Events(ctx, ledger.Filter{GrantID: g.ID})
	var actors []string
	for _, e := range events {
		actors = append(actors, e.Actor)
	}
	wantActors := []string{g.Requester, g.Requester, "bob@example.com", "carol@example.com", "carol@example.com"}
	if !slices.Equal(actors, wantActors) {
		t.Errorf("the events name %q, want %q: each change is its caller's", actors, wantActors)
	}
}
