//go:build linux

package hostscript

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// These tests run the programs as Run Command would, as root on sandbox
// hosts with a real sshd, useradd, visudo and ssh-keygen, and judge them by
// what a person would notice: logins that work or are refused, users and
// processes that are gone.

type host struct {
	*sandbox.Host
	key ssh.PublicKey // its SSH host key, pinned by every login
}

func bootHost(t testing.TB, name string) *host {
	t.Helper()
	return boot(t, name, false)
}

// boot boots a host; schedulers runs cron and atd in it.
func boot(t testing.TB, name string, schedulers bool) *host {
	t.Helper()
	return bootWith(t, name, func(c *sandbox.Config) { c.Schedulers = schedulers })
}

// bootWith boots a host whose configuration set adjusts.
func bootWith(t testing.TB, name string, set func(*sandbox.Config)) *host {
	t.Helper()
	if testing.Short() {
		t.Skip("sandbox host tests take minutes on a busy machine; run without -short")
	}
	if err := sandbox.Available(); err != nil {
		t.Skip(err)
	}
	id := make([]byte, 9)
	rand.Read(id)
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<16))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := sandbox.Config{
		Dir:        t.TempDir(),
		InstanceID: "i-" + hex.EncodeToString(id)[:17],
		Hostname:   name,
		Address:    fmt.Sprintf("127.202.%d.%d", n.Int64()>>8, 1+n.Int64()&0xff%254),
	}
	set(&cfg)
	h, err := sandbox.Boot(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	hh := &host{Host: h}
	line := hh.sh(t, "cat /etc/ssh/ssh_host_ed25519_key.pub")
	if hh.key, _, _, _, err = ssh.ParseAuthorizedKey([]byte(line)); err != nil {
		t.Fatalf("host key of %s: %v", h, err)
	}
	return hh
}

func (h *host) run(t testing.TB, script string) node.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: script, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("running a script on %s: %v", h, err)
	}
	return res
}

// sh runs a test's own shell commands on the host and wants exit 0.
func (h *host) sh(t testing.TB, script string) string {
	t.Helper()
	res := h.run(t, script)
	if res.ExitCode != 0 {
		t.Fatalf("%q on %s exited %d: %s", script, h, res.ExitCode, res.Stderr)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// program runs a Passport program and returns its parsed result.
func (h *host) program(t testing.TB, script string) (Result, node.Result) {
	t.Helper()
	res := h.run(t, script)
	r, err := ParseResult(string(res.Stdout))
	if err != nil {
		t.Fatalf("on %s: %v (exit %d)\nstdout: %s\nstderr: %s", h, err, res.ExitCode, res.Stdout, res.Stderr)
	}
	if lines := strings.Count(strings.TrimSuffix(string(res.Stdout), "\n"), "\n") + 1; lines != 1 {
		t.Errorf("%s printed %d lines on stdout, want only its result line:\n%s", r.Action, lines, res.Stdout)
	}
	if r.OK != (res.ExitCode == 0) || (!r.OK && r.Code != res.ExitCode) {
		t.Errorf("result %+v disagrees with exit code %d", r, res.ExitCode)
	}
	return r, res
}

// mustProgram runs a Passport program and wants it to succeed.
func (h *host) mustProgram(t testing.TB, script string) Result {
	t.Helper()
	r, res := h.program(t, script)
	if !r.OK {
		t.Fatalf("on %s: %s failed in step %s (exit %d)\nstderr: %s", h, r.Action, r.Step, res.ExitCode, res.Stderr)
	}
	return r
}

func (h *host) provision(t testing.TB, g Grant) Result {
	t.Helper()
	script, err := Provision(g)
	if err != nil {
		t.Fatal(err)
	}
	return h.mustProgram(t, script)
}

func (h *host) revoke(t *testing.T, r Revocation) Result {
	t.Helper()
	script, err := Revoke(r)
	if err != nil {
		t.Fatal(err)
	}
	return h.mustProgram(t, script)
}

// exists reports whether path exists on the host.
func (h *host) exists(t *testing.T, path string) bool {
	t.Helper()
	return h.run(t, "test -e '"+path+"'").ExitCode == 0
}

// ca is a test certificate authority; the real one lives in package sshca.
type ca struct {
	signer ssh.Signer
	public string // authorized_keys form
}

func newCA(t testing.TB) ca {
	t.Helper()
	s := newKey(t)
	return ca{signer: s, public: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))}
}

func newKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// credential is a user key with a certificate, usable by Go's client and,
// through its files, by OpenSSH's.
type credential struct {
	signer  ssh.Signer // signs with the key, presents the certificate
	keyFile string     // private key; OpenSSH finds keyFile-cert.pub beside it
	serial  uint64
}

// issue signs a certificate for principal, valid from a minute ago for an
// hour, with permit-pty and any further extensions named.
func (c ca) issue(t testing.TB, principal string, extensions ...string) credential {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ssh.NewSignerFromKey(priv)
	serialBig, _ := rand.Int(rand.Reader, new(big.Int).SetUint64(1<<63))
	serial := serialBig.Uint64() + 1
	now := time.Now()
	cert := &ssh.Certificate{
		Key:             key.PublicKey(),
		Serial:          serial,
		CertType:        ssh.UserCert,
		KeyId:           "test:" + principal,
		ValidPrincipals: []string{principal},
		ValidAfter:      uint64(now.Add(-time.Minute).Unix()),
		ValidBefore:     uint64(now.Add(time.Hour).Unix()),
		Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	for _, e := range extensions {
		cert.Permissions.Extensions[e] = ""
	}
	if err := cert.SignCert(rand.Reader, c.signer); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(cert, key)
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
	if err := os.WriteFile(keyFile+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return credential{signer: signer, keyFile: keyFile, serial: serial}
}

// dial opens an SSH connection as user with signer, pinning the host key.
func (h *host) dial(user string, signer ssh.Signer) (*ssh.Client, error) {
	return ssh.Dial("tcp", h.SSHAddr(), &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(h.key),
		HostKeyAlgorithms: []string{h.key.Type()},
		Timeout:           10 * time.Second,
	})
}

// login runs command over SSH as user and returns its trimmed output.
func (h *host) login(user string, signer ssh.Signer, command string) (string, error) {
	c, err := h.dial(user, signer)
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(command)
	return strings.TrimSpace(string(out)), err
}

func (h *host) mustLogin(t *testing.T, user string, signer ssh.Signer) {
	t.Helper()
	if got, err := h.login(user, signer, "id -un"); err != nil || got != user {
		t.Fatalf("login to %s as %s: got %q, %v", h.SSHAddr(), user, got, err)
	}
}

func (h *host) refused(t *testing.T, user string, signer ssh.Signer, why string) {
	t.Helper()
	got, err := h.login(user, signer, "id -un")
	if err == nil {
		t.Fatalf("%s: logged in to %s as %s (ran as %q)", why, h.SSHAddr(), user, got)
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("%s: login failed, but not as an authentication refusal: %v", why, err)
	}
}

// opensshLogin logs in with the OpenSSH client, as a person would.
func (h *host) opensshLogin(t *testing.T, user string, c credential) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("the OpenSSH client is not installed (openssh-client)")
	}
	addr, port, _ := net.SplitHostPort(h.SSHAddr())
	known := filepath.Join(t.TempDir(), "known_hosts")
	pattern := addr
	if port != "22" {
		pattern = "[" + addr + "]:" + port
	}
	if err := os.WriteFile(known, []byte(pattern+" "+string(ssh.MarshalAuthorizedKey(h.key))), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh", "-F", "none", "-i", c.keyFile, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+known, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", port, user+"@"+addr, "id -un")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)), nil
}

// plainUser creates an ordinary account that logs in with authorized_keys,
// the way the host's own admins do, and returns its key.
func (h *host) plainUser(t testing.TB, name string) ssh.Signer {
	t.Helper()
	key := newKey(t)
	h.sh(t, "set -e\nuseradd -m -s /bin/sh "+name+"\ninstall -d -m 700 -o "+name+" -g "+name+" /home/"+name+"/.ssh\n"+
		"printf '%s\\n' '"+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey())))+"' > /home/"+name+"/.ssh/authorized_keys\n"+
		"chown "+name+": /home/"+name+"/.ssh/authorized_keys")
	return key
}

