package reconcile

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/winhost"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// logon tries user and password on h's port 3389 and reports whether the
// host let them in.
func logon(t *testing.T, h *winhost.Host, user, password string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := winhost.Logon(ctx, net.JoinHostPort(h.Info().IPAddress, strconv.Itoa(winhost.RDPPort)), user, password)
	var denied *winhost.DeniedError
	if err != nil && !errors.As(err, &denied) {
		t.Fatalf("logon check on %s: %v", h.Info().InstanceID, err)
	}
	return err == nil
}

func TestWindowsGrantEndsWithoutDestroy(t *testing.T) {
	r := newRigWith(t, lab.Options{Hosts: 1, WindowsHosts: 1})
	key, priv := newKey(t)
	g := r.grant(t, newCA(t), key, r.hostIDs()...)
	win := r.lab.Windows[0]
	pw := g.Passwords[win.Info().InstanceID]
	if !logon(t, win, g.Username, pw) {
		t.Fatal("the Windows password does not log on inside the window")
	}
	rec := r.reconciler(t, r.ledger, "reconciler/a", nil)
	// The host's own model would refuse an expired account by itself; the
	// reconciler must remove it, which the account's absence shows.
	r.clock.Advance(time.Hour + time.Second)
	if rep := pass(t, rec); rep.Revoked != 1 {
		t.Fatalf("pass after the window: %+v, want the mixed grant revoked", rep)
	}
	if _, ok := win.Account(g.Username); ok {
		t.Errorf("%s still has %s after the window ended", win.Info().InstanceID, g.Username)
	}
	if logon(t, win, g.Username, pw) {
		t.Error("the Windows password still logs on after the window")
	}
	if hasUser(t, r.lab.Hosts[0], g.Username) {
		t.Error("the Linux host still has the user")
	}
	if err := login(t, r.lab.Hosts[0], g, priv); err == nil {
		t.Error("the certificate still logs in after the window")
	}
	if got := r.record(t, g.ID); got.State != ledger.Expired {
		t.Errorf("record: %s, want expired", got.State)
	}
}

func TestSweepRemovesWindowsStrays(t *testing.T) {
	r := newRigWith(t, lab.Options{WindowsHosts: 1})
	win := r.lab.Windows[0]
	key, _ := newKey(t)
	live := r.grant(t, newCA(t), key, r.hostIDs()...)
	// A grant made by a run that never reached the ledger, and an account
	// of the host's own.
	unrecorded := r.person
	r.person = r.service(t, nil, "")
	stray := r.grant(t, newCA(t), key, r.hostIDs()...)
	r.person = unrecorded
	strayPW := stray.Passwords[win.Info().InstanceID]
	const pw = "Correct-Horse-Battery-Staple-42"
	if err := win.AddLocalAccount("dbadmin", pw, winhost.GroupRemoteDesktopUsers); err != nil {
		t.Fatal(err)
	}
	rec := r.reconciler(t, r.ledger, "reconciler/a", nil)
	if rep := pass(t, rec); rep.Strays != 1 || rep.Revoked != 0 {
		t.Fatalf("pass: %+v, want one stray removed and nothing else", rep)
	}
	if _, ok := win.Account(stray.Username); ok || logon(t, win, stray.Username, strayPW) {
		t.Error("the stray Passport account is still there")
	}
	if !logon(t, win, "dbadmin", pw) {
		t.Error("the sweep removed an account that is not Passport's")
	}
	if !logon(t, win, live.Username, live.Passwords[win.Info().InstanceID]) {
		t.Error("the live grant's password no longer logs on after the sweep")
	}
	events, _ := r.ledger.Events(context.Background(), ledger.Filter{Person: stray.Username})
	if len(events) != 1 || events[0].Action != ledger.ActionSwept || events[0].Target != win.Info().InstanceID {
		t.Errorf("audit events about the stray: %+v, want one swept event on %s", events, win.Info().InstanceID)
	}
}
