//go:build linux

package hostscript

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/leftover"
)

// Passport's UID range, as lib.sh has it.
const (
	uidMin  = 1900000000
	uidMark = "/var/lib/passport/uid-high-water"
)

// as and root are the host's runners for package leftover.
func (h *host) as(user string, c credential) leftover.Run {
	return func(script string) (string, error) { return h.login(user, c.signer, script) }
}

func (h *host) root(t *testing.T) leftover.Run {
	return func(script string) (string, error) { return h.sh(t, script), nil }
}

func (h *host) uid(t *testing.T, user string) int {
	t.Helper()
	n, err := strconv.Atoi(h.sh(t, "id -u "+user))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUIDsAreNeverReused: every Passport user gets the next UID of
// Passport's range, with a private group of the same number, and a number
// is never handed out again on that host, whoever had it before.
func TestUIDsAreNeverReused(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "uids")
	authority := newCA(t)
	provision := func(user string) int {
		t.Helper()
		h.provision(t, grantFor(authority, user, authority.issue(t, user), false, time.Now().Add(time.Hour)))
		return h.uid(t, user)
	}
	if got := provision("pp-one"); got != uidMin {
		t.Errorf("the first Passport user has uid %d, want %d, the start of Passport's range", got, uidMin)
	}
	if gid := h.sh(t, "id -g pp-one; getent group pp-one | cut -d: -f3"); gid != strconv.Itoa(uidMin)+"\n"+strconv.Itoa(uidMin) {
		t.Errorf("pp-one's private group has gid %q, want its uid", gid)
	}
	if sub := h.sh(t, "grep -c '^pp-one:' /etc/subuid /etc/subgid || true"); strings.Contains(sub, ":1") {
		t.Errorf("pp-one was given subordinate ids:\n%s", sub)
	}
	h.revoke(t, Revocation{Username: "pp-one"})
	if got := provision("pp-two"); got != uidMin+1 {
		t.Errorf("after pp-one was revoked, pp-two has uid %d, want %d: never pp-one's", got, uidMin+1)
	}
	if mark := h.sh(t, "cat "+uidMark+"; stat -c %a "+uidMark); mark != strconv.Itoa(uidMin+1)+"\n600" {
		t.Errorf("the high-water mark reads %q, want %d with mode 600", mark, uidMin+1)
	}

	t.Run("numbers held outside Passport are passed by", func(t *testing.T) {
		h.sh(t, "groupadd -g "+strconv.Itoa(uidMin+2)+" someone-elses && useradd -M -u "+strconv.Itoa(uidMin+3)+" -s /usr/sbin/nologin another")
		if got := provision("pp-three"); got != uidMin+4 {
			t.Errorf("pp-three has uid %d, want %d past the foreign group and user", got, uidMin+4)
		}
	})

	t.Run("a next uid that still owns something is refused", func(t *testing.T) {
		next := strconv.Itoa(uidMin + 5)
		h.sh(t, "touch /var/tmp/orphan && chown "+next+" /var/tmp/orphan")
		cred := authority.issue(t, "pp-four")
		script, _ := Provision(grantFor(authority, "pp-four", cred, false, time.Now().Add(time.Hour)))
		r, res := h.program(t, script)
		if r.Code != ExitUID || r.Step != "uid" || !strings.Contains(string(res.Stderr), "/var/tmp/orphan") {
			t.Fatalf("provision with uid %s owning /var/tmp/orphan: %+v\n%s; want exit %d naming the file", next, r, res.Stderr, ExitUID)
		}
		if h.run(t, "id pp-four").ExitCode == 0 || h.exists(t, GrantsDir+"/pp-four") {
			t.Error("the refused provision changed the host")
		}
		h.sh(t, "rm /var/tmp/orphan")
		if got := provision("pp-four"); got != uidMin+5 {
			t.Errorf("once the file was gone, pp-four has uid %d, want %s", got, next)
		}
	})

	t.Run("a damaged mark is refused", func(t *testing.T) {
		h.sh(t, "echo 12 > "+uidMark)
		script, _ := Provision(grantFor(authority, "pp-five", authority.issue(t, "pp-five"), false, time.Now().Add(time.Hour)))
		if r, res := h.program(t, script); r.Code != ExitUID || !strings.Contains(string(res.Stderr), uidMark) {
			t.Errorf("provision with a mark below Passport's range: %+v %s", r, res.Stderr)
		}
	})
}

