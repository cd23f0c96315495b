package sshca

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// checkCert asserts what sshd would: the certificate is signed by ca and
// lets principal log in at time now.
func checkCert(t *testing.T, ca *CA, cert *ssh.Certificate, principal string, now time.Time) {
	t.Helper()
	if err := login(ca, cert, principal, "127.0.0.1", now); err != nil {
		t.Fatalf("certificate refused for %s at %s: %v", principal, now, err)
	}
}

// login runs x/crypto/ssh's server-side certificate check, the same one an
// x/crypto/ssh server runs at public key authentication: trusted CA,
// principal, validity, source-address.
func login(ca *CA, cert *ssh.Certificate, user, from string, now time.Time) error {
	_, err := certChecker(ca, now).Authenticate(connFrom{user, from}, cert)
	return err
}

type connFrom struct{ user, addr string }

func (c connFrom) User() string          { return c.user }
func (c connFrom) SessionID() []byte     { return nil }
func (c connFrom) ClientVersion() []byte { return []byte("SSH-2.0-test") }
func (c connFrom) ServerVersion() []byte { return []byte("SSH-2.0-test") }
func (c connFrom) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: net.ParseIP(c.addr), Port: 50000} }
func (c connFrom) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22} }

func certChecker(ca *CA, now time.Time) *ssh.CertChecker {
	return &ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool {
			return bytes.Equal(auth.Marshal(), ca.PublicKey().Marshal())
		},
		Clock: func() time.Time { return now },
	}
}

func TestSignCertificate(t *testing.T) {
	wantFormat := map[Algorithm]string{
		Ed25519:   ssh.KeyAlgoED25519,
		ECDSAP256: ssh.KeyAlgoECDSA256,
		ECDSAP384: ssh.KeyAlgoECDSA384,
		RSA4096:   ssh.KeyAlgoRSASHA512,
	}
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			ca := testCA(t, alg)
			req := validRequest(t)
			cert, err := ca.Sign(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := cert.Signature.Format; got != wantFormat[alg] {
				t.Fatalf("signature format %q, want %q", got, wantFormat[alg])
			}
			// Parse the wire form again: what a host receives, not our struct.
			parsed, err := ssh.ParsePublicKey(cert.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			cert = parsed.(*ssh.Certificate)
			if cert.Signature.Format != wantFormat[alg] {
				t.Fatalf("parsed signature format %q", cert.Signature.Format)
			}
			if cert.CertType != ssh.UserCert {
				t.Errorf("CertType = %d, want user", cert.CertType)
			}
			if !reflect.DeepEqual(cert.ValidPrincipals, []string{req.Username}) {
				t.Errorf("principals = %q", cert.ValidPrincipals)
			}
			if got, want := cert.ValidAfter, uint64(windowStart.Add(-time.Minute).Unix()); got != want {
				t.Errorf("ValidAfter = %d, want %d (window start back-dated a minute)", got, want)
			}
			if got, want := cert.ValidBefore, uint64(req.ValidBefore.Unix()); got != want {
				t.Errorf("ValidBefore = %d, want %d", got, want)
			}
			if !reflect.DeepEqual(cert.Extensions, map[string]string{"permit-pty": ""}) {
				t.Errorf("extensions = %v, want permit-pty only", cert.Extensions)
			}
			if len(cert.CriticalOptions) != 0 {
				t.Errorf("critical options = %v, want none", cert.CriticalOptions)
			}
			if cert.KeyId != "passport request=req-0001 subject=alice@example.com" {
				t.Errorf("KeyId = %q", cert.KeyId)
			}
			if cert.Serial == 0 {
				t.Error("serial is zero")
			}

			checkCert(t, ca, cert, req.Username, windowStart.Add(-30*time.Second))
			checkCert(t, ca, cert, req.Username, req.ValidBefore.Add(-time.Second))
			inWindow := windowStart.Add(time.Minute)
			if err := login(ca, cert, "root", "127.0.0.1", inWindow); err == nil {
				t.Error("certificate valid for root")
			}
			for _, at := range []time.Time{windowStart.Add(-2 * time.Minute), req.ValidBefore.Add(time.Second)} {
				if err := login(ca, cert, req.Username, "127.0.0.1", at); err == nil {
					t.Errorf("certificate valid at %s, outside the window", at)
				}
			}
			other := testCA(t, otherAlgorithm(alg))
			if err := login(other, cert, req.Username, "127.0.0.1", inWindow); err == nil {
				t.Error("certificate accepted by a host trusting another CA")
			}
		})
	}
}

func otherAlgorithm(a Algorithm) Algorithm {
	if a == Ed25519 {
		return ECDSAP256
	}
	return Ed25519
}

func TestSerialsAreRandom(t *testing.T) {
	ca := testCA(t, Ed25519)
	seen := map[uint64]bool{}
	for range 64 {
		cert, err := ca.Sign(context.Background(), validRequest(t))
		if err != nil {
			t.Fatal(err)
		}
		if seen[cert.Serial] {
			t.Fatalf("serial %d issued twice", cert.Serial)
		}
		seen[cert.Serial] = true
	}
}