func grantFor(c ca, user string, cred credential, sudo bool, expires time.Time) Grant {
	return Grant{
		Username: user, RequestID: "req-" + user, Requester: "alice@example.com",
		CAPublicKey: c.public, ExpiresAt: expires, Sudo: sudo, Serial: cred.serial,
	}
}

func TestProvisionLogsIn(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "prov")
	authority := newCA(t)
	admin := h.plainUser(t, "admin")
	alice := authority.issue(t, "pp-alice")
	first := h.provision(t, grantFor(authority, "pp-alice", alice, false, time.Now().Add(time.Hour)))
	if first.Fields["sshd"] != "dropin" || first.Fields["reloaded"] != "sighup" {
		t.Errorf("first provision on Debian: %v; want the drop-in and an sshd reload", first.Fields)
	}

	t.Run("certificate logs in with Go's client", func(t *testing.T) {
		h.mustLogin(t, "pp-alice", alice.signer)
	})
	t.Run("certificate logs in with OpenSSH", func(t *testing.T) {
		if got, err := h.opensshLogin(t, "pp-alice", alice); err != nil || got != "pp-alice" {
			t.Fatalf("ssh pp-alice@%s: got %q, %v", h.SSHAddr(), got, err)
		}
	})
	t.Run("certificate for another principal is refused", func(t *testing.T) {
		h.refused(t, "pp-alice", authority.issue(t, "pp-bob").signer, "a certificate for pp-bob")
	})
	t.Run("certificate from another CA is refused", func(t *testing.T) {
		h.refused(t, "pp-alice", newCA(t).issue(t, "pp-alice").signer, "a certificate from an unknown CA")
	})
	t.Run("a key the user plants in authorized_keys is refused", func(t *testing.T) {
		planted := newKey(t)
		pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(planted.PublicKey())))
		if out, err := h.login("pp-alice", alice.signer, "mkdir -p ~/.ssh && echo '"+pub+"' > ~/.ssh/authorized_keys && chmod -R go-rwx ~/.ssh"); err != nil {
			t.Fatalf("planting a key: %v %s", err, out)
		}
		h.refused(t, "pp-alice", planted, "a key outside the certificate")
	})
	t.Run("no sudo unless granted", func(t *testing.T) {
		if out, err := h.login("pp-alice", alice.signer, "sudo -n true"); err == nil {
			t.Fatalf("sudo -n true worked without a grant: %s", out)
		}
		if h.exists(t, SudoersPrefix+"pp-alice") {
			t.Error("a sudoers drop-in exists without a grant")
		}
		// sudo lets the user run the recorder, and only that.
		if out := h.sh(t, "sudo -n -l -U pp-alice"); strings.Contains(out, "(ALL") || !strings.Contains(out, "(root) NOPASSWD: "+RecordPath) {
			t.Errorf("sudo -l for pp-alice without a grant:\n%s\nwant only the recorder", out)
		}
	})
	t.Run("sudo when granted", func(t *testing.T) {
		root := authority.issue(t, "pp-root")
		h.provision(t, grantFor(authority, "pp-root", root, true, time.Now().Add(time.Hour)))
		if out, err := h.login("pp-root", root.signer, "sudo -n id -u"); err != nil || out != "0" {
			t.Fatalf("sudo -n id -u as pp-root: %q, %v", out, err)
		}
		if mode := h.sh(t, "stat -c %a "+SudoersPrefix+"pp-root"); mode != "440" {
			t.Errorf("sudoers drop-in has mode %s, want 440", mode)
		}
		// Provisioning the same grant without sudo converges: sudo goes.
		h.provision(t, grantFor(authority, "pp-root", root, false, time.Now().Add(time.Hour)))
		if out, err := h.login("pp-root", root.signer, "sudo -n true"); err == nil {
			t.Errorf("sudo still works after the grant dropped it: %s", out)
		}
	})
	t.Run("other users log in exactly as before", func(t *testing.T) {
		h.mustLogin(t, "admin", admin)
		h.refused(t, "admin", authority.issue(t, "admin").signer, "a Passport certificate for a non-Passport user")
	})
	t.Run("provisioning again changes nothing", func(t *testing.T) {
		before := h.sh(t, "cat /etc/passwd /etc/ssh/sshd_config /etc/ssh/sshd_config.d/* "+GrantsDir+"/pp-alice; cat /run/sshd.pid")
		again := h.provision(t, grantFor(authority, "pp-alice", alice, false, time.Now().Add(time.Hour)))
		// The expiry moved by the seconds the test took, so only the
		// record may have been rewritten.
		for _, c := range again.Changed {
			if c != "grant-record" {
				t.Errorf("second provision changed %s", c)
			}
		}
		if again.Fields["reloaded"] != "no" {
			t.Errorf("second provision reloaded sshd (%s)", again.Fields["reloaded"])
		}
		after := h.sh(t, "cat /etc/passwd /etc/ssh/sshd_config /etc/ssh/sshd_config.d/* "+GrantsDir+"/pp-alice; cat /run/sshd.pid")
		if strip(before) != strip(after) {
			t.Errorf("the host changed:\n%s\n---\n%s", before, after)
		}
		h.mustLogin(t, "pp-alice", alice.signer)
	})
}

