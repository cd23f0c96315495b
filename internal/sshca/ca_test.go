package sshca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testCAs caches one CA per algorithm: RSA-4096 generation takes seconds.
var testCAs sync.Map

func testCA(t testing.TB, alg Algorithm) *CA {
	t.Helper()
	if ca, ok := testCAs.Load(alg); ok {
		return ca.(*CA)
	}
	ca, err := Generate(alg)
	if err != nil {
		t.Fatalf("Generate(%s): %v", alg, err)
	}
	testCAs.Store(alg, ca)
	return ca
}

func userKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	return newUserSigner(t).PublicKey()
}

var windowStart = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func validRequest(t testing.TB) CertRequest {
	return CertRequest{
		PublicKey:   userKey(t),
		Username:    "pp-k3x9q2",
		KeyID:       KeyID("req-0001", "alice@example.com"),
		ValidAfter:  windowStart,
		ValidBefore: windowStart.Add(time.Hour),
		PermitPTY:   true,
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, name := range []string{"ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-4096"} {
		if a, err := ParseAlgorithm(name); err != nil || string(a) != name {
			t.Errorf("ParseAlgorithm(%q) = %q, %v", name, a, err)
		}
	}
	for _, name := range []string{"", "rsa", "RSA-4096", "rsa-2048", "ecdsa-p521", "dsa", "ed25519 "} {
		_, err := ParseAlgorithm(name)
		if err == nil {
			t.Errorf("ParseAlgorithm(%q) accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "ed25519, ecdsa-p256, ecdsa-p384, rsa-4096") {
			t.Errorf("ParseAlgorithm(%q) error does not list the valid names: %v", name, err)
		}
	}
}

func TestNewRejectsUnsupportedKeys(t *testing.T) {
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, key := range map[string]crypto.Signer{"ecdsa-p521": p521, "rsa-2048": rsa2048} {
		if _, err := New(key); err == nil {
			t.Errorf("New(%s) accepted an unsupported CA key", name)
		}
	}
	if _, err := Generate("rsa-2048"); err == nil {
		t.Error("Generate(rsa-2048) accepted an unsupported algorithm")
	}
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

func TestPrivateKeyRoundTrip(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			ca := testCA(t, alg)
			if ca.Algorithm() != alg {
				t.Fatalf("Algorithm() = %s", ca.Algorithm())
			}
			pemBytes, err := ca.MarshalPrivateKey("passport ca\nforged")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(pemBytes), "-----BEGIN OPENSSH PRIVATE KEY-----\n") {
				t.Fatalf("not an OpenSSH private key:\n%.60s", pemBytes)
			}
			back, err := ParsePrivateKey(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			if back.Fingerprint() != ca.Fingerprint() {
				t.Fatalf("round trip changed the key: %s != %s", back.Fingerprint(), ca.Fingerprint())
			}
			// The parsed key must sign, not just carry the right public half.
			cert, err := back.Sign(context.Background(), validRequest(t))
			if err != nil {
				t.Fatal(err)
			}
			checkCert(t, ca, cert, "pp-k3x9q2", windowStart.Add(time.Minute))
		})
	}
}

func TestParsePrivateKeyRejects(t *testing.T) {
	ca := testCA(t, Ed25519)
	encrypted, err := ssh.MarshalPrivateKeyWithPassphrase(ca.key, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	p521Block, err := ssh.MarshalPrivateKey(p521, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("not a key"),
		"public":    ssh.MarshalAuthorizedKey(ca.PublicKey()),
		"encrypted": pemEncode(encrypted),
		"p521":      pemEncode(p521Block),
	} {
		if _, err := ParsePrivateKey(in); err == nil {
			t.Errorf("%s: ParsePrivateKey accepted it", name)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error leaks the passphrase: %v", name, err)
		}
	}
}

func TestPublicForms(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			ca := testCA(t, alg)
			line := ca.AuthorizedKey("prod ca\n\x1b[31m")
			if strings.ContainsAny(line, "\n\x1b") {
				t.Fatalf("authorized key line carries control characters: %q", line)
			}
			key, comment, opts, rest, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil || len(opts) != 0 || len(rest) != 0 {
				t.Fatalf("ParseAuthorizedKey(%q) = %v, %v, %q", line, err, opts, rest)
			}
			if comment != "prod ca__[31m" {
				t.Errorf("comment = %q", comment)
			}
			if ssh.FingerprintSHA256(key) != ca.Fingerprint() {
				t.Errorf("authorized key does not match the CA")
			}
			trusted := ca.TrustedUserCAKeysLine("prod")
			if strings.Count(trusted, "\n") != 1 || !strings.HasSuffix(trusted, " passport-ca:prod\n") {
				t.Errorf("TrustedUserCAKeysLine = %q", trusted)
			}
			if !strings.HasPrefix(ca.Fingerprint(), "SHA256:") {
				t.Errorf("Fingerprint = %q", ca.Fingerprint())
			}
			keygenFingerprint(t, line, ca.Fingerprint())
		})
	}
}

// keygenFingerprint checks our fingerprint against OpenSSH's own.
func keygenFingerprint(t *testing.T, authorizedKey, want string) {
	t.Helper()
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Log("ssh-keygen not installed; fingerprint checked against x/crypto/ssh only")
		return
	}
	path := filepath.Join(t.TempDir(), "ca.pub")
	if err := os.WriteFile(path, []byte(authorizedKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(keygen, "-l", "-E", "sha256", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v\n%s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) < 2 || f[1] != want {
		t.Errorf("ssh-keygen fingerprint %q, ours %q", out, want)
	}
}
