package access

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// These tests put answering nodes beside each other to make hosts fail in
// ways a real host rarely does on demand, and check which programs each
// host was sent: the undo's choices are the point.

func instanceIDs(nodes ...*answeringNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.info.InstanceID)
	}
	return out
}

// wantRuns compares the programs a node ran with "action user" lines.
func wantRuns(t *testing.T, n *answeringNode, want ...string) {
	t.Helper()
	if got := n.actions(); !slices.Equal(got, want) {
		t.Errorf("%s ran %q, want %q", n.info.InstanceID, got, want)
	}
}

func usersOf(n *answeringNode) []string {
	var users []string
	for _, r := range n.actions() {
		_, u, _ := strings.Cut(r, " ")
		if !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	return users
}

func TestConflictRetriesOnceUnderANewName(t *testing.T) {
	l := startLab(t, 0, 0)
	ok := newAnsweringNode(l, nil)
	taken := newAnsweringNode(l, map[string][]int{"provision": {hostscript.ExitConflict}})
	g, err := l.svc.Grant(context.Background(), request(newCA(t), instanceIDs(ok, taken)...))
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	names := usersOf(ok)
	if len(names) != 2 || g.Username != names[1] || names[0] == names[1] {
		t.Fatalf("names tried %q, granted %q; want a second, different name", names, g.Username)
	}
	wantRuns(t, ok, "provision "+names[0], "revoke "+names[0], "provision "+names[1])
	// The first name is someone else's on that host: it must never be
	// revoked there.
	wantRuns(t, taken, "provision "+names[0], "provision "+names[1])
	if !strings.Contains(certificate(t, g).ValidPrincipals[0], names[1]) {
		t.Error("the certificate is not for the second name")
	}
}

func TestConflictTwiceFails(t *testing.T) {
	l := startLab(t, 0, 0)
	ok := newAnsweringNode(l, nil)
	taken := newAnsweringNode(l, map[string][]int{"provision": {4, 4, 4}})
	g, err := l.svc.Grant(context.Background(), request(newCA(t), instanceIDs(ok, taken)...))
	if err == nil || g != nil {
		t.Fatalf("Grant: %+v, %v; want a refusal", g, err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), taken.info.InstanceID) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("error does not explain the conflict on %s: %v", taken.info.InstanceID, err)
	}
	names := usersOf(ok)
	if len(names) != 2 {
		t.Fatalf("names tried: %q", names)
	}
	wantRuns(t, ok, "provision "+names[0], "revoke "+names[0], "provision "+names[1], "revoke "+names[1])
	wantRuns(t, taken, "provision "+names[0], "provision "+names[1])
}

// TestUndoThatCannotFinish: the user may stay on a host the undo could not
// clean, so Grant hands back the grant with that target Active for a later
// Revoke, and says so.
func TestUndoThatCannotFinish(t *testing.T) {
	l := startLab(t, 0, 0)
	stuck := newAnsweringNode(l, map[string][]int{"revoke": {hostscript.ExitFailed}})
	failing := newAnsweringNode(l, map[string][]int{"provision": {hostscript.ExitFailed}})
	never := newAnsweringNode(l, map[string][]int{"provision": {hostscript.ExitData}})
	g, err := l.svc.Grant(context.Background(), request(newCA(t), instanceIDs(stuck, failing, never)...))
	if err == nil || g == nil {
		t.Fatalf("Grant: %+v, %v; want the grant back with an error", g, err)
	}
	t.Log(err)
	for _, id := range instanceIDs(stuck, failing, never) {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error does not name %s: %v", id, err)
		}
	}
	status := map[string]TargetStatus{}
	for _, tg := range g.Targets {
		status[tg.InstanceID] = tg.Status
	}
	if status[stuck.info.InstanceID] != Active || status[failing.info.InstanceID] != Failed || status[never.info.InstanceID] != Failed {
		t.Errorf("statuses %v; want the unrevoked host active, the others failed", status)
	}
	// A host that refused the data changed nothing and is not sent a revoke.
	wantRuns(t, never, "provision "+g.Username)

	if err := l.svc.Revoke(context.Background(), testActor, g); err != nil {
		t.Fatalf("a later Revoke: %v", err)
	}
	wantRuns(t, stuck, "provision "+g.Username, "revoke "+g.Username, "revoke "+g.Username)
	wantRuns(t, failing, "provision "+g.Username, "revoke "+g.Username)
}