// strip drops the expires= line, which a later provision legitimately moves.
func strip(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "expires=") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestProvisionRefusesSomeoneElsesUser(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "conflict")
	authority := newCA(t)
	admin := h.plainUser(t, "admin")
	cred := authority.issue(t, "admin")
	script, _ := Provision(grantFor(authority, "admin", cred, true, time.Now().Add(time.Hour)))
	if r, _ := h.program(t, script); r.OK || r.Code != ExitConflict {
		t.Fatalf("provision over an existing admin account: %+v, want exit %d", r, ExitConflict)
	}
	script, _ = Revoke(Revocation{Username: "admin"})
	if r, _ := h.program(t, script); r.OK || r.Code != ExitConflict {
		t.Fatalf("revoke of a non-Passport account: %+v, want exit %d", r, ExitConflict)
	}
	h.mustLogin(t, "admin", admin)
	if h.exists(t, SudoersPrefix+"admin") || h.exists(t, GrantsDir+"/admin") {
		t.Error("Passport left files for an account it refused")
	}
}

// TestForeignPassportGroup: a group named passport that Passport did not
// create is someone else's; its members must not be switched to
// certificate-only logins.
func TestForeignPassportGroup(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "group")
	admin := h.plainUser(t, "admin")
	h.sh(t, "groupadd passport && usermod -aG passport admin")
	authority := newCA(t)
	script, _ := Provision(grantFor(authority, "pp-x", authority.issue(t, "pp-x"), false, time.Now().Add(time.Hour)))
	if r, _ := h.program(t, script); r.Code != ExitConflict {
		t.Fatalf("provision beside a foreign passport group: %+v, want exit %d", r, ExitConflict)
	}
	script, _ = Revoke(Revocation{Username: "admin"})
	if r, _ := h.program(t, script); r.Code != ExitConflict {
		t.Fatalf("revoke of a member of a foreign passport group: %+v, want exit %d", r, ExitConflict)
	}
	if r := h.mustProgram(t, Inventory()); len(r.Inventory) != 0 {
		t.Errorf("inventory counts a foreign group's members as Passport users: %+v", r.Inventory)
	}
	h.mustLogin(t, "admin", admin)
	if h.exists(t, SSHDDropIn) || h.run(t, "id pp-x").ExitCode == 0 {
		t.Error("provision changed the host anyway")
	}
}

func TestExtendMovesExpiry(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "extend")
	authority := newCA(t)
	cred := authority.issue(t, "pp-ext")
	start := time.Now().Truncate(time.Second)
	h.provision(t, grantFor(authority, "pp-ext", cred, false, start.Add(time.Hour)))
	later := start.Add(50 * time.Hour)
	script, err := Extend("pp-ext", later)
	if err != nil {
		t.Fatal(err)
	}
	r := h.mustProgram(t, script)
	if r.Fields["expires"] != strconv.FormatInt(later.Unix(), 10) {
		t.Errorf("extend reported %v", r.Fields)
	}
	if got := h.sh(t, "sed -n 's/^expires=//p' "+GrantsDir+"/pp-ext"); got != strconv.FormatInt(later.Unix(), 10) {
		t.Errorf("grant record expires=%s, want %d", got, later.Unix())
	}
	wantDay := (later.Unix() + 86399) / 86400
	if got := h.sh(t, "getent shadow pp-ext | cut -d: -f8"); got != strconv.FormatInt(wantDay, 10) {
		t.Errorf("account expiry day %s, want %d", got, wantDay)
	}
	h.mustLogin(t, "pp-ext", cred.signer)

	script, _ = Extend("pp-nobody", later)
	if r, _ := h.program(t, script); r.Code != ExitNotFound {
		t.Errorf("extend of a user that is not there: %+v, want exit %d", r, ExitNotFound)
	}
}