// leaveAndRevoke is one revoke path's whole story on a host with cron and
// atd: the granted user leaves something everywhere its UID can own
// something, end removes the user, and then nothing of the UID is left,
// and a second request gets another UID and sees nothing of the first.
func leaveAndRevoke(t *testing.T, name string, end func(h *host, authority ca, user string, cred credential)) {
	h := boot(t, name, true)
	authority := newCA(t)
	cred := authority.issue(t, "pp-first")
	h.provision(t, grantFor(authority, "pp-first", cred, false, time.Now().Add(time.Hour)))
	uid := h.uid(t, "pp-first")
	if err := leftover.Leave(h.as("pp-first", cred), h.root(t), strconv.Itoa(uid), "pp-first"); err != nil {
		t.Fatal(err)
	}

	end(h, authority, "pp-first", cred)
	if h.run(t, "id pp-first").ExitCode == 0 {
		t.Fatal("pp-first is still there")
	}
	found, err := leftover.Owned(h.root(t), strconv.Itoa(uid), "pp-first")
	if err != nil {
		t.Fatal(err)
	}
	if err := leftover.Clean("the host", found); err != nil {
		t.Errorf("after pp-first (uid %d) was removed, %v", uid, err)
	}

	next := authority.issue(t, "pp-second")
	h.provision(t, grantFor(authority, "pp-second", next, false, time.Now().Add(time.Hour)))
	if got := h.uid(t, "pp-second"); got <= uid {
		t.Errorf("the next request's user has uid %d, want one above %d", got, uid)
	}
	seen, err := leftover.Visible(h.as("pp-second", next))
	if err != nil {
		t.Fatal(err)
	}
	if err := leftover.Clean("what pp-second sees", seen); err != nil {
		t.Error(err)
	}
}

func TestRevokeLeavesNothingKeyedByTheUID(t *testing.T) {
	t.Parallel()
	leaveAndRevoke(t, "leftrevoke", func(h *host, authority ca, user string, cred credential) {
		h.revoke(t, Revocation{Username: user, Serial: cred.serial, CAPublicKey: authority.public})
	})
}

// TestHostSweepLeavesNothingKeyedByTheUID: the host's own sweep, run by
// cron as provision scheduled it, once the window has ended.
func TestHostSweepLeavesNothingKeyedByTheUID(t *testing.T) {
	t.Parallel()
	leaveAndRevoke(t, "leftsweep", func(h *host, _ ca, user string, _ credential) {
		script, err := Extend(user, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		h.mustProgram(t, script)
		// cron runs the sweep at the start of each minute.
		for deadline := time.Now().Add(3 * time.Minute); h.run(t, "id "+user).ExitCode == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("cron's sweep did not remove %s within 3 minutes; cron's log:\n%s", user, h.sh(t, "cat /var/log/cron.log"))
			}
			time.Sleep(time.Second)
		}
	})
}

// TestRevokeEndsLingeringUnderSystemd: where systemd is init, revoke has
// logind end the user's lingering manager and its sessions before the
// account goes. Sandbox hosts have no systemd, so loginctl and systemctl
// are recorders here; what they are asked is what is checked.
func TestRevokeEndsLingeringUnderSystemd(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "linger")
	h.sh(t, `set -e
mkdir -p /run/systemd/system /var/lib/systemd/linger
for tool in systemctl loginctl; do
	printf '#!/bin/sh\necho "%s $*" >> /run/systemd.calls\n[ "$1" = is-active ] && exit 3\nexit 0\n' "$tool" > /usr/local/sbin/$tool
	chmod 755 /usr/local/sbin/$tool
done`)
	authority := newCA(t)
	cred := authority.issue(t, "pp-linger")
	h.provision(t, grantFor(authority, "pp-linger", cred, false, time.Now().Add(time.Hour)))
	uid := h.uid(t, "pp-linger")
	// What `loginctl enable-linger` leaves: the user's manager starts at
	// boot and keeps its units running without a login.
	h.sh(t, "touch /var/lib/systemd/linger/pp-linger")
	h.revoke(t, Revocation{Username: "pp-linger", Serial: cred.serial, CAPublicKey: authority.public})
	calls := h.sh(t, "cat /run/systemd.calls")
	for _, want := range []string{"loginctl disable-linger pp-linger", "loginctl terminate-user " + strconv.Itoa(uid)} {
		if !strings.Contains(calls, want) {
			t.Errorf("revoke did not run %q; calls:\n%s", want, calls)
		}
	}
	if h.exists(t, "/var/lib/systemd/linger/pp-linger") {
		t.Error("the user's linger file is still there")
	}
	if h.run(t, "id pp-linger").ExitCode == 0 {
		t.Error("the user is still there")
	}
}
