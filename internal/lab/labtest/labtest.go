// Package labtest is what tests of many packages need from a lab: start
// one (skipping where sandbox hosts cannot boot), run a command as root on
// a host, and log in over SSH the way a person would be judged to: a
// login that works, a login that is refused.
package labtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// Start starts a lab with opts in a short temporary directory of its own
// (host agents' sockets live under it, and a socket path has 107 bytes),
// skipping the test where sandbox hosts cannot boot or under -short, and
// closes it when the test ends.
func Start(t testing.TB, opts lab.Options) *lab.Lab {
	t.Helper()
	if opts.Hosts > 0 {
		if err := sandbox.Available(); err != nil {
			t.Skip(err)
		}
		if testing.Short() {
			t.Skip("-short: sandbox host tests take tens of seconds each")
		}
	}
	dir, err := os.MkdirTemp("", "lab")
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// OnHost runs script as root on a sandbox host and wants exit 0; it
// returns the trimmed output.
func OnHost(t testing.TB, h *sandbox.Host, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.Run(ctx, node.Script{Document: fleet.ShellScript, Source: script, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("running %q on %s: %v", script, h.Info().InstanceID, err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("%q on %s exited %d: %s", script, h.Info().InstanceID, res.ExitCode, res.Stderr)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// HostKey is the host's SSH host key, which every login pins.
func HostKey(t testing.TB, h *sandbox.Host) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(OnHost(t, h, "cat /etc/ssh/ssh_host_ed25519_key.pub")))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Login runs command over SSH on h as user, authenticated by signer (a
// certificate signer for Passport users), and returns its trimmed output.
func Login(t testing.TB, h *sandbox.Host, user string, signer ssh.Signer, command string) (string, error) {
	t.Helper()
	key := HostKey(t, h)
	c, err := ssh.Dial("tcp", h.SSHAddr(), &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(key),
		HostKeyAlgorithms: []string{key.Type()},
		Timeout:           10 * time.Second,
	})
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

// MustLogIn fails the test unless user logs in to h and is user there.
func MustLogIn(t testing.TB, h *sandbox.Host, user string, signer ssh.Signer) {
	t.Helper()
	if got, err := Login(t, h, user, signer, "id -un"); err != nil || got != user {
		t.Fatalf("login to %s as %s: got %q, %v", h.Info().InstanceID, user, got, err)
	}
}

// MustBeRefused fails the test unless h refuses user's authentication.
func MustBeRefused(t testing.TB, h *sandbox.Host, user string, signer ssh.Signer, why string) {
	t.Helper()
	got, err := Login(t, h, user, signer, "id -un")
	if err == nil {
		t.Fatalf("%s: logged in to %s as %s (ran as %q)", why, h.Info().InstanceID, user, got)
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("%s: login failed, but not as an authentication refusal: %v", why, err)
	}
}

// CertSigner is the signer of a certificate (authorized_keys form) issued
// for key.
func CertSigner(t testing.TB, key ssh.Signer, certificate string) ssh.Signer {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(certificate))
	if err != nil {
		t.Fatal(err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		t.Fatalf("the certificate is a %T", pub)
	}
	s, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