func TestRevokeRemovesEverything(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "revoke")
	authority := newCA(t)
	cred := authority.issue(t, "pp-gone")
	h.provision(t, grantFor(authority, "pp-gone", cred, true, time.Now().Add(time.Hour)))
	uid := h.sh(t, "id -u pp-gone")

	// A session the user left running: revoke must end it.
	client, err := h.dial("pp-gone", cred.signer)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// Its first command leaves a root process behind through sudo, detached
	// from everything the user runs: it belongs to the user's session all
	// the same and must end with it.
	if err := session.Start("sudo -n sh -c 'setsid sleep 1001 </dev/null >/dev/null 2>&1 &'; sleep 1000"); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- session.Wait() }()
	for deadline := time.Now().Add(time.Minute); h.run(t, "pgrep -u "+uid+" -x sleep && pgrep -u 0 -f 'sleep 1001'").ExitCode != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the user's sleeps never started")
		}
		time.Sleep(50 * time.Millisecond)
	}

	r := h.revoke(t, Revocation{Username: "pp-gone", Serial: cred.serial, CAPublicKey: authority.public})
	if r.Fields["removed"] != "yes" || r.Fields["revoked_serial"] != strconv.FormatUint(cred.serial, 10) {
		t.Errorf("revoke reported %v", r.Fields)
	}
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Error("the user's SSH session is still open after revoke")
	}
	if h.run(t, "id pp-gone").ExitCode == 0 {
		t.Error("the user still exists")
	}
	if out := h.run(t, "pgrep -u "+uid); out.ExitCode == 0 {
		t.Errorf("processes of uid %s survive: %s", uid, out.Stdout)
	}
	if out := h.run(t, "pgrep -af 'sleep 1001'"); out.ExitCode == 0 {
		t.Errorf("the root process the user started with sudo survives: %s", out.Stdout)
	}
	for _, path := range []string{"/home/pp-gone", PrincipalsDir + "/pp-gone", SudoersPrefix + "pp-gone", GrantsDir + "/pp-gone"} {
		if h.exists(t, path) {
			t.Errorf("%s is still there", path)
		}
	}
	h.refused(t, "pp-gone", cred.signer, "a revoked user")

	t.Run("again on a clean host", func(t *testing.T) {
		r := h.revoke(t, Revocation{Username: "pp-gone", Serial: cred.serial, CAPublicKey: authority.public})
		if r.Fields["removed"] != "no" {
			t.Errorf("second revoke reported %v", r.Fields)
		}
	})
	t.Run("revoked certificate stays refused for a recreated user", func(t *testing.T) {
		fresh := authority.issue(t, "pp-gone")
		h.provision(t, grantFor(authority, "pp-gone", fresh, false, time.Now().Add(time.Hour)))
		h.mustLogin(t, "pp-gone", fresh.signer)
		h.refused(t, "pp-gone", cred.signer, "a revoked certificate")
	})
}