// TestRevokeLeavesOfflineTargetsActive: an offline host is not revoked, so
// it stays Active with a reason and the error names it. One SSM no longer
// knows (terminated, or its agent deregistered) can never answer: it counts
// as revoked, with a detail saying what still ends the access, so that a
// destroy does not fail forever. The others are revoked all the same.
func TestRevokeLeavesOfflineTargetsActive(t *testing.T) {
	l := startLab(t, 0, 3)
	var ids []string
	for _, m := range l.Models {
		m.SetAnswer(0, "passport-result action=provision status=ok\n", "")
		ids = append(ids, m.Info().InstanceID)
	}
	g := grant(t, l.svc, request(newCA(t), ids...))
	l.Models[0].SetAnswer(0, "passport-result action=revoke status=ok\n", "")
	l.Models[1].SetOnline(false)
	l.SSM.RemoveNode(ids[2])
	err := l.svc.Revoke(context.Background(), testActor, g)
	if err == nil || !strings.Contains(err.Error(), ids[1]) || strings.Contains(err.Error(), ids[2]) || strings.Contains(err.Error(), ids[0]) {
		t.Fatalf("Revoke with %s offline and %s gone: %v; want an error naming only the offline one", ids[1], ids[2], err)
	}
	if g.Targets[0].Status != Revoked || g.Targets[1].Status != Active || g.Targets[1].Detail == "" {
		t.Errorf("targets %+v; want the offline one still active, with a reason", g.Targets)
	}
	if g.Targets[2].Status != Revoked || !strings.Contains(g.Targets[2].Detail, "sweep") {
		t.Errorf("the vanished instance: %+v; want revoked, saying the host's sweep ends the access", g.Targets[2])
	}
	// A second revoke retries the offline host only.
	l.Models[1].SetOnline(true)
	l.Models[1].SetAnswer(0, "passport-result action=revoke status=ok\n", "")
	if err := l.svc.Revoke(context.Background(), testActor, g); err != nil || g.Targets[1].Status != Revoked {
		t.Errorf("retried revoke: %v, %+v", err, g.Targets)
	}
}

func TestAddedTargetThatFailsIsUndone(t *testing.T) {
	l := startLab(t, 0, 0)
	a := newAnsweringNode(l, nil)
	bad := newAnsweringNode(l, map[string][]int{"provision": {hostscript.ExitSSHD}})
	ca := newCA(t)
	g := grant(t, l.svc, request(ca, instanceIDs(a)...))
	next, err := l.svc.SetTargets(context.Background(), testActor, g, ca, instanceIDs(a, bad))
	if err == nil || !strings.Contains(err.Error(), bad.info.InstanceID) || next == nil {
		t.Fatalf("SetTargets: %v; want the grant and an error naming %s", err, bad.info.InstanceID)
	}
	if next.Targets[0].Status != Active || next.Targets[1].Status != Failed {
		t.Errorf("targets %+v", next.Targets)
	}
	wantRuns(t, bad, "provision "+g.Username, "revoke "+g.Username)
	wantRuns(t, a, "provision "+g.Username)

	// Listing it again retries it.
	again, err := l.svc.SetTargets(context.Background(), testActor, next, ca, instanceIDs(a, bad))
	if err != nil || again.Targets[1].Status != Active {
		t.Fatalf("retrying the failed target: %+v, %v", again.Targets, err)
	}

	l.Server.ResetCalls()
	if same, err := l.svc.SetTargets(context.Background(), testActor, again, ca, instanceIDs(a, bad)); err != nil || !slices.Equal(same.Targets, again.Targets) {
		t.Errorf("an unchanged list: %+v, %v", same, err)
	}
	if calls := l.Server.Calls(); len(calls) != 0 {
		t.Errorf("an unchanged list of targets cost SSM calls: %v", calls)
	}
}

