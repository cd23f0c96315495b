//go:build linux

package sandbox

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// user is a login created on a host by a Run Command script, as Passport
// creates them.
type user struct {
	name    string
	signer  ssh.Signer
	keyFile string // the private key in OpenSSH format, for the ssh client
}

func newUser(t *testing.T, name string) user {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return user{name: name, signer: signer, keyFile: keyFile}
}

// create adds the user with its key to the host, with the tools a real
// host has.
func (u user) create(t *testing.T, h *Host) {
	t.Helper()
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(u.signer.PublicKey())))
	sh(t, h, `set -e
useradd --create-home --shell /bin/sh `+u.name+`
install -d -m 700 -o `+u.name+` -g `+u.name+` /home/`+u.name+`/.ssh
printf '%s\n' '`+key+`' > /home/`+u.name+`/.ssh/authorized_keys
chown `+u.name+`: /home/`+u.name+`/.ssh/authorized_keys
chmod 600 /home/`+u.name+`/.ssh/authorized_keys`)
}

// hostKey is the host's own ed25519 host key, read from inside it.
func hostKey(t *testing.T, h *Host) ssh.PublicKey {
	t.Helper()
	line := sh(t, h, "cat /etc/ssh/ssh_host_ed25519_key.pub")
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("host key of %s: %v", h, err)
	}
	return key
}

// sshRun logs in with Go's SSH client over conn, pinning the host's key,
// and runs command.
func sshRun(conn net.Conn, addr string, u user, hostKey ssh.PublicKey, command string) (string, error) {
	return sshRunWith(conn, addr, u, hostKey, command, false)
}

func sshRunWith(conn net.Conn, addr string, u user, hostKey ssh.PublicKey, command string, pty bool) (string, error) {
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            u.name,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(u.signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
		// Ask for the pinned key's type, or the server may present another.
		HostKeyAlgorithms: []string{hostKey.Type()},
	})
	if err != nil {
		conn.Close()
		return "", err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	if pty {
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			return "", err
		}
	}
	out, err := s.Output(command)
	return strings.TrimSpace(string(out)), err
}

func goLogin(h *Host, u user, hostKey ssh.PublicKey) (string, error) {
	conn, err := net.DialTimeout("tcp", h.SSHAddr(), 10*time.Second)
	if err != nil {
		return "", err
	}
	return sshRun(conn, h.SSHAddr(), u, hostKey, "id -un")
}

// opensshLogin logs in with the OpenSSH client, as a person would.
func opensshLogin(t *testing.T, h *Host, u user) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("the OpenSSH client is not installed (openssh-client)")
	}
	host, port, _ := net.SplitHostPort(h.SSHAddr())
	cmd := exec.Command("ssh", "-i", u.keyFile,
		"-o", "UserKnownHostsFile="+filepath.Join(t.TempDir(), "known_hosts"),
		"-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
		"-p", port, u.name+"@"+host, "id -un")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: stderr.Bytes()}
	}
	return strings.TrimSpace(string(out)), nil
}