// TestHostWithoutInclude is an older kind of host: sshd_config reads no
// drop-ins, and sshd runs without PAM, so it checks the shadow entry itself
// and would refuse a '!'-locked account even with a valid certificate.
func TestHostWithoutInclude(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "noinclude")
	h.sh(t, `set -e
sed -i '/^Include /d; s/^UsePAM yes/UsePAM no/' /etc/ssh/sshd_config
! grep -qi '^include' /etc/ssh/sshd_config
grep -qx 'UsePAM no' /etc/ssh/sshd_config
# A last line without its newline must not swallow Passport's block.
printf '%s' "$(cat /etc/ssh/sshd_config)" > /etc/ssh/sshd_config.new
mv /etc/ssh/sshd_config.new /etc/ssh/sshd_config
kill -HUP "$(cat /run/sshd.pid)"`)
	admin := h.plainUser(t, "admin")
	// Such a host's own users cannot have a '!' password either.
	h.sh(t, "usermod -p '*' admin")
	authority := newCA(t)
	cred := authority.issue(t, "pp-old")
	r := h.provision(t, grantFor(authority, "pp-old", cred, false, time.Now().Add(time.Hour)))
	if r.Fields["sshd"] != "inline" {
		t.Errorf("provision used %q, want the inline block in sshd_config", r.Fields["sshd"])
	}
	h.mustLogin(t, "pp-old", cred.signer)
	h.mustLogin(t, "admin", admin)
	h.refused(t, "admin", authority.issue(t, "admin").signer, "a Passport certificate for a non-Passport user")
	again := h.provision(t, grantFor(authority, "pp-old", cred, false, time.Now().Add(time.Hour)))
	if again.Fields["reloaded"] != "no" {
		t.Errorf("second provision reloaded sshd: %v", again.Fields)
	}
	if n := h.sh(t, "grep -c 'Match Group passport' /etc/ssh/sshd_config"); n != "1" {
		t.Errorf("sshd_config holds %s Passport blocks, want 1", n)
	}
	if h.run(t, "grep -Eqx 'Subsystem[[:space:]]+sftp[[:space:]]+/usr/lib/openssh/sftp-server' /etc/ssh/sshd_config").ExitCode != 0 {
		t.Errorf("the last line of sshd_config was changed:\n%s", h.sh(t, "tail -n 15 /etc/ssh/sshd_config"))
	}
}

func TestBrokenSSHDConfigIsLeftAlone(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "broken")
	h.sh(t, "echo 'NoSuchKeyword yes' >> /etc/ssh/sshd_config")
	before := h.sh(t, "cat /etc/ssh/sshd_config; ls /etc/ssh/sshd_config.d")
	authority := newCA(t)
	script, _ := Provision(grantFor(authority, "pp-x", authority.issue(t, "pp-x"), false, time.Now().Add(time.Hour)))
	r, res := h.program(t, script)
	if r.Code != ExitSSHD || r.Step != "preflight" || !strings.Contains(string(res.Stderr), "sshd -t") {
		t.Fatalf("provision on a host with a broken sshd_config: %+v %s", r, res.Stderr)
	}
	if after := h.sh(t, "cat /etc/ssh/sshd_config; ls /etc/ssh/sshd_config.d"); after != before {
		t.Errorf("sshd's configuration changed:\n%s", after)
	}
	if h.run(t, "id pp-x").ExitCode == 0 {
		t.Error("the user was created anyway")
	}
}

// TestSweepRemovesOnlyExpiredUsers runs the sweep exactly as the cron entry
// provision installed runs it (its command, cron's environment, --cron,
// output thrown away) and judges that run alone: the expired user and its
// certificate are gone, the live user and an account of the host's own
// still log in. Then a sweep by hand finds nothing left to do.
func TestSweepRemovesOnlyExpiredUsers(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "sweep")
	authority := newCA(t)
	admin := h.plainUser(t, "admin")
	old := authority.issue(t, "pp-old")
	live := authority.issue(t, "pp-live")
	h.provision(t, grantFor(authority, "pp-old", old, true, time.Now().Add(-time.Minute)))
	h.provision(t, grantFor(authority, "pp-live", live, false, time.Now().Add(time.Hour)))
	if !h.exists(t, "/etc/cron.d/passport-sweep") || !h.exists(t, SweepPath) {
		t.Fatal("provision did not schedule the on-host sweep")
	}
	// The installed copy is what cron runs; it must be the program itself.
	if got := h.sh(t, "cat "+SweepPath); got != strings.TrimSpace(Sweep()) {
		t.Error("the installed sweep differs from Sweep()")
	}
	entry := cronEntry(t, h.sh(t, "cat /etc/cron.d/passport-sweep"))
	if !strings.Contains(entry, SweepPath+" --cron") {
		t.Fatalf("the cron entry %q does not run %s --cron", entry, SweepPath)
	}
	cron := h.run(t, "env -i SHELL=/bin/sh PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LOGNAME=root /bin/sh -c '"+entry+"'")
	if cron.ExitCode != 0 {
		t.Fatalf("the cron entry's command exited %d: %s", cron.ExitCode, cron.Stderr)
	}
	if h.run(t, "id pp-old").ExitCode == 0 || h.exists(t, "/home/pp-old") || h.exists(t, SudoersPrefix+"pp-old") {
		t.Error("the expired user is still there after the cron run")
	}
	if krl := h.sh(t, "ssh-keygen -Q -l -f "+RevokedKeys); !strings.Contains(krl, "serial: "+strconv.FormatUint(old.serial, 10)) {
		t.Errorf("the swept user's serial is not in the KRL:\n%s", krl)
	}
	if _, err := h.login("pp-old", old.signer, "true"); err == nil {
		t.Error("the expired user's certificate still logs in")
	}
	h.mustLogin(t, "pp-live", live.signer)
	h.mustLogin(t, "admin", admin)

	again := h.mustProgram(t, Sweep())
	if len(again.Removed) != 0 || again.Fields["kept"] != "1" {
		t.Errorf("a sweep by hand after the cron run: %v, want nothing removed and one kept", again.Fields)
	}
}