func TestPermissions(t *testing.T) {
	ca := testCA(t, Ed25519)
	tests := []struct {
		name     string
		edit     func(*CertRequest)
		ext      []string
		critical map[string]string
	}{
		{"none", func(r *CertRequest) { r.PermitPTY = false }, nil, nil},
		{"pty", func(r *CertRequest) {}, []string{"permit-pty"}, nil},
		{"all granted", func(r *CertRequest) {
			r.PermitAgentForwarding, r.PermitPortForwarding, r.PermitX11Forwarding = true, true, true
		}, []string{"permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty"}, nil},
		{"source address", func(r *CertRequest) { r.SourceAddresses = []string{"127.0.0.1", "10.0.0.0/8", "::1"} },
			[]string{"permit-pty"}, map[string]string{"source-address": "127.0.0.1,10.0.0.0/8,::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(t)
			tt.edit(&req)
			cert, err := ca.Sign(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var ext []string
			for name := range cert.Extensions {
				ext = append(ext, name)
			}
			if !sameSet(ext, tt.ext) {
				t.Errorf("extensions = %v, want %v", ext, tt.ext)
			}
			if _, ok := cert.Extensions["permit-user-rc"]; ok {
				t.Error("permit-user-rc granted")
			}
			if len(cert.CriticalOptions) != len(tt.critical) || len(tt.critical) > 0 && !reflect.DeepEqual(cert.CriticalOptions, tt.critical) {
				t.Errorf("critical options = %v, want %v", cert.CriticalOptions, tt.critical)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

func TestSignRejects(t *testing.T) {
	ca := testCA(t, Ed25519)
	cert, err := ca.Sign(context.Background(), validRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak, _ := ssh.NewPublicKey(&weakRSA.PublicKey)

	tests := []struct {
		name  string
		edit  func(*CertRequest)
		field string // the error must name it
	}{
		{"no key", func(r *CertRequest) { r.PublicKey = nil }, "public_key"},
		{"certificate as key", func(r *CertRequest) { r.PublicKey = cert }, "certificate"},
		{"weak rsa", func(r *CertRequest) { r.PublicKey = weak }, "1024-bit"},
		{"empty username", func(r *CertRequest) { r.Username = "" }, "username"},
		{"root-like", func(r *CertRequest) { r.Username = "Root" }, "username"},
		{"root", func(r *CertRequest) { r.Username = "root" }, "system account"},
		{"ssm-user", func(r *CertRequest) { r.Username = "ssm-user" }, "system account"},
		{"leading digit", func(r *CertRequest) { r.Username = "1pp" }, "username"},
		{"21 chars", func(r *CertRequest) { r.Username = "p" + strings.Repeat("a", 20) }, "username"},
		{"newline", func(r *CertRequest) { r.Username = "pp\nroot" }, "username"},
		{"comma", func(r *CertRequest) { r.Username = "pp,root" }, "username"},
		{"shell", func(r *CertRequest) { r.Username = "pp$(id)" }, "username"},
		{"empty key id", func(r *CertRequest) { r.KeyID = "" }, "key_id"},
		{"key id newline", func(r *CertRequest) { r.KeyID = "req\nforged log line" }, "key_id"},
		{"key id NUL", func(r *CertRequest) { r.KeyID = "req\x00" }, "key_id"},
		{"key id long", func(r *CertRequest) { r.KeyID = strings.Repeat("a", 257) }, "key_id"},
		{"no start", func(r *CertRequest) { r.ValidAfter = time.Time{} }, "window"},
		{"no end", func(r *CertRequest) { r.ValidBefore = time.Time{} }, "window"},
		{"inverted", func(r *CertRequest) { r.ValidBefore = r.ValidAfter.Add(-time.Second) }, "inverted"},
		{"empty window", func(r *CertRequest) { r.ValidBefore = r.ValidAfter }, "inverted"},
		{"over 12h", func(r *CertRequest) { r.ValidBefore = r.ValidAfter.Add(12*time.Hour + time.Minute + time.Second) }, "12h"},
		{"before 1970", func(r *CertRequest) { r.ValidAfter = time.Unix(30, 0) }, "1970"},
		{"bad source", func(r *CertRequest) { r.SourceAddresses = []string{"10.0.0.1,0.0.0.0/0"} }, "source_addresses"},
		{"zone smuggles a wider entry", func(r *CertRequest) { r.SourceAddresses = []string{"fe80::1%x,0.0.0.0/0"} }, "source_addresses"},
		{"zone", func(r *CertRequest) { r.SourceAddresses = []string{"fe80::1%eth0"} }, "source_addresses"},
		{"host bits", func(r *CertRequest) { r.SourceAddresses = []string{"10.0.0.1/8"} }, "source_addresses"},
		{"empty source", func(r *CertRequest) { r.SourceAddresses = []string{""} }, "source_addresses"},
		{"host name source", func(r *CertRequest) { r.SourceAddresses = []string{"bastion.example.com"} }, "source_addresses"},
		{"many sources", func(r *CertRequest) { r.SourceAddresses = make([]string, 33) }, "source_addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(t)
			tt.edit(&req)
			cert, err := ca.Sign(context.Background(), req)
			if err == nil {
				t.Fatalf("signed %+v", cert)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
			if strings.ContainsAny(err.Error(), "\n\x00") {
				t.Errorf("error carries control characters: %q", err)
			}
		})
	}
	t.Run("12h window plus skew is allowed", func(t *testing.T) {
		req := validRequest(t)
		req.ValidBefore = req.ValidAfter.Add(12*time.Hour + time.Minute)
		if _, err := ca.Sign(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyID(t *testing.T) {
	tests := []struct{ request, subject, want string }{
		{"req-1", "alice@example.com", "passport request=req-1 subject=alice@example.com"},
		{"req-1\nJan 1 sshd: Accepted", "bob", "passport request=req-1_Jan_1_sshd:_Accepted subject=bob"},
		{"", "", "passport request=- subject=-"},
		{"r", "é\x1b[2J", "passport request=r subject=__[2J"},
		{"r", "alice subject=root", "passport request=r subject=alice_subject=root"},
	}
	for _, tt := range tests {
		got := KeyID(tt.request, tt.subject)
		if got != tt.want {
			t.Errorf("KeyID(%q, %q) = %q, want %q", tt.request, tt.subject, got, tt.want)
		}
		if err := checkKeyID(got); err != nil {
			t.Errorf("KeyID(%q, %q) is refused by Sign: %v", tt.request, tt.subject, err)
		}
	}
	long := KeyID(strings.Repeat("r", 1000), strings.Repeat("s", 1000))
	if len(long) > maxKeyIDLen {
		t.Errorf("KeyID of long fields is %d bytes", len(long))
	}

	for _, tt := range []struct {
		groups []string
		want   string
	}{
		{[]string{"ops", "oncall"}, " groups=ops,oncall"},
		{[]string{"ops,admins", "on call\n"}, " groups=ops_admins,on_call_"},
	} {
		got := KeyID("r", "alice", tt.groups...)
		if want := "passport request=r subject=alice" + tt.want; got != want {
			t.Errorf("KeyID with groups %q = %q, want %q", tt.groups, got, want)
		}
	}
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("group-%02d", i)
	}
	for _, subject := range []string{"alice", strings.Repeat("s", 1000)} {
		got := KeyID(strings.Repeat("r", 1000), subject, many...)
		if len(got) > maxKeyIDLen || checkKeyID(got) != nil {
			t.Errorf("KeyID with 100 groups is %d bytes (%v): %q", len(got), checkKeyID(got), got)
		}
		kept := strings.Count(got[strings.Index(got, "groups=")+7:], "group-")
		if !strings.HasSuffix(got, fmt.Sprintf(",+%d", 100-kept)) && !(kept == 0 && strings.HasSuffix(got, "=+100")) {
			t.Errorf("KeyID with 100 groups does not count the %d left out: %q", 100-kept, got)
		}
	}
}

// TestOpenSSHReadsCertificate has OpenSSH's ssh-keygen parse each
// certificate and checks what it reports, signature algorithm included.
func TestOpenSSHReadsCertificate(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen (OpenSSH client) is not installed")
	}
	signingCA := map[Algorithm]string{
		Ed25519:   "Signing CA: ED25519 %s (using ssh-ed25519)",
		ECDSAP256: "Signing CA: ECDSA %s (using ecdsa-sha2-nistp256)",
		ECDSAP384: "Signing CA: ECDSA %s (using ecdsa-sha2-nistp384)",
		RSA4096:   "Signing CA: RSA %s (using rsa-sha2-512)",
	}
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			ca := testCA(t, alg)
			req := validRequest(t)
			req.SourceAddresses = []string{"127.0.0.1/32"}
			cert, err := ca.Sign(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			out := keygenList(t, keygen, cert)
			for _, want := range []string{
				"Type: ssh-ed25519-cert-v01@openssh.com user certificate",
				fmt.Sprintf(signingCA[alg], ca.Fingerprint()),
				"Valid: from 2026-11-24T08:59:00 to 2026-11-24T10:00:00\n",
				`Key ID: "passport request=req-0001 subject=alice@example.com"`,
				"Principals: \n                " + req.Username + "\n",
				"Critical Options: \n                source-address 127.0.0.1/32\n",
				"Extensions: \n                permit-pty\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("ssh-keygen -L output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func keygenList(t *testing.T, keygen string, cert *ssh.Certificate) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id-cert.pub")
	if err := os.WriteFile(path, ssh.MarshalAuthorizedKey(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(keygen, "-L", "-f", path)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	return string(out)
}