func TestUserCreatedByScriptLogsIn(t *testing.T) {
	a := bootHost(t, "web-a")
	b := bootHost(t, "web-b")
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	u := newUser(t, "pp-alice")
	u.create(t, a)

	t.Run("go client", func(t *testing.T) {
		got, err := goLogin(a, u, hostKey(t, a))
		if err != nil || got != u.name {
			t.Fatalf("login to %s as %s: got %q, %v", a.SSHAddr(), u.name, got, err)
		}
	})
	t.Run("openssh client", func(t *testing.T) {
		got, err := opensshLogin(t, a, u)
		if err != nil || got != u.name {
			t.Fatalf("ssh %s@%s: got %q, %v", u.name, a.SSHAddr(), got, err)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", a.SSHAddr(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sshRunWith(conn, a.SSHAddr(), u, hostKey(t, a), "tty", true)
		if err != nil || !strings.HasPrefix(got, "/dev/pts/") {
			t.Fatalf("a session with a terminal: tty says %q, %v", got, err)
		}
	})
	t.Run("not on the second host", func(t *testing.T) {
		if res := shResult(t, b, "id "+u.name); res.ExitCode == 0 {
			t.Errorf("%s exists on %s too: %s", u.name, b, res.Stdout)
		}
		if got, err := goLogin(b, u, hostKey(t, b)); err == nil {
			t.Errorf("%s logged in to %s, where it was never created (as %q)", u.name, b, got)
		}
	})
	t.Run("not on the machine", func(t *testing.T) {
		now, err := os.ReadFile("/etc/passwd")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(now, passwd) || bytes.Contains(now, []byte(u.name+":")) {
			t.Errorf("the machine's /etc/passwd changed while %s was created on a host", u.name)
		}
		if _, err := os.Stat("/home/" + u.name); err == nil {
			t.Errorf("/home/%s exists on the machine", u.name)
		}
	})
	t.Run("each host has its own host key", func(t *testing.T) {
		machine, err := os.ReadFile("/etc/ssh/ssh_host_ed25519_key.pub")
		ka, kb := hostKey(t, a), hostKey(t, b)
		if bytes.Equal(ka.Marshal(), kb.Marshal()) {
			t.Error("two hosts share an SSH host key")
		}
		if err == nil {
			if mk, _, _, _, err := ssh.ParseAuthorizedKey(machine); err == nil && bytes.Equal(mk.Marshal(), ka.Marshal()) {
				t.Error("the host uses the machine's SSH host key")
			}
		}
	})
}

func TestDialPortReachesSSHD(t *testing.T) {
	h := bootHost(t, "tunnel")
	u := newUser(t, "pp-tunnel")
	u.create(t, h)
	conn, err := h.DialPort(t.Context(), 22)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sshRun(conn, h.SSHAddr(), u, hostKey(t, h), "id -un")
	if err != nil || got != u.name {
		t.Fatalf("login through the agent's tunnel: got %q, %v", got, err)
	}
	if _, err := h.DialPort(t.Context(), 1); err == nil || !strings.Contains(err.Error(), "port 1") {
		t.Errorf("dialling a closed port: got %v, want an error naming the port", err)
	}
}

func TestSSHDIsSupervised(t *testing.T) {
	h := bootHost(t, "sshd")
	u := newUser(t, "pp-bob")
	u.create(t, h)
	key := hostKey(t, h)
	login := func() bool { got, err := goLogin(h, u, key); return err == nil && got == u.name }

	if got := sh(t, h, "sshd -t && echo valid"); got != "valid" {
		t.Errorf("sshd -t inside the host: %q", got)
	}
	before := sh(t, h, "cat /run/sshd.pid")
	sh(t, h, `kill -HUP "$(cat /run/sshd.pid)"`)
	eventually(t, "login after sshd reload", login)
	if after := sh(t, h, "cat /run/sshd.pid"); after != before {
		t.Errorf("reload changed sshd's pid from %s to %s; SIGHUP should re-exec in place", before, after)
	}

	sh(t, h, `kill "$(cat /run/sshd.pid)"`)
	eventually(t, "login after sshd was killed", login)
	if after := sh(t, h, "cat /run/sshd.pid"); after == before {
		t.Errorf("sshd still has pid %s after being killed", after)
	}
}

func TestBootReportsSSHDFailure(t *testing.T) {
	h := bootHost(t, "broken")
	sh(t, h, "echo 'NoSuchOption yes' > /etc/ssh/sshd_config.d/broken.conf")
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	err := h.Start(t.Context())
	if err == nil {
		t.Fatal("Start succeeded with a broken sshd_config")
	}
	t.Log(err)
	for _, want := range []string{h.cfg.InstanceID, "sshd", "NoSuchOption"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if h.Online() {
		t.Error("a host whose boot failed reports Online")
	}
}

func TestBootRefusesAddressInUse(t *testing.T) {
	needHosts(t)
	cfg := testConfig(t, "taken")
	ln, err := net.Listen("tcp", cfg.sshAddr())
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	_, err = Boot(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("Boot on an address in use: got %v, want an error saying it is in use", err)
	}
}