// cronEntry returns the command of the one job in an /etc/cron.d file.
func cronEntry(t *testing.T, file string) string {
	t.Helper()
	var jobs []string
	for _, line := range strings.Split(file, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "=") {
			continue
		}
		if f[5] != "root" {
			t.Fatalf("the cron job %q does not run as root", line)
		}
		jobs = append(jobs, strings.Join(f[6:], " "))
	}
	if len(jobs) != 1 || strings.Contains(jobs[0], "'") {
		t.Fatalf("want one cron job without quotes, got %q in:\n%s", jobs, file)
	}
	return jobs[0]
}

// TestSSHDChangeThatDoesNotApplyIsUndone: a site drop-in that sorts before
// Passport's and sets TrustedUserCAKeys for everyone wins over Passport's
// Match block. Provision must notice, put sshd's files back and fail loudly.
func TestSSHDChangeThatDoesNotApplyIsUndone(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "override")
	h.sh(t, "printf 'Match all\\n\\tTrustedUserCAKeys /etc/ssh/site-ca.pub\\n' > /etc/ssh/sshd_config.d/05-site.conf")
	admin := h.plainUser(t, "admin")
	before := h.sh(t, "cat /etc/ssh/sshd_config; ls /etc/ssh/sshd_config.d")
	authority := newCA(t)
	script, _ := Provision(grantFor(authority, "pp-x", authority.issue(t, "pp-x"), false, time.Now().Add(time.Hour)))
	r, res := h.program(t, script)
	if r.Code != ExitSSHD || r.Step != "sshd-verify" {
		t.Fatalf("provision under an overriding site drop-in: %+v\n%s", r, res.Stderr)
	}
	if after := h.sh(t, "cat /etc/ssh/sshd_config; ls /etc/ssh/sshd_config.d"); after != before {
		t.Errorf("sshd's configuration was not restored:\n%s\nwas:\n%s", after, before)
	}
	h.mustLogin(t, "admin", admin)
}

// TestConcurrentProvisions: Run Command may deliver several requests to one
// host at once, and the host lock serialises them. The test holds the lock
// itself: every provision must wait for it with nothing changed, and once
// the lock is let go all of them finish and every user logs in.
func TestConcurrentProvisions(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "concurrent")
	authority := newCA(t)
	h.sh(t, "mkfifo /run/release && setsid flock "+LockFile+" sh -c 'touch /run/held; read x </run/release' >/dev/null 2>&1 </dev/null &")
	waitOnHost(t, h, "the test to hold the host lock", "test -e /run/held", nil)

	names := []string{"pp-one", "pp-two", "pp-three"}
	creds := make([]credential, len(names))
	results := make(chan error, len(names))
	for i, name := range names {
		creds[i] = authority.issue(t, name)
		script, err := Provision(grantFor(authority, name, creds[i], false, time.Now().Add(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: script})
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("provision %s exited %d: %s", name, res.ExitCode, res.Stderr)
			}
			results <- err
		}()
	}
	// A provision that ends now did not wait for the lock.
	waitOnHost(t, h, "all three provisions to wait for the host lock",
		fmt.Sprintf(`[ "$(pgrep -c -f '^flock -w')" -ge %d ]`, len(names)), results)
	for _, name := range names {
		if h.run(t, "id "+name).ExitCode == 0 {
			t.Errorf("%s exists while the host lock is held by someone else", name)
		}
	}

	h.sh(t, "echo go >/run/release")
	for range names {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	for i, name := range names {
		h.mustLogin(t, name, creds[i].signer)
	}
}

