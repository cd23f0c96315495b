package access

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/winhost"
	"github.com/passport-access/terraform-provider-passport/internal/winpass"
)

// These tests grant Windows targets on the lab's Windows hosts: models that
// accept only Passport's shipped PowerShell programs, apply their data to
// local accounts, and check passwords on port 3389. What a person notices
// is whether the password they were given logs on.

// startMixedLab starts a lab with Linux sandbox hosts and Windows hosts on
// the tests' clock, so a Windows account expires when the clock says so.
func startMixedLab(t *testing.T, hosts, windows int) *testLab {
	t.Helper()
	clk := clock.NewFake(time.Now())
	return startLabWith(t, lab.Options{Hosts: hosts, WindowsHosts: windows, Now: clk.Now}, clk)
}

func windowsIDs(l *testLab) []string {
	var ids []string
	for _, h := range l.Windows {
		ids = append(ids, h.Info().InstanceID)
	}
	return ids
}

// logon tries user and password on h's port 3389, as an RDP client's
// credential check would.
func logon(h *winhost.Host, user, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return winhost.Logon(ctx, net.JoinHostPort(h.Info().IPAddress, strconv.Itoa(winhost.RDPPort)), user, password)
}

func mustLogOn(t *testing.T, h *winhost.Host, user, password string) {
	t.Helper()
	if err := logon(h, user, password); err != nil {
		t.Fatalf("logon to %s as %s: %v", h.Info().InstanceID, user, err)
	}
}

func mustBeDenied(t *testing.T, h *winhost.Host, user, password, why string) {
	t.Helper()
	err := logon(h, user, password)
	var denied *winhost.DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("%s: logon to %s as %s: got %v, want a denial", why, h.Info().InstanceID, user, err)
	}
}

