//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

func TestRunResults(t *testing.T) {
	h := bootHost(t, "runner")
	sh(t, h, "mkdir -p /srv/app && echo here > /srv/app/marker")
	tests := []struct {
		name       string
		script     node.Script
		exitCode   int
		stdout     string // exact, after trimming
		stderrHas  string
		stdoutHas  string
		stdoutNot  string
		wantStderr bool
	}{
		{name: "stdout and exit 0", script: node.Script{Source: "echo hello; echo world"}, stdout: "hello\nworld"},
		{name: "stderr and exit code", script: node.Script{Source: "echo out; echo oops >&2; exit 3"}, exitCode: 3, stdout: "out", stderrHas: "oops"},
		{name: "failing command sets the code", script: node.Script{Source: "false"}, exitCode: 1},
		{name: "runs as root", script: node.Script{Source: "id -u"}, stdout: "0"},
		{name: "multi-line script", script: node.Script{Source: "x=4\nif [ $x -gt 3 ]; then\n  echo big\nfi"}, stdout: "big"},
		{name: "script killed by a signal", script: node.Script{Source: "kill -9 $$"}, exitCode: -1},
		{name: "minimal environment", script: node.Script{Source: "env | sort | cut -d= -f1 | tr '\\n' ' '"}, stdout: "AWS_SSM_INSTANCE_ID HOME PATH PWD"},
		{name: "instance id in the environment", script: node.Script{Source: "echo $AWS_SSM_INSTANCE_ID"}, stdout: h.cfg.InstanceID},
		{name: "per-command directory", script: node.Script{Source: "pwd"}, stdoutHas: "/var/lib/amazon/ssm/" + h.cfg.InstanceID + "/document/orchestration/"},
		{name: "working directory", script: node.Script{Source: "cat marker", WorkingDirectory: "/srv/app"}, stdout: "here"},
		{name: "missing working directory", script: node.Script{Source: "true", WorkingDirectory: "/nope"}, exitCode: 1, stderrHas: "/nope"},
		{name: "stdin is empty", script: node.Script{Source: "cat; echo done"}, stdout: "done"},
		{name: "powershell without pwsh", script: node.Script{Document: "AWS-RunPowerShellScript", Source: "Get-Date"}, exitCode: 1, stderrHas: "pwsh"},
		{name: "unknown document", script: node.Script{Document: "AWS-ConfigureDocker", Source: "true"}, exitCode: 1, stderrHas: "AWS-ConfigureDocker"},
		{name: "hostname", script: node.Script{Source: "hostname; cat /etc/hostname"}, stdout: "runner\nrunner"},
		{name: "sees only its own processes", script: node.Script{Source: "ps -e -o comm= | sort -u | tr '\\n' ' '"}, stdoutHas: "sshd", stdoutNot: "sandbox.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.script.Document == "" {
				tt.script.Document = "AWS-RunShellScript"
			}
			res, err := h.Run(t.Context(), tt.script)
			if err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSpace(string(res.Stdout))
			if res.ExitCode != tt.exitCode {
				t.Errorf("exit code %d, want %d (stderr %q)", res.ExitCode, tt.exitCode, res.Stderr)
			}
			if tt.stdout != "" && out != tt.stdout {
				t.Errorf("stdout %q, want %q", out, tt.stdout)
			}
			if !strings.Contains(out, tt.stdoutHas) {
				t.Errorf("stdout %q does not contain %q", out, tt.stdoutHas)
			}
			if tt.stdoutNot != "" && strings.Contains(out, tt.stdoutNot) {
				t.Errorf("stdout %q contains %q", out, tt.stdoutNot)
			}
			if !bytes.Contains(res.Stderr, []byte(tt.stderrHas)) {
				t.Errorf("stderr %q does not contain %q", res.Stderr, tt.stderrHas)
			}
			if res.TimedOut {
				t.Error("reported as timed out")
			}
		})
	}
}

// pidGone reports whether a pid inside the host no longer names a live
// process.
func pidGone(t *testing.T, h *Host, pid string) bool {
	res := shResult(t, h, "grep -q '^State:.*Z' /proc/"+pid+"/status 2>/dev/null || ! test -e /proc/"+pid)
	return res.ExitCode == 0
}