// waitOnHost polls until the shell test cond succeeds on h, for at most a
// minute; a value on ended (a program that finished early) fails the test.
func waitOnHost(t *testing.T, h *host, what, cond string, ended <-chan error) {
	t.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for h.run(t, cond).ExitCode != 0 {
		select {
		case err := <-ended:
			t.Fatalf("waiting for %s, a program ended (%v)", what, err)
		case <-deadline:
			t.Fatalf("gave up waiting a minute for %s", what)
		case <-tick.C:
		}
	}
}

// TestSystemdTimer: where systemd is init, the sweep is scheduled with a
// timer instead of cron. Sandbox hosts have no systemd, so systemctl is a
// recorder here; the unit files it would load are checked by systemd's own
// systemd-analyze verify.
func TestSystemdTimer(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (package systemd)")
	}
	h := bootHost(t, "systemd")
	h.sh(t, `set -e
mkdir -p /run/systemd/system
cat > /usr/local/sbin/systemctl <<'EOF2'
#!/bin/sh
echo "$*" >> /run/systemctl.calls
[ "$1" = is-active ] && exit 3
exit 0
EOF2
chmod 755 /usr/local/sbin/systemctl`)
	authority := newCA(t)
	cred := authority.issue(t, "pp-timer")
	r := h.provision(t, grantFor(authority, "pp-timer", cred, false, time.Now().Add(time.Hour)))
	if r.Fields["sweeper"] != "systemd" || r.Fields["reloaded"] != "sighup" {
		t.Errorf("provision under systemd reported %v; want sweeper=systemd and a SIGHUP when ssh.service is not active", r.Fields)
	}
	calls := h.sh(t, "cat /run/systemctl.calls")
	for _, want := range []string{"daemon-reload", "enable --now passport-sweep.timer"} {
		if !strings.Contains(calls, want) {
			t.Errorf("systemctl was not asked to %s; calls:\n%s", want, calls)
		}
	}
	if h.exists(t, "/etc/cron.d/passport-sweep") {
		t.Error("a cron entry was installed beside the timer")
	}
	out := h.run(t, "systemd-analyze verify /etc/systemd/system/passport-sweep.timer /etc/systemd/system/passport-sweep.service 2>&1")
	if out.ExitCode != 0 {
		t.Errorf("systemd-analyze verify: exit %d\n%s", out.ExitCode, out.Stdout)
	}
	h.mustLogin(t, "pp-timer", cred.signer)
}

func TestInventory(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "inventory")
	authority := newCA(t)
	h.plainUser(t, "admin")
	live := time.Now().Add(time.Hour).Truncate(time.Second)
	h.provision(t, grantFor(authority, "pp-live", authority.issue(t, "pp-live"), false, live))
	h.provision(t, grantFor(authority, "pp-gone", authority.issue(t, "pp-gone"), false, live))
	// What a crash or a hand at the keyboard can leave behind.
	h.sh(t, "userdel -r pp-gone && useradd -G passport pp-bare")
	r := h.mustProgram(t, Inventory())
	want := []HostUser{
		{Username: "pp-bare", HasUser: true},
		{Username: "pp-gone", ExpiresAt: live, HasRecord: true},
		{Username: "pp-live", ExpiresAt: live, HasUser: true, HasRecord: true},
	}
	if fmt.Sprint(r.Inventory) != fmt.Sprint(want) || r.Truncated || r.Fields["count"] != "3" {
		t.Errorf("inventory = %+v (%v)\nwant %+v", r.Inventory, r.Fields, want)
	}
}