func TestExtendReportsHostsThatKeptTheOldExpiry(t *testing.T) {
	l := startLab(t, 0, 0)
	a := newAnsweringNode(l, nil)
	gone := newAnsweringNode(l, map[string][]int{"extend": {hostscript.ExitNotFound}})
	ca := newCA(t)
	g := grant(t, l.svc, request(ca, instanceIDs(a, gone)...))
	next, err := l.svc.Extend(context.Background(), testActor, g, ca, 2*time.Hour)
	if err == nil || next == nil || !strings.Contains(err.Error(), gone.info.InstanceID) {
		t.Fatalf("Extend: %v; want the new grant and an error naming %s", err, gone.info.InstanceID)
	}
	if next.Targets[0].Detail != "" || !strings.Contains(next.Targets[1].Detail, "vanished") {
		t.Errorf("targets %+v", next.Targets)
	}
	if g.ExpiresAt.Equal(next.ExpiresAt) || g.Certificate == next.Certificate {
		t.Error("the returned grant does not carry the new window")
	}
}

func TestCheckReportsUnreachable(t *testing.T) {
	l := startLab(t, 0, 0)
	a := newAnsweringNode(l, nil)
	b := newAnsweringNode(l, map[string][]int{"check": {hostscript.ExitFailed}})
	g := grant(t, l.svc, request(newCA(t), instanceIDs(a, b)...))
	h, err := l.svc.Check(context.Background(), g)
	if err != nil || h.Expired || len(h.Missing) != 0 || !slices.Equal(h.Unreachable, instanceIDs(b)) {
		t.Errorf("Check: %+v, %v; want %s unreachable", h, err, b.info.InstanceID)
	}
}

// TestUndoOutlivesTheCallersDeadline: a provision cut short by the caller's
// deadline may have run partly; the undo still reaches every host.
func TestUndoOutlivesTheCallersDeadline(t *testing.T) {
	l := startLab(t, 0, 0)
	fast := newAnsweringNode(l, nil)
	slow := newAnsweringNode(l, nil)
	slow.slow = map[string]time.Duration{"provision": time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	g, err := l.svc.Grant(ctx, request(newCA(t), instanceIDs(fast, slow)...))
	if err == nil || g != nil || !strings.Contains(err.Error(), slow.info.InstanceID) {
		t.Fatalf("Grant past its deadline: %+v, %v; want an error naming %s and nothing left", g, err, slow.info.InstanceID)
	}
	t.Log(err)
	for _, n := range []*answeringNode{fast, slow} {
		if runs := n.actions(); len(runs) != 2 || !strings.HasPrefix(runs[1], "revoke ") {
			t.Errorf("%s ran %q; want a provision, then the undo's revoke", n.info.InstanceID, runs)
		}
	}
}

func TestGrantNamesEveryUnfitTarget(t *testing.T) {
	l := startLab(t, 0, 2)
	fine, offline := l.Models[0].Info().InstanceID, l.Models[1].Info().InstanceID
	l.Models[1].SetOnline(false)
	// Passport grants on Linux and Windows; a Mac is neither.
	mac := newAnsweringNode(l, nil)
	mac.info.PlatformType = "MacOS"
	l.SSM.AddNode(mac)
	unknown := "i-0123456789abcdef0"
	targets := []string{fine, offline, mac.info.InstanceID, unknown}
	for name, tc := range map[string]struct {
		targets, bad []string
	}{
		"all at once": {targets, targets[1:]},
		"one unknown": {[]string{fine, unknown}, []string{unknown}},
	} {
		t.Run(name, func(t *testing.T) {
			l.Server.ResetCalls()
			g, err := l.svc.Grant(context.Background(), request(newCA(t), tc.targets...))
			if err == nil || g != nil {
				t.Fatalf("Grant: %+v, %v", g, err)
			}
			t.Log(err)
			for _, id := range tc.bad {
				if !strings.Contains(err.Error(), id) {
					t.Errorf("error does not name %s", id)
				}
			}
			if strings.Contains(err.Error(), fine) {
				t.Errorf("error names %s, which is fine", fine)
			}
			if n := l.Server.Calls()["AmazonSSM.SendCommand"]; n != 0 || len(mac.actions()) != 0 {
				t.Errorf("%d commands were sent; nothing may be", n)
			}
		})
	}
}
