//go:build linux

package hostscript

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/rootfs"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// TestProgramsOnEveryRelease runs every host program on every Debian
// release the lab builds, on a host with the lab's init and cron and atd
// running, and on one whose first process is the release's own systemd:
// each release's OpenSSH, sudo, shadow tools and schedulers meet the same
// programs. Provision, check, extend, inventory, revoke and sweep are each
// judged by what a person would notice.
func TestProgramsOnEveryRelease(t *testing.T) {
	for _, r := range rootfs.Releases {
		for _, withSystemd := range []bool{false, true} {
			name := r.Name
			if withSystemd {
				name += "/systemd"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				root, err := rootfs.Find(rootfs.DefaultCache(), r.Name)
				if err != nil {
					t.Skip(err)
				}
				if withSystemd {
					if err := sandbox.SystemdAvailable(); err != nil {
						t.Skip(err)
					}
				}
				h := bootWith(t, r.Name, func(c *sandbox.Config) {
					c.Root, c.Systemd, c.Schedulers = root, withSystemd, true
				})
				programLifecycle(t, h, withSystemd)
			})
		}
	}
}

// programLifecycle takes two users through every program on h.
func programLifecycle(t *testing.T, h *host, systemd bool) {
	authority := newCA(t)
	admin := h.plainUser(t, "admin")
	live, gone := authority.issue(t, "pp-live"), authority.issue(t, "pp-gone")

	// provision: a login with the certificate, sudo when granted, and the
	// host's own sweep scheduled where the host schedules things.
	r := h.provision(t, grantFor(authority, "pp-live", live, true, time.Now().Add(time.Hour)))
	wantSweeper := "cron"
	if systemd {
		wantSweeper = "systemd"
	}
	if r.Fields["sweeper"] != wantSweeper {
		t.Errorf("provision scheduled the sweep with %q, want %s: %v", r.Fields["sweeper"], wantSweeper, r.Fields)
	}
	if systemd {
		if out := h.sh(t, "systemctl is-active passport-sweep.timer"); out != "active" {
			t.Errorf("passport-sweep.timer is %s under systemd", out)
		}
	}
	h.mustLogin(t, "pp-live", live.signer)
	if got, err := h.login("pp-live", live.signer, "sudo -n id -un"); err != nil || got != "root" {
		t.Errorf("sudo as pp-live: %q, %v", got, err)
	}
	h.mustLogin(t, "admin", admin)

	// check: the user is there with its record.
	script, err := Check("pp-live", "req-pp-live")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePresence(h.mustProgram(t, script))
	if err != nil || !p.Present() {
		t.Errorf("check of pp-live: %+v, %v; want it present", p, err)
	}

	// extend: the record and the account's expiry move.
	later := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	script, err = Extend("pp-live", later)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.mustProgram(t, script); r.Fields["expires"] != strconv.FormatInt(later.Unix(), 10) {
		t.Errorf("extend reported %v", r.Fields)
	}

	// inventory: both users, as their records say.
	h.provision(t, grantFor(authority, "pp-gone", gone, false, time.Now().Add(time.Hour)))
	inv := h.mustProgram(t, Inventory())
	var names []string
	for _, u := range inv.Inventory {
		names = append(names, u.Username)
	}
	if strings.Join(names, ",") != "pp-gone,pp-live" {
		t.Errorf("inventory lists %v, want pp-gone and pp-live", names)
	}

	// collect: the live user's session comes over, compressed with zstd
	// where the release has it and with gzip where it has not (minbase
	// installs no zstd).
	if out, err := h.login("pp-live", live.signer, "echo collected-on-release"); err != nil {
		t.Fatalf("pp-live: %q, %v", out, err)
	}
	h.waitRecorded(t, "pp-live", "collected-on-release")
	_, stdout := h.collectStdout(t, Collection{Users: []string{"pp-live"}})
	want, compressor := gzipMagic, "gzip"
	if h.run(t, "command -v zstd").ExitCode == 0 {
		want, compressor = zstdMagic, "zstd"
	}
	headers, files := untar(t, stdout)
	var recorded bool
	for _, s := range sessionsIn(headers, "pp-live") {
		recorded = recorded || strings.Contains(files[s+"/stdout"]+files[s+"/ttyout"], "collected-on-release")
	}
	if !bytes.HasPrefix(stdout, want) || !recorded {
		t.Errorf("collect handed over %d bytes starting % x, with %v; want %s holding pp-live's session", len(stdout), stdout[:min(len(stdout), 4)], sessionsIn(headers, "pp-live"), compressor)
	}

	// revoke: the user, its files and its certificate are gone.
	h.revoke(t, Revocation{Username: "pp-gone", Serial: gone.serial, CAPublicKey: authority.public})
	if h.run(t, "id pp-gone").ExitCode == 0 || h.exists(t, "/home/pp-gone") {
		t.Error("pp-gone is still on the host after revoke")
	}
	h.refused(t, "pp-gone", gone.signer, "a revoked user")

	// sweep: an expired user goes, a live one stays.
	old := authority.issue(t, "pp-old")
	h.provision(t, grantFor(authority, "pp-old", old, false, time.Now().Add(-time.Minute)))
	sw := h.mustProgram(t, Sweep())
	if h.run(t, "id pp-old").ExitCode == 0 || sw.Fields["kept"] != "1" {
		t.Errorf("sweep: %v; want pp-old removed and pp-live kept", sw.Fields)
	}
	h.mustLogin(t, "pp-live", live.signer)
}
