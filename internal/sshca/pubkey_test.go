package sshca

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

func authorizedLine(t testing.TB, pub any) string {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n")
}

// securityKeyLines builds FIDO public keys in their wire form (no
// authenticator needed): the key plus the application string "ssh:".
func securityKeyLines(t testing.TB) (skEd25519, skECDSA string) {
	t.Helper()
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := ssh.Marshal(struct{ Type, Key, App string }{ssh.KeyAlgoSKED25519, string(edPub), "ssh:"})
	ecd := ssh.Marshal(struct{ Type, Curve, Point, App string }{ssh.KeyAlgoSKECDSA256, "nistp256", string(ec.PublicKey().Bytes()), "ssh:"})
	return ssh.KeyAlgoSKED25519 + " " + base64.StdEncoding.EncodeToString(ed),
		ssh.KeyAlgoSKECDSA256 + " " + base64.StdEncoding.EncodeToString(ecd)
}

func TestParseUserPublicKeyAccepts(t *testing.T) {
	ed := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(userKey(t))), "\n")
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	skEd25519, skECDSA := securityKeyLines(t)
	tests := []struct{ name, line, comment string }{
		{"ed25519", ed, ""},
		{"ed25519 with comment", ed + " alice@laptop", "alice@laptop"},
		{"comment with spaces", ed + " alice on laptop", "alice on laptop"},
		{"trailing newline", ed + " alice\n", "alice"},
		{"CRLF", ed + " alice\r\n", "alice"},
		{"tab separated", strings.Replace(ed, " ", "\t", 1), ""},
		{"ecdsa-p256", authorizedLine(t, &p256.PublicKey), ""},
		{"ecdsa-p521", authorizedLine(t, &p521.PublicKey), ""},
		{"rsa-2048", authorizedLine(t, &rsa2048.PublicKey), ""},
		{"sk-ed25519", skEd25519, ""},
		{"sk-ecdsa", skECDSA + " yubikey", "yubikey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, comment, err := ParseUserPublicKey(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if comment != tt.comment {
				t.Errorf("comment = %q, want %q", comment, tt.comment)
			}
			// Every accepted key must be certifiable.
			req := validRequest(t)
			req.PublicKey = key
			if _, err := testCA(t, Ed25519).Sign(context.Background(), req); err != nil {
				t.Errorf("accepted key cannot be certified: %v", err)
			}
		})
	}
}

func TestParseUserPublicKeyRejects(t *testing.T) {
	ed := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(userKey(t))), "\n")
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	cert, err := testCA(t, Ed25519).Sign(context.Background(), validRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	certLine := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(cert)), "\n")
	fields := strings.Fields(ed)

	tests := []struct{ name, line, want string }{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		{"not a key", "hello world", "authorized_keys form"},
		{"type only", "ssh-ed25519", "authorized_keys form"},
		{"bad base64", "ssh-ed25519 AAAA$$$$", "authorized_keys form"},
		{"type mismatch", "ssh-rsa " + fields[1], "authorized_keys form"},
		{"truncated blob", "ssh-ed25519 " + fields[1][:40], "authorized_keys form"},
		{"two keys", ed + "\n" + ed, "control character"},
		{"comment line first", "# mine\n" + ed, "control character"},
		{"blank line first", "\n" + ed, "control character"},
		{"NUL in comment", ed + " alice\x00root", "control character"},
		{"escape in comment", ed + " \x1b[2J", "control character"},
		{"CR inside", ed + " a\rb", "control character"},
		{"command option", `command="/bin/sh" ` + ed, "options"},
		{"from option", `from="*" ` + ed, "options"},
		{"cert-authority", "cert-authority " + ed, "options"},
		{"certificate", certLine, "certificate"},
		{"weak rsa", authorizedLine(t, &rsa1024.PublicKey), "1024-bit"},
		{"dsa", "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAJ+VFPnKHQFp48mK45aXQaV7G3d7iTzx6qdQd9lE+y7Xu3DLbXBbv3mE4+2t2ARBrzaFhH8qlz5TiGfdmWODSfk6RXMvBUmOa9Nt3JZq7JnGCIWaYi0i9w+fVRaEEpFI1HEiUfeCBQN7p4SCJE/4aiS38kfF5bp+xt0UrQ8yQs5o", "not allowed"},
		{"non-utf8 comment", ed + " \xff\xfe", "UTF-8"},
		{"too long", ed + " " + strings.Repeat("a", 9000), "bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _, err := ParseUserPublicKey(tt.line)
			if err == nil {
				t.Fatalf("accepted %s key", key.Type())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "public_key") {
				t.Errorf("error %q does not name the field", err)
			}
		})
	}
}

// FuzzParseUserPublicKey: whatever the input, an accepted key is one plain
// key of an allowed type, survives a round trip unchanged, and its comment
// is one line.
func FuzzParseUserPublicKey(f *testing.F) {
	ed := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(userKey(f))), "\n")
	skEd25519, skECDSA := securityKeyLines(f)
	for _, seed := range []string{
		ed, ed + " alice@laptop\n", `command="sh" ` + ed, ed + "\n" + ed, "# c\n" + ed,
		skEd25519, skECDSA + " key", "ssh-ed25519 AAAA", ed + " a\x00b", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		key, comment, err := ParseUserPublicKey(line)
		if err != nil {
			return
		}
		if _, ok := key.(*ssh.Certificate); ok {
			t.Fatal("accepted a certificate")
		}
		if !userKeyTypes[key.Type()] {
			t.Fatalf("accepted key type %s", key.Type())
		}
		if strings.ContainsAny(comment, "\r\n\x00") || !utf8.ValidString(comment) {
			t.Fatalf("comment %q is not one clean line", comment)
		}
		again, _, err := ParseUserPublicKey(string(ssh.MarshalAuthorizedKey(key)))
		if err != nil {
			t.Fatalf("re-parsing the accepted key: %v", err)
		}
		if string(again.Marshal()) != string(key.Marshal()) {
			t.Fatal("round trip changed the key")
		}
	})
}