func TestMixedGrantLinuxAndWindows(t *testing.T) {
	l := startMixedLab(t, 1, 2)
	ca := newCA(t)
	linux, windows := l.hostIDs(), windowsIDs(l)
	g := grant(t, l.svc, request(ca, append(slices.Clone(linux), windows...)...))

	for _, tg := range g.Targets {
		want := Linux
		if slices.Contains(windows, tg.InstanceID) {
			want = Windows
		}
		if tg.Platform != want || tg.Status != Active {
			t.Errorf("target %s: platform %q status %s, want %s and active", tg.InstanceID, tg.Platform, tg.Status, want)
		}
	}
	if len(g.Passwords) != len(windows) {
		t.Fatalf("grant has passwords for %d targets, want one per Windows target (%d)", len(g.Passwords), len(windows))
	}
	a, b := g.Passwords[windows[0]], g.Passwords[windows[1]]
	if a == "" || b == "" || a == b {
		t.Fatal("each Windows target needs its own password")
	}
	for id, pw := range g.Passwords {
		if err := winpass.Check(pw, g.Username); err != nil || len(pw) < winpass.MinLength {
			t.Errorf("password for %s breaks the rules: %v", id, err)
		}
	}

	c := credentialOf(t, g, nil)
	mustLogIn(t, l.Hosts[0], g.Username, c.signer)
	for i, h := range l.Windows {
		mustLogOn(t, h, g.Username, g.Passwords[windows[i]])
		acct, ok := h.Account(g.Username)
		if !ok || !acct.InGroup(winhost.GroupRemoteDesktopUsers) || acct.InGroup(winhost.GroupAdministrators) {
			t.Errorf("%s: account %+v: want Remote Desktop Users without Administrators (no sudo)", h.Info().InstanceID, acct)
		}
		if !acct.Expires.Equal(g.ExpiresAt) {
			t.Errorf("%s: account expires %s, grant %s", h.Info().InstanceID, acct.Expires, g.ExpiresAt)
		}
	}
	mustBeDenied(t, l.Windows[0], g.Username, b, "the password of another host")

	t.Run("another request on the same hosts gets passwords of its own", func(t *testing.T) {
		other := grant(t, l.svc, request(ca, windows...))
		for id, pw := range other.Passwords {
			if pw == a || pw == b {
				t.Errorf("%s: the second request's password repeats the first's", id)
			}
		}
		mustBeDenied(t, l.Windows[0], g.Username, other.Passwords[windows[0]], "another request's password for this request's user")
		if err := l.svc.Revoke(context.Background(), testActor, other); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("check finds every target", func(t *testing.T) {
		h, err := l.svc.Check(context.Background(), g)
		if err != nil || len(h.Missing)+len(h.Unreachable) > 0 || h.Expired {
			t.Fatalf("Check: %+v, %v", h, err)
		}
	})

	t.Run("extend moves the Windows expiry", func(t *testing.T) {
		next, err := l.svc.Extend(context.Background(), testActor, g, ca, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range l.Windows {
			rec, ok := h.Record(g.Username)
			acct, _ := h.Account(g.Username)
			if !ok || !rec.Expires.Equal(next.ExpiresAt) || !acct.Expires.Equal(next.ExpiresAt) {
				t.Errorf("%s: record %+v, account expiry %s, want %s", h.Info().InstanceID, rec, acct.Expires, next.ExpiresAt)
			}
		}
		if next.Passwords[windows[0]] != a {
			t.Error("an extension must keep the passwords the hosts hold")
		}
		g = next
	})

	t.Run("revoke removes the accounts", func(t *testing.T) {
		if err := l.svc.Revoke(context.Background(), testActor, g); err != nil {
			t.Fatal(err)
		}
		for i, h := range l.Windows {
			if _, ok := h.Account(g.Username); ok {
				t.Errorf("%s still has %s", h.Info().InstanceID, g.Username)
			}
			mustBeDenied(t, h, g.Username, []string{a, b}[i], "after revoke")
		}
		mustBeRefused(t, l.Hosts[0], g.Username, c.signer, "after revoke")
		if len(g.Passwords) != 0 {
			t.Error("a revoked grant still carries passwords")
		}
	})
}

func TestWindowsAccountExpiresWithTheWindow(t *testing.T) {
	l := startMixedLab(t, 0, 1)
	req := request(newCA(t), windowsIDs(l)...)
	req.Sudo, req.Duration = true, 10*time.Minute
	g := grant(t, l.svc, req)
	h, pw := l.Windows[0], g.Passwords[l.Windows[0].Info().InstanceID]
	if acct, _ := h.Account(g.Username); !acct.InGroup(winhost.GroupAdministrators) {
		t.Errorf("sudo granted, but %s is not in Administrators: %+v", g.Username, acct)
	}
	mustLogOn(t, h, g.Username, pw)
	l.clock.Advance(11 * time.Minute)
	mustBeDenied(t, h, g.Username, pw, "after the window")
}

func TestWindowsPasswordsStayOutOfErrors(t *testing.T) {
	l := startMixedLab(t, 0, 2)
	ca := newCA(t)
	ids := windowsIDs(l)
	g := grant(t, l.svc, request(ca, ids...))
	if err := l.Windows[1].Stop(); err != nil {
		t.Fatal(err)
	}
	err := l.svc.Revoke(context.Background(), testActor, g)
	if err == nil || !strings.Contains(err.Error(), ids[1]) {
		t.Fatalf("revoke with %s stopped: %v, want an error naming it", ids[1], err)
	}
	for _, pw := range g.Passwords {
		if strings.Contains(err.Error(), pw) {
			t.Fatal("the error holds a password")
		}
	}
	if _, ok := g.Passwords[ids[1]]; !ok {
		t.Error("the password of the host that kept the user was dropped")
	}
	if _, ok := g.Passwords[ids[0]]; ok {
		t.Error("the password of the revoked host was kept")
	}
	if err := l.Windows[1].Start(); err != nil {
		t.Fatal(err)
	}
	if err := l.svc.Revoke(context.Background(), testActor, g); err != nil {
		t.Fatalf("revoke once the host is back: %v", err)
	}
}

// addWindowsHost adds a lab Windows host configured beyond what lab.Options
// offers, on an address of its own.
func addWindowsHost(t *testing.T, l *testLab, name string, cfg winhost.Config) *winhost.Host {
	t.Helper()
	cfg.InstanceID = fmt.Sprintf("i-%017x", rand.Uint64()>>4)
	cfg.ComputerName = name
	cfg.Address = fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(250), 1+rand.IntN(250))
	cfg.AgentVersion = "3.3.0.0"
	cfg.Now = l.clock.Now
	h, err := winhost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	l.SSM.AddNode(h)
	return h
}

func TestWindowsHostsThatCannotTakeAUser(t *testing.T) {
	l := startMixedLab(t, 0, 1)
	good := l.Windows[0]
	dc := addWindowsHost(t, l, "dc-1", winhost.Config{DomainController: true})
	strict := addWindowsHost(t, l, "strict-1", winhost.Config{MinPasswordLength: 64})

	for _, c := range []struct {
		host *winhost.Host
		want string
	}{
		{dc, "domain controller: no local users"},
		{strict, "password policy refused the generated password"},
	} {
		id := c.host.Info().InstanceID
		g, err := l.svc.Grant(context.Background(), request(newCA(t), good.Info().InstanceID, id))
		if err == nil || g != nil {
			t.Fatalf("grant with %s: %v, want it refused and nothing kept", c.host.Info().ComputerName, err)
		}
		if !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("the error does not name %s and say %q:\n%v", id, c.want, err)
		}
		if !strings.Contains(err.Error(), "removed again") {
			t.Errorf("the error does not say the user was removed from the host that took it:\n%v", err)
		}
		for _, h := range []*winhost.Host{good, c.host} {
			for _, a := range h.Users() {
				if a.Passport() {
					t.Errorf("%s keeps Passport user %s after the refused grant", h.Info().ComputerName, a.Name)
				}
			}
		}
	}
}
