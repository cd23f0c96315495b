//go:build linux

package sandbox

import (
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/rootfs"
)

// openSSH is the OpenSSH each release ships.
var openSSH = map[string]string{"bullseye": "OpenSSH_8.4", "bookworm": "OpenSSH_9.2", "trixie": "OpenSSH_10."}

// releaseRoot finds a release's built root filesystem, or skips saying
// how to build it (scripts/install.sh builds them all).
func releaseRoot(t *testing.T, release string) string {
	t.Helper()
	needHosts(t)
	root, err := rootfs.Find(rootfs.DefaultCache(), release)
	if err != nil {
		t.Skip(err)
	}
	return root
}

// TestReleaseHosts: a host boots from each release's own tree, with the
// lab's init or with the release's systemd as its first process, and is
// that release in every way a program would notice: its os-release, its
// OpenSSH, its schedulers, and a login through its sshd.
func TestReleaseHosts(t *testing.T) {
	for _, r := range rootfs.Releases {
		for _, withSystemd := range []bool{false, true} {
			name := r.Name
			if withSystemd {
				name += "/systemd"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				cfg := testConfig(t, r.Name)
				cfg.Root = releaseRoot(t, r.Name)
				cfg.Schedulers = true
				if withSystemd {
					if err := SystemdAvailable(); err != nil {
						t.Skip(err)
					}
					cfg.Systemd = true
				}
				h := bootConfig(t, cfg)
				if info := h.Info(); info.PlatformName != "Debian GNU/Linux" || info.PlatformVersion != r.Version {
					t.Errorf("the host reports %s %s, want Debian GNU/Linux %s", info.PlatformName, info.PlatformVersion, r.Version)
				}
				if v := sh(t, h, "ssh -V 2>&1"); !strings.HasPrefix(v, openSSH[r.Name]) {
					t.Errorf("ssh -V on %s: %q, want %s", r.Name, v, openSSH[r.Name])
				}
				// cron and atd run: a job queued with at is picked up.
				// at runs a job in the directory it was queued from: not the script's own,
				// which goes when the script ends.
				sh(t, h, "cd / && echo 'touch /var/tmp/at-ran' | at now 2>/dev/null")
				for deadline := time.Now().Add(time.Minute); shResult(t, h, "test -e /var/tmp/at-ran").ExitCode != 0; time.Sleep(100 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("the at job did not run on %s within a minute: atq says %q", r.Name, sh(t, h, "atq"))
					}
				}
				if out := sh(t, h, "pgrep -x cron >/dev/null && pgrep -x atd >/dev/null && echo both"); out != "both" {
					t.Errorf("cron and atd are not both running on %s", r.Name)
				}
				if withSystemd {
					if first := sh(t, h, "cat /proc/1/comm"); first != "systemd" {
						t.Errorf("the host's first process is %q, want systemd", first)
					}
					state := shResult(t, h, "systemctl is-system-running --wait")
					if got := strings.TrimSpace(string(state.Stdout)); got != "running" {
						failed := shResult(t, h, "systemctl --failed --no-pager")
						t.Errorf("systemctl is-system-running: %q\n%s", got, failed.Stdout)
					}
					if out := sh(t, h, "systemctl is-active ssh.service cron.service atd.service systemd-logind.service"); out != "active\nactive\nactive\nactive" {
						t.Errorf("units on %s:\n%s", r.Name, out)
					}
				}
				u := newUser(t, "release")
				u.create(t, h)
				if out, err := goLogin(h, u, hostKey(t, h)); err != nil || out != "release" {
					t.Errorf("login on %s: %q, %v", r.Name, out, err)
				}
			})
		}
	}
}
