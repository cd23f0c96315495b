//go:build linux

package sshca

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// TestOpenSSHAcceptsCertificates logs in to a real OpenSSH sshd (on a lab
// sandbox host) with certificates from every kind of CA: local and
// KMS-backed, every algorithm. sshd itself checks the CA signature, so this
// is the proof that OpenSSH accepts what we sign, ECDSA re-encoding and
// rsa-sha2-512 included.
func TestOpenSSHAcceptsCertificates(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skip("no sandbox host for a real sshd: ", err)
	}
	ctx := context.Background()
	client := labKMS(t)
	cas := map[string]*CA{}
	for _, alg := range Algorithms() {
		cas["state/"+string(alg)] = testCA(t, alg)
		kmsCA, err := CreateKMS(ctx, client, alg, KMSKeyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cas["kms/"+string(alg)] = kmsCA
	}
	untrusted, err := Generate(Ed25519)
	if err != nil {
		t.Fatal(err)
	}

	const user = "pp-certlogin"
	var trusted strings.Builder
	for name, ca := range cas {
		trusted.WriteString(ca.TrustedUserCAKeysLine(name))
	}
	host := bootHost(t)
	runOnHost(t, host, fmt.Sprintf(`set -eu
useradd -m -s /bin/sh %[1]s
usermod -p '*' %[1]s
cat > /etc/ssh/passport-test-cas.pub <<'CAS'
%[2]sCAS
printf 'TrustedUserCAKeys /etc/ssh/passport-test-cas.pub\n' > /etc/ssh/sshd_config.d/passport-test.conf
sshd -t
kill -HUP "$(cat /run/sshd.pid)"
`, user, trusted.String()))
	// sshd re-executes on SIGHUP, and a connection it accepted just before
	// is served with the old configuration: the tests begin once one login
	// with a trusted CA has worked.
	now := time.Now()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		_, err := loginAndRun(t, host.SSHAddr(), cas["state/ed25519"], user, user, now)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not trust the test CAs a minute after its reload: %v", err)
		}
	}

	for name, ca := range cas {
		t.Run(name, func(t *testing.T) {
			out, err := loginAndRun(t, host.SSHAddr(), ca, user, user, now)
			if err != nil {
				t.Fatalf("OpenSSH refused a certificate from CA %s: %v", name, err)
			}
			if strings.TrimSpace(out) != user {
				t.Errorf("logged in as %q, want %s", out, user)
			}
		})
	}
	refusals := []struct {
		name      string
		ca        *CA
		principal string
		start     time.Time
	}{
		{"untrusted CA", untrusted, user, now},
		{"principal for another user", cas["state/ed25519"], "pp-other", now},
		{"window over", cas["kms/ecdsa-p256"], user, now.Add(-2 * time.Hour)},
		{"window not begun", cas["kms/ed25519"], user, now.Add(5 * time.Minute)},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			_, err := loginAndRun(t, host.SSHAddr(), r.ca, r.principal, user, r.start)
			if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("login: %v, want sshd to refuse authentication", err)
			}
		})
	}
}

func bootHost(t *testing.T) *sandbox.Host {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	x := n.Int64()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := sandbox.Boot(ctx, sandbox.Config{
		Dir:        t.TempDir(),
		InstanceID: fmt.Sprintf("i-0ca0000000000%04x", x),
		Hostname:   "sshca-test",
		Address:    fmt.Sprintf("127.203.%d.%d", x>>8, 1+(x&0xff)%254),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func runOnHost(t *testing.T, h *sandbox.Host, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: script, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("host script exited %d:\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
}

// loginAndRun signs a one-hour certificate for principal starting at start,
// logs in to addr as user with it and runs id -un. sshd re-executes itself
// on SIGHUP, so a refused connection right after the reload is retried.
func loginAndRun(t *testing.T, addr string, ca *CA, principal, user string, start time.Time) (string, error) {
	t.Helper()
	config := certClientConfig(t, ca, user, func(r *CertRequest) {
		r.Username, r.ValidAfter, r.ValidBefore = principal, start, start.Add(time.Hour)
	})
	var (
		client *ssh.Client
		err    error
	)
	for attempt := 0; ; attempt++ {
		client, err = ssh.Dial("tcp", addr, config)
		if err == nil || attempt == 600 || !strings.Contains(err.Error(), "connection refused") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer session.Close()
	out, err := session.Output("id -un")
	return string(out), err
}