func TestRunTimeoutKillsTheScriptAndItsChildren(t *testing.T) {
	h := bootHost(t, "timeout")
	res, err := h.Run(t.Context(), node.Script{
		Document: "AWS-RunShellScript",
		Source:   "echo started\nsleep 300 &\necho $! > /root/child\nwait",
		Timeout:  300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != -1 {
		t.Errorf("got TimedOut %v, exit code %d; want true, -1", res.TimedOut, res.ExitCode)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != "started" {
		t.Errorf("output before the timeout was lost: stdout %q", got)
	}
	child := sh(t, h, "cat /root/child")
	eventually(t, "the script's sleep child is gone", func() bool { return pidGone(t, h, child) })
}

func TestRunCancelKillsTheScript(t *testing.T) {
	h := bootHost(t, "cancel")
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: "sleep 300 &\necho $! > /root/child\nwait"})
		errc <- err
	}()
	eventually(t, "the script started", func() bool { return shResult(t, h, "test -s /root/child").ExitCode == 0 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Run returned %v, want context.Canceled", err)
	}
	child := sh(t, h, "cat /root/child")
	eventually(t, "the cancelled script's child is gone", func() bool { return pidGone(t, h, child) })
}

func TestRunOutputIsCapped(t *testing.T) {
	h := bootHost(t, "chatty")
	res := shResult(t, h, "head -c 3000000 /dev/zero; head -c 2000000 /dev/zero >&2; echo finished > /root/done")
	if res.ExitCode != 0 {
		t.Fatalf("exit code %d: the script was blocked or killed by its own output", res.ExitCode)
	}
	if len(res.Stdout) != maxOutput || len(res.Stderr) != maxOutput {
		t.Errorf("kept %d bytes of stdout and %d of stderr, want %d each", len(res.Stdout), len(res.Stderr), maxOutput)
	}
	if got := sh(t, h, "cat /root/done"); got != "finished" {
		t.Errorf("the script did not run to its end: %q", got)
	}
}

// TestBackgroundChildDoesNotHoldTheResult: a script that leaves a child
// running (one that would run for a day) has its result as soon as it
// exits; a Run that waited for the child would meet shResult's deadline.
func TestBackgroundChildDoesNotHoldTheResult(t *testing.T) {
	h := bootHost(t, "daemon")
	res := shResult(t, h, "sleep 86400 >/dev/null 2>&1 & echo $! > /root/child; echo spawned")
	if got := strings.TrimSpace(string(res.Stdout)); got != "spawned" || res.ExitCode != 0 {
		t.Fatalf("got %q, exit %d", got, res.ExitCode)
	}
	if child := sh(t, h, "cat /root/child"); pidGone(t, h, child) {
		t.Error("the background child died with its script; it should outlive it, as on a real host")
	}
}

// TestInitReapsAndSurvives checks the init's duties as PID 1: orphans are
// reaped, and signals a script sends it do not power the host off.
func TestInitReapsAndSurvives(t *testing.T) {
	h := bootHost(t, "pid1")
	// Each subshell exits at once, leaving its sleep to the init.
	sh(t, h, "for i in 1 2 3 4 5; do (sleep 0.1 &); done")
	eventually(t, "no zombies in the host", func() bool {
		return sh(t, h, "ps -e -o stat= | grep -c '^Z' || true") == "0"
	})
	if got := sh(t, h, "kill -TERM 1; kill -INT 1; kill -HUP 1; kill -QUIT 1; sleep 0.2; echo alive"); got != "alive" {
		t.Errorf("after signalling PID 1: %q", got)
	}
	if !h.Online() {
		t.Fatal("signals sent to PID 1 inside the host powered it off")
	}
	sh(t, h, "true")
}

func TestStopAndStart(t *testing.T) {
	h := bootHost(t, "db-1")
	u := newUser(t, "pp-carol")
	u.create(t, h)
	sh(t, h, "echo scratch > /tmp/scratch; echo kept > /root/kept")
	key := hostKey(t, h)
	oldPID := h.PID()

	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if h.Online() {
		t.Error("Online after Stop")
	}
	if h.PID() != 0 {
		t.Errorf("PID %d after Stop, want 0", h.PID())
	}
	if _, err := h.Run(t.Context(), node.Script{Document: "AWS-RunShellScript", Source: "true"}); !errors.Is(err, node.ErrOffline) {
		t.Errorf("Run on a stopped host: %v, want node.ErrOffline", err)
	}
	if c, err := net.DialTimeout("tcp", h.SSHAddr(), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepts connections after Stop", h.SSHAddr())
	}
	if !gone("/proc/" + strconv.Itoa(oldPID)) {
		t.Errorf("the init (pid %d) survived Stop", oldPID)
	}

	h.mustStart(t)
	if !h.Online() {
		t.Fatal("not Online after Start")
	}
	if got, err := goLogin(h, u, key); err != nil || got != u.name {
		t.Errorf("after a restart, %s could not log in with the same host key: %q, %v", u.name, got, err)
	}
	if got := sh(t, h, "cat /root/kept; ls /tmp"); got != "kept" {
		t.Errorf("after a restart: /root should persist and /tmp be empty, got %q", got)
	}
}

func TestStopDuringRun(t *testing.T) {
	h := bootHost(t, "crash")
	errc := make(chan error, 1)
	go func() {
		_, err := h.Run(t.Context(), node.Script{Document: "AWS-RunShellScript", Source: "touch /root/running; sleep 300"})
		errc <- err
	}()
	eventually(t, "the script started", func() bool { return shResult(t, h, "test -e /root/running").ExitCode == 0 })
	h.Stop()
	if err := <-errc; !errors.Is(err, node.ErrOffline) {
		t.Errorf("Run interrupted by Stop: %v, want node.ErrOffline", err)
	}
}

func TestSetSlow(t *testing.T) {
	h := bootHost(t, "slow")
	// A slow host still runs scripts, once its delay has passed.
	h.SetSlow(300 * time.Millisecond)
	sh(t, h, "true")

	// The delay comes before the script: a caller that gives up during it
	// leaves nothing run.
	h.SetSlow(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: "touch /root/ran"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run on a host slower than the caller's deadline: %v", err)
	}
	h.SetSlow(0)
	if res := shResult(t, h, "test -e /root/ran"); res.ExitCode == 0 {
		t.Error("the script ran although the caller gave up during the delay")
	}
}

func TestInfo(t *testing.T) {
	h := bootHost(t, "info")
	got := h.Info()
	release := osRelease("/etc/os-release")
	want := node.Info{
		InstanceID:      h.cfg.InstanceID,
		ComputerName:    "info",
		IPAddress:       h.cfg.Address,
		PlatformType:    node.Linux,
		PlatformName:    release["NAME"],
		PlatformVersion: release["VERSION_ID"],
		AgentVersion:    AgentVersion,
	}
	if got.InstanceID != want.InstanceID || got.ComputerName != want.ComputerName || got.IPAddress != want.IPAddress ||
		got.PlatformType != want.PlatformType || got.PlatformName != want.PlatformName ||
		got.PlatformVersion != want.PlatformVersion || got.AgentVersion != want.AgentVersion || got.Tags["Name"] != "info" {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
	if got.PlatformName == "" || got.PlatformVersion == "" {
		t.Errorf("Info() has no platform: %+v", got)
	}
}

func TestKill(t *testing.T) {
	h := bootHost(t, "orphan")
	pid := h.PID()
	if err := Kill(pid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the lab sees the host down", func() bool { return !h.Online() })
	if err := Kill(pid); err != nil {
		t.Errorf("Kill of a host already gone: %v", err)
	}
	self := Kill(os.Getpid())
	if self == nil || !strings.Contains(self.Error(), "not a sandbox host init") {
		t.Errorf("Kill of the test process itself: %v, want a refusal", self)
	}
}

// TestHostDiesWithTheLab kills a lab process without warning and checks
// that the host it booted dies with it (Pdeathsig).
func TestHostDiesWithTheLab(t *testing.T) {
	if dir := os.Getenv("SANDBOX_TEST_LAB_DIR"); dir != "" {
		// The lab side: boot a host, say its init's pid, and wait to be killed.
		// No t.TempDir here: this process is killed before its cleanups run.
		cfg := Config{Dir: dir, InstanceID: randomInstanceID(), Hostname: "orphan", Address: randomAddress()}
		h, err := Boot(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("pid", h.PID())
		select {}
	}
	needHosts(t)
	lab := exec.Command(os.Args[0], "-test.run=^TestHostDiesWithTheLab$")
	lab.Env = append(os.Environ(), "SANDBOX_TEST_LAB_DIR="+t.TempDir())
	out, err := lab.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Start(); err != nil {
		t.Fatal(err)
	}
	defer lab.Wait()
	defer lab.Process.Kill()
	var pid int
	if _, err := fmt.Fscanf(out, "pid %d\n", &pid); err != nil {
		t.Fatalf("the lab process did not report a host: %v", err)
	}
	recordPID(pid)
	if gone("/proc/" + strconv.Itoa(pid)) {
		t.Fatalf("host init %d is not running", pid)
	}
	lab.Process.Kill()
	lab.Wait()
	eventually(t, "the host dies with its lab", func() bool { return gone("/proc/" + strconv.Itoa(pid)) })
	// What `passport lab down` does next: the init may linger as a zombie
	// nobody reaps, which must count as ended, not as a stranger.
	if err := Kill(pid); err != nil {
		t.Errorf("Kill after the lab died: %v", err)
	}
}

// TestMachineIsUntouched lets a host do what scripts on a real machine do,
// and some things they should not, and checks the machine saw none of it.
func TestMachineIsUntouched(t *testing.T) {
	needHosts(t)
	// A file of the machine's own, which the host sees through its overlay.
	probe, err := os.CreateTemp("/var/tmp", "sandbox-probe-")
	if err != nil {
		t.Fatal(err)
	}
	probe.WriteString("original\n")
	probe.Close()
	t.Cleanup(func() { os.Remove(probe.Name()) })
	before := snapshotMachine()

	h := bootHost(t, "vandal")
	sh(t, h, `set -e
useradd --create-home pp-mallory
echo 'pp-mallory:x' | chpasswd
groupadd pp-crew
mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAA' >> /root/.ssh/authorized_keys
echo '10.9.9.9 evil' >> /etc/hosts
hostname renamed
echo changed > `+probe.Name()+`
rm -f /etc/machine-id
mount -t tmpfs none /mnt
rm -f `+probe.Name()+`.gone; rm -f `+probe.Name())
	if got := sh(t, h, "id -un pp-mallory; hostname; test -e "+probe.Name()+" || echo probe-deleted"); got != "pp-mallory\nrenamed\nprobe-deleted" {
		t.Fatalf("the host did not see its own changes: %q", got)
	}
	h.Close()

	after := snapshotMachine()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("the machine's %s changed: %s", k, firstDifference(v, after[k]))
		}
	}
	if b, err := os.ReadFile(probe.Name()); err != nil || string(b) != "original\n" {
		t.Errorf("the machine's %s: %q, %v; want it untouched", probe.Name(), b, err)
	}
}

func TestOSRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "os-release")
	content := `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
# a comment
VERSION_ID="12"
ID=debian
HOME_URL='https://www.debian.org/'
broken line
`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got := osRelease(path)
	for k, want := range map[string]string{"NAME": "Debian GNU/Linux", "VERSION_ID": "12", "ID": "debian", "HOME_URL": "https://www.debian.org/"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if len(osRelease(filepath.Join(t.TempDir(), "missing"))) != 0 {
		t.Error("a missing os-release should give no fields")
	}
}

// TestHostSeesOnlyItsOwnState checks what the overlay shows of the machine:
// not the host's own state directory, not what the lab hides, and not the
// machine's /root, which a fresh host replaces with /etc/skel.
func TestHostSeesOnlyItsOwnState(t *testing.T) {
	needHosts(t)
	// Outside /tmp, which the host's own tmpfs would cover anyway.
	base, err := os.MkdirTemp("/var/tmp", "sandbox-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	secret := filepath.Join(base, "lab-secrets")
	if err := os.MkdirAll(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(secret, "key"), []byte("s3cr3t"), 0o600)
	visible := filepath.Join(base, "visible")
	os.WriteFile(visible, []byte("shown"), 0o644)

	cfg := testConfig(t, "nosy")
	cfg.Dir = filepath.Join(base, "h")
	cfg.Hidden = []string{secret}
	h := bootConfig(t, cfg)

	if got := sh(t, h, "cat "+visible); got != "shown" {
		t.Errorf("the host cannot see an ordinary machine file: %q", got)
	}
	if got := sh(t, h, "ls -A "+cfg.Dir+" "+secret+" | grep -v :; true"); got != "" {
		t.Errorf("the host sees hidden directories' contents: %q", got)
	}
	if got := sh(t, h, "ls /dev | grep -E '^(sd|vd|xvd|nvme|loop|mem|kmem|port)' || true"); got != "" {
		t.Errorf("the host sees the machine's devices: %q", got)
	}
	var skel []string
	entries, _ := os.ReadDir("/etc/skel")
	for _, e := range entries {
		if e.Type().IsRegular() {
			skel = append(skel, e.Name())
		}
	}
	if got, want := sh(t, h, "ls -A /root | sort | tr '\\n' ' '"), strings.Join(skel, " "); strings.TrimSpace(got) != want {
		t.Errorf("a fresh host's /root holds %q, want only /etc/skel's %q", got, want)
	}
}

// TestConcurrentRuns runs scripts side by side, as Run Command does on a
// busy host: each must get its own output and exit code back.
func TestConcurrentRuns(t *testing.T) {
	h := bootHost(t, "busy")
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			res, err := h.Run(t.Context(), node.Script{
				Document: "AWS-RunShellScript",
				Source:   fmt.Sprintf("sleep 0.1; echo %d; exit %d", i, i),
			})
			switch {
			case err != nil:
				errs <- err
			case strings.TrimSpace(string(res.Stdout)) != strconv.Itoa(i) || res.ExitCode != i:
				errs <- fmt.Errorf("script %d got stdout %q, exit %d", i, res.Stdout, res.ExitCode)
			default:
				errs <- nil
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestHostCannotReachTheMachinesKernel checks the guard rails against
// accidents: no device nodes, a read-only /proc/sys and no capabilities to
// change the machine's clock or network. (The change of a sysctl is probed
// where the machine allows it to root, so that the test can fail.)
func TestHostCannotReachTheMachinesKernel(t *testing.T) {
	h := bootHost(t, "guarded")
	var want uint64
	for _, c := range droppedCapabilities {
		want |= 1 << c.cap
	}
	for _, who := range []string{"a script", "an sshd session"} {
		var bnd string
		if who == "a script" {
			bnd = sh(t, h, "sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status")
		} else {
			bnd = sh(t, h, `sed -n 's/^CapBnd:[[:space:]]*//p' /proc/"$(cat /run/sshd.pid)"/status`)
		}
		got, err := strconv.ParseUint(bnd, 16, 64)
		if err != nil {
			t.Fatalf("CapBnd of %s: %q", who, bnd)
		}
		if got&want != 0 {
			t.Errorf("%s keeps capabilities it should not: CapBnd %x has %x", who, got, got&want)
		}
		if got&(1<<21) == 0 {
			t.Errorf("%s lost CAP_SYS_ADMIN (CapBnd %x); the host could not set its hostname", who, got)
		}
	}
	if res := shResult(t, h, "mknod /tmp/disk b 254 0"); res.ExitCode == 0 {
		t.Error("a script made a block device node")
	}
	// Writing back the value it already has: harmless should the guard fail.
	if res := shResult(t, h, `v=$(cat /proc/sys/vm/overcommit_ratio) && echo "$v" > /proc/sys/vm/overcommit_ratio`); res.ExitCode == 0 {
		t.Error("a script wrote to /proc/sys, the machine's sysctls")
	}
}
