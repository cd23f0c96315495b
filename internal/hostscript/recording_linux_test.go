//go:build linux

package hostscript

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/testterm"
	"github.com/passport-access/terraform-provider-passport/internal/testwait"
	"golang.org/x/crypto/ssh"
)

// interactive types input into a login shell on a terminal, as a person
// at a keyboard would, and returns what the terminal showed.
func (h *host) interactive(t *testing.T, user string, signer ssh.Signer, input string) string {
	t.Helper()
	return h.converse(t, user, signer, [2]string{"", input})
}

// converse runs a login shell on a terminal and, step by step, waits for
// the terminal to show step[0] and then types step[1]. The shell must end
// after the last step. It returns what the terminal showed.
func (h *host) converse(t *testing.T, user string, signer ssh.Signer, steps ...[2]string) string {
	t.Helper()
	c, err := h.dial(user, signer)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	defer c.Close()
	return testterm.Converse(t, c, steps...)
}

// openssh runs an OpenSSH tool (ssh, scp, sftp, rsync through ssh) as user
// with c, as a person would, and returns its output and error.
func (h *host) openssh(t *testing.T, user string, c credential, tool string, args ...string) (string, error) {
	t.Helper()
	addr, port, _ := net.SplitHostPort(h.SSHAddr())
	known := filepath.Join(t.TempDir(), "known_hosts")
	pattern := addr
	if port != "22" {
		pattern = "[" + addr + "]:" + port
	}
	if err := os.WriteFile(known, []byte(pattern+" "+string(ssh.MarshalAuthorizedKey(h.key))), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := []string{"-F", "none", "-i", c.keyFile, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + known,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	switch tool {
	case "ssh":
		cmd = exec.CommandContext(ctx, "ssh", append(append(opts, "-p", port, user+"@"+addr), args...)...)
	case "scp", "sftp":
		cmd = exec.CommandContext(ctx, tool, append(append(opts, "-P", port), args...)...)
	case "rsync":
		cmd = exec.CommandContext(ctx, "rsync", append([]string{"-e", "ssh " + strings.Join(opts, " ") + " -p " + port}, args...)...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// ansible runs one ad-hoc Ansible task on h as user, with OpenSSH, and
// returns its output.
func (h *host) ansible(t *testing.T, user string, c credential, args ...string) string {
	t.Helper()
	addr, port, _ := net.SplitHostPort(h.SSHAddr())
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte(addr+" "+string(ssh.MarshalAuthorizedKey(h.key))), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command("ansible", append([]string{"all", "-i", addr + ",", "-u", user, "--private-key", c.keyFile,
		"-e", "ansible_port=" + port, "-e", "ansible_python_interpreter=/usr/bin/python3"}, args...)...)
	cmd.Env = append(os.Environ(), "ANSIBLE_HOME="+home, "ANSIBLE_LOCAL_TEMP="+home, "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_SSH_ARGS=-F none -o IdentitiesOnly=yes -o UserKnownHostsFile="+known+" -o StrictHostKeyChecking=yes -o BatchMode=yes",
		"ANSIBLE_CONFIG="+filepath.Join(home, "none.cfg"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// sftpBatch runs the sftp client's batch of commands as user.
func (h *host) sftpBatch(t *testing.T, user string, c credential, batch string) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(file, []byte(batch), 0o600); err != nil {
		t.Fatal(err)
	}
	return h.openssh(t, user, c, "sftp", "-b", file, h.remote(user, ""))
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// remote names a path on h for scp, sftp and rsync.
func (h *host) remote(user, path string) string {
	addr, _, _ := net.SplitHostPort(h.SSHAddr())
	return user + "@" + addr + ":" + path
}

// recordings returns, for each of user's recorded sessions on h, every
// file of sudo's I/O log joined (log.json, stdin, stdout, stderr, ttyin,
// ttyout), read as root.
func (h *host) recordings(t *testing.T, user string) []string {
	t.Helper()
	out := h.sh(t, "cd "+RecordingsDir+"/"+user+" && for s in */; do printf '%s\\n' \"==session $s\"; cat \"$s\"log.json \"$s\"stdin \"$s\"stdout \"$s\"stderr \"$s\"ttyin \"$s\"ttyout; done")
	var sessions []string
	for _, s := range strings.Split(out, "==session ")[1:] {
		sessions = append(sessions, s)
	}
	return sessions
}

// waitRecorded waits until one of user's recordings holds every one of
// want: a session cut off from its client still runs to its end.
func (h *host) waitRecorded(t *testing.T, user string, want ...string) {
	t.Helper()
	testwait.Until(t, fmt.Sprintf("a recording of %s on %s holding all of %q", user, h, want), func() bool { return h.holds(t, user, want) })
}

// holds reports whether one of user's recordings holds every one of want.
func (h *host) holds(t *testing.T, user string, want []string) bool {
	t.Helper()
	for _, s := range h.recordings(t, user) {
		all := true
		for _, w := range want {
			all = all && strings.Contains(s, w)
		}
		if all {
			return true
		}
	}
	return false
}

// recorded fails unless one of user's recordings holds every one of want.
func (h *host) recorded(t *testing.T, user string, want ...string) {
	t.Helper()
	if !h.holds(t, user, want) {
		t.Errorf("no recording of %s on %s holds all of %q", user, h, want)
	}
}

// TestRecorder: every way a Passport user can use a host without sudo runs
// inside sudo's I/O log, which the user can neither stop, read, change nor
// step around, and file transfers still work.
func TestRecorder(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "rec")
	authority := newCA(t)
	alice := authority.issue(t, "pp-alice")
	r := h.provision(t, grantFor(authority, "pp-alice", alice, false, time.Now().Add(time.Hour)))
	if r.Fields["recording"] != "on" {
		t.Fatalf("provision on a host with sudo: recording=%s, want on", r.Fields["recording"])
	}

	t.Run("a terminal session is recorded, input and output", func(t *testing.T) {
		shown := h.interactive(t, "pp-alice", alice.signer, "echo typed-$((6*7))\nexit\n")
		if !strings.Contains(shown, "typed-42") {
			t.Fatalf("the shell did not run the command; it showed:\n%s", shown)
		}
		h.recorded(t, "pp-alice", `"ttyname": "/dev/pts/`, "echo typed-$((6*7))", "typed-42")
	})
	t.Run("a command without a terminal is recorded with its command line and output", func(t *testing.T) {
		if out, err := h.login("pp-alice", alice.signer, "echo plain-$((5*5))"); err != nil || out != "plain-25" {
			t.Fatalf("ssh pp-alice 'echo plain-$((5*5))': %q, %v", out, err)
		}
		h.recorded(t, "pp-alice", `"echo plain-$((5*5))"`, "plain-25")
	})
	t.Run("the user cannot kill the recorder", func(t *testing.T) {
		// The command's parent is the recording sudo, root's.
		out, _ := h.login("pp-alice", alice.signer, "kill -KILL $PPID; kill -STOP $PPID; echo still-recorded-$((1+1))")
		if strings.Count(out, "Operation not permitted") < 2 || !strings.Contains(out, "still-recorded-2") {
			t.Fatalf("killing the recorder from inside a session: %q; want refusals and the session going on", out)
		}
		h.recorded(t, "pp-alice", "kill -KILL $PPID", "still-recorded-2")
		// The first sudo, which sshd runs, has the user's real UID and can
		// be killed: that hangs the connection up, and what the session
		// does after is still recorded.
		h.login("pp-alice", alice.signer, "pkill -KILL -x sudo; echo after-pkill-$((2+2)) | tee ~/after")
		h.waitRecorded(t, "pp-alice", "pkill -KILL -x sudo", "after-pkill-4")
		if got := h.sh(t, "cat /home/pp-alice/after"); got != "after-pkill-4" {
			t.Errorf("the session did not go on after its first sudo was killed: %q", got)
		}
		waitOnHost(t, h, "the recording sudo to end", "! pgrep -u root -x sudo", nil)
	})
	t.Run("the user cannot read, write or remove recordings", func(t *testing.T) {
		for _, attempt := range []string{
			"ls " + RecordingsDir + "/pp-alice",
			"cat " + RecordingsDir + "/pp-alice/*/stdout",
			"touch " + RecordingsDir + "/pp-alice/forged",
			"rm -rf " + RecordingsDir + "/pp-alice",
			"mv /var/lib/passport /var/lib/gone",
			"echo x > " + SessionPath,
		} {
			if out, err := h.login("pp-alice", alice.signer, attempt+" && echo SUCCEEDED"); err == nil || strings.Contains(out, "SUCCEEDED") {
				t.Errorf("%s as pp-alice worked: %s", attempt, out)
			}
		}
		if n := h.sh(t, "ls "+RecordingsDir+"/pp-alice | wc -l"); n == "0" {
			t.Error("the recordings are gone")
		}
	})
	t.Run("sudo runs nothing else as the user and nothing as root", func(t *testing.T) {
		for _, attempt := range []string{"sudo -n -u pp-alice /bin/sh -c id", "sudo -n id", "sudo -n -u pp-alice -E " + SessionPath + " id"} {
			if out, err := h.login("pp-alice", alice.signer, attempt+" && echo SUCCEEDED"); err == nil || strings.Contains(out, "SUCCEEDED") {
				t.Errorf("%s as pp-alice worked: %s", attempt, out)
			}
		}
	})
	t.Run("forwarding, which no recorder sees, is refused", func(t *testing.T) {
		// Passport's certificates permit no forwarding; sshd refuses it
		// for Passport's group even to a certificate that does.
		forwarder := authority.issue(t, "pp-alice", "permit-port-forwarding", "permit-agent-forwarding", "permit-X11-forwarding")
		c, err := h.dial("pp-alice", forwarder.signer)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if conn, err := c.Dial("tcp", h.SSHAddr()); err == nil {
			conn.Close()
			t.Error("a local forward (ssh -N -L) opened through a recorded user")
		}
		if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
			l.Close()
			t.Error("a remote forward (ssh -N -R) opened for a recorded user")
		}
		// ssh -N that could forward would wait forever; the 30 s bound
		// only turns that into a failure.
		out, _ := h.openssh(t, "pp-alice", forwarder, "ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:22")
		if !strings.Contains(out, "forwarding failed") {
			t.Errorf("ssh -N -R as pp-alice: %q; want the forward refused", out)
		}
	})
	t.Run("the user's rc files and environment do not get around it", func(t *testing.T) {
		// ~/.ssh/rc would run before the forced command; a ~/.bashrc would
		// run before it if the account's shell were bash.
		if _, err := h.login("pp-alice", alice.signer, "mkdir -p ~/.ssh && echo 'touch /tmp/rc-ran' > ~/.ssh/rc && echo 'echo bashrc-ran >&2' > ~/.bashrc && echo 'echo profile-ran' > ~/.profile"); err != nil {
			t.Fatal(err)
		}
		defer h.login("pp-alice", alice.signer, "rm -f ~/.bashrc ~/.profile ~/.ssh/rc")
		out, err := h.openssh(t, "pp-alice", alice, "ssh", "-o", "SetEnv=LD_PRELOAD=/tmp/evil.so BASH_ENV=/tmp/evil", "-o", "SendEnv=LC_*",
			"echo env-$((3*3)); env")
		if err != nil || !strings.Contains(out, "env-9") {
			t.Fatalf("ssh with SetEnv: %q, %v", out, err)
		}
		if strings.Contains(out, "LD_PRELOAD") || strings.Contains(out, "BASH_ENV") {
			t.Errorf("variables the client set reached the session:\n%s", out)
		}
		if h.exists(t, "/tmp/rc-ran") {
			t.Error("~/.ssh/rc ran before the recorder")
		}
		// bash reads ~/.bashrc for a command sshd started, as without
		// Passport, and a login shell ~/.profile: both on the record.
		h.recorded(t, "pp-alice", "echo env-$((3*3))", "env-9", "bashrc-ran")
		shown := h.interactive(t, "pp-alice", alice.signer, "exit\n")
		if !strings.Contains(shown, "profile-ran") {
			t.Errorf("a terminal login did not run ~/.profile: %q", shown)
		}
		h.recorded(t, "pp-alice", `"ttyname"`, "profile-ran")
	})
	t.Run("a sudo grant is recorded too", func(t *testing.T) {
		root := authority.issue(t, "pp-root")
		h.provision(t, grantFor(authority, "pp-root", root, true, time.Now().Add(time.Hour)))
		shown := h.converse(t, "pp-root", root.signer, [2]string{"", "sudo -i\n"},
			[2]string{"root@", "echo as-$(id -un)-$((7*6))\n"}, [2]string{"as-root-42", "exit\n"},
			// Typed before the user's own shell is back, the last exit
			// could reach root's closing terminal instead.
			[2]string{"logout", ""}, [2]string{"$ ", "exit\n"})
		if !strings.Contains(shown, "as-root-42") {
			t.Fatalf("sudo -i did not run: %q", shown)
		}
		h.recorded(t, "pp-root", "sudo -i", "as-root-42")
	})
	t.Run("Ansible works and is recorded", func(t *testing.T) {
		if _, err := exec.LookPath("ansible"); err != nil {
			t.Fatal("ansible is not installed (scripts/install.sh installs Debian's ansible-core)")
		}
		h.ansible(t, "pp-alice", alice, "-m", "copy", "-a", "content=from-ansible dest=/home/pp-alice/by-ansible.txt")
		if got := h.sh(t, "cat /home/pp-alice/by-ansible.txt"); got != "from-ansible" {
			t.Errorf("Ansible's copy left %q", got)
		}
		if out := h.ansible(t, "pp-alice", alice, "-m", "command", "-a", "id -un"); !strings.Contains(out, "pp-alice") {
			t.Errorf("Ansible's command module: %s", out)
		}
		// Ansible sends its modules over sftp and runs them with python.
		h.recorded(t, "pp-alice", "sftp-server", "AnsiballZ_copy.py")
		h.recorded(t, "pp-alice", "python3", "AnsiballZ_command.py")
	})

	local := t.TempDir()
	upload := filepath.Join(local, "upload-report.txt")
	if err := os.WriteFile(upload, bytes.Repeat([]byte("payload line\n"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []struct {
		name, remoteName string
		tool             string
		args             []string
		server           string // what the recording shows running
	}{
		{"scp", "by-scp.txt", "scp", []string{upload, h.remote("pp-alice", "by-scp.txt")}, "sftp-server"},
		{"scp -O", "by-scp-legacy.txt", "scp", []string{"-O", upload, h.remote("pp-alice", "by-scp-legacy.txt")}, "scp -t"},
		{"sftp", "by-sftp.txt", "sftp", nil, "sftp-server"},
		{"rsync", "by-rsync.txt", "rsync", []string{"-a", upload, h.remote("pp-alice", "by-rsync.txt")}, "rsync --server"},
	} {
		t.Run(tr.name+" works and is recorded", func(t *testing.T) {
			var out string
			var err error
			if tr.tool == "sftp" {
				out, err = h.sftpBatch(t, "pp-alice", alice, "put "+upload+" "+tr.remoteName+"\nget "+tr.remoteName+" "+filepath.Join(local, "back.txt")+"\n")
			} else {
				out, err = h.openssh(t, "pp-alice", alice, tr.tool, tr.args...)
			}
			if err != nil {
				t.Fatalf("%s: %v\n%s", tr.name, err, out)
			}
			if got := h.sh(t, "sha256sum < /home/pp-alice/"+tr.remoteName); !strings.HasPrefix(got, fileSHA(t, upload)) {
				t.Errorf("%s: the file on the host differs from the one sent", tr.name)
			}
			h.recorded(t, "pp-alice", tr.server, tr.remoteName)
		})
	}
}

// TestHostThatCannotRecord: without sudo a host cannot record. A grant that
// requires recording is refused there with nothing changed; one that does
// not is granted, says so, and its user logs in as before.
func TestHostThatCannotRecord(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "norec")
	h.sh(t, "mv /usr/bin/sudo /usr/bin/sudo.away")
	authority := newCA(t)
	alice := authority.issue(t, "pp-alice")
	g := grantFor(authority, "pp-alice", alice, false, time.Now().Add(time.Hour))
	g.RequireRecording = true
	script, err := Provision(g)
	if err != nil {
		t.Fatal(err)
	}
	r, res := h.program(t, script)
	if r.Code != ExitRecording || r.Step != "recording" || !strings.Contains(string(res.Stderr), "sudo is not installed") {
		t.Fatalf("provision requiring recording without sudo: %+v\n%s; want exit %d naming sudo", r, res.Stderr, ExitRecording)
	}
	if h.exists(t, GrantsDir+"/pp-alice") || h.run(t, "id pp-alice").ExitCode == 0 {
		t.Error("a refused provision left the user or its grant record")
	}
	g.RequireRecording = false
	if r := h.provision(t, g); r.Fields["recording"] != "off" {
		t.Errorf("provision without sudo: recording=%s, want off", r.Fields["recording"])
	}
	h.mustLogin(t, "pp-alice", alice.signer)
	if h.exists(t, RecordingsDir) {
		t.Errorf("%s exists on a host that cannot record", RecordingsDir)
	}
}
