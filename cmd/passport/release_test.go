package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/rootfs"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// TestLabUpWithReleases: passport lab up --release gives its hosts the
// releases asked for, in turn, each booting its own systemd where the
// machine allows it; Ctrl-C, or lab down after the lab was killed, leaves
// neither a host nor its cgroup behind.
func TestLabUpWithReleases(t *testing.T) {
	for _, r := range []string{"bookworm", "trixie"} {
		if _, err := rootfs.Find(rootfs.DefaultCache(), r); err != nil {
			t.Skip(err)
		}
	}
	cmd, dir, out := labUp(t, 3, "--service=false", "--release", "bookworm,trixie")
	s, err := lab.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Debian GNU/Linux 12", "Debian GNU/Linux 13", "Debian GNU/Linux 12"}
	for i, h := range s.Hosts {
		if h.Platform != want[i] || !strings.Contains(out.String(), h.InstanceID) {
			t.Errorf("host %d (%s) is %q, want %s, and shown in:\n%s", i, h.InstanceID, h.Platform, want[i], out)
		}
		if sandbox.SystemdAvailable() == nil {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(h.PID) + "/comm")
			if strings.TrimSpace(string(comm)) != "systemd" {
				t.Errorf("host %s's first process is %q, want systemd", h.InstanceID, comm)
			}
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if stdout, stderr, err := passportRun(t, "lab", "down", "--dir", dir); err != nil {
		t.Fatalf("lab down after a kill: %v\n%s%s", err, stdout, stderr)
	}
	for _, h := range s.Hosts {
		if running(h.PID) {
			t.Errorf("host %s (pid %d) still runs after lab down", h.InstanceID, h.PID)
		}
		for _, base := range []string{"/sys/fs/cgroup/unified/passport-sandbox/", "/sys/fs/cgroup/passport-sandbox/"} {
			if _, err := os.Stat(base + h.InstanceID); err == nil {
				t.Errorf("host %s left its cgroup %s", h.InstanceID, base+h.InstanceID)
			}
		}
	}
}
