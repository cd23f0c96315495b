package sshca

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// FuzzSign: whatever a request carries, a certificate is either refused or
// is exactly what sshd should see: one valid principal equal to the
// username, a clean key id, a window of at most MaxWindow plus skew, no
// extension beyond those asked for, and a source-address that parses.
func FuzzSign(f *testing.F) {
	f.Add("pp-k3x9q2", "passport request=r subject=s", int64(3600), int64(0), "", false)
	f.Add("pp-a", "id", int64(12*3600+60), int64(-1), "127.0.0.1/32,::1", true)
	f.Add("root\n", "id\x00", int64(-5), int64(1<<40), "0.0.0.0/0", true)
	f.Add("pp,root", "id", int64(60), int64(0), "10.0.0.1 ,10.0.0.2", false)
	f.Add("a", strings.Repeat("x", 300), int64(1), int64(0), "bastion.example.com", false)
	f.Add("pp-b", "id", int64(60), int64(0), "fe80::1%x,0.0.0.0/0", false)
	ca := testCA(f, Ed25519)
	key := userKey(f)
	f.Fuzz(func(t *testing.T, username, keyID string, seconds, offset int64, sources string, pty bool) {
		start := windowStart.Add(time.Duration(offset) * time.Second)
		req := CertRequest{
			PublicKey: key, Username: username, KeyID: keyID,
			ValidAfter: start, ValidBefore: start.Add(time.Duration(seconds) * time.Second),
			PermitPTY: pty,
		}
		if sources != "" {
			req.SourceAddresses = strings.Split(sources, ",")
		}
		cert, err := ca.Sign(context.Background(), req)
		if err != nil {
			return
		}
		// Judged by rules written here from the package documentation, not
		// by the package's own patterns.
		if len(cert.ValidPrincipals) != 1 || cert.ValidPrincipals[0] != username || !shortLivedUsername(username) {
			t.Fatalf("principals %q for username %q", cert.ValidPrincipals, username)
		}
		if cert.KeyId != keyID || !loggableKeyID(keyID) {
			t.Fatalf("key id %q for %q", cert.KeyId, keyID)
		}
		wantAfter, wantBefore := start.Add(-time.Minute).Unix(), start.Add(time.Duration(seconds)*time.Second).Unix()
		if int64(cert.ValidAfter) != wantAfter || int64(cert.ValidBefore) != wantBefore || wantAfter < 0 ||
			wantBefore-wantAfter > int64((12*time.Hour+2*time.Minute).Seconds()) || wantBefore <= wantAfter+60 {
			t.Fatalf("validity %d..%d for a window %d..%d", cert.ValidAfter, cert.ValidBefore, start.Unix(), start.Unix()+seconds)
		}
		for ext := range cert.Extensions {
			if ext != "permit-pty" || !pty {
				t.Fatalf("extension %s granted", ext)
			}
		}
		for opt, v := range cert.CriticalOptions {
			if opt != "source-address" || v != sources {
				t.Fatalf("critical option %s=%q", opt, v)
			}
			for _, entry := range strings.Split(v, ",") {
				if !sshdSourceAddress(entry) {
					t.Fatalf("source-address entry %q", entry)
				}
			}
		}
		if cert.CertType != ssh.UserCert {
			t.Fatal("not a user certificate")
		}
		if err := login(ca, cert, username, "127.0.0.1", start); err != nil && len(cert.CriticalOptions) == 0 {
			t.Fatalf("issued certificate does not log in at its window start: %v", err)
		}
	})
}

// shortLivedUsername: a lower-case letter, then up to 19 lower-case
// letters, digits and dashes; never one of the stock images' accounts.
func shortLivedUsername(s string) bool {
	if len(s) == 0 || len(s) > 20 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	switch s {
	case "root", "admin", "daemon", "bin", "sys", "sync", "nobody", "sshd", "ubuntu", "ec2-user",
		"centos", "debian", "fedora", "admin-user", "ssm-user":
		return false
	}
	return true
}

// loggableKeyID: 1 to 256 printable ASCII bytes, since sshd writes the key
// id into every log line about the login.
func loggableKeyID(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for _, c := range []byte(s) {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// sshdSourceAddress: an address or a CIDR prefix without host bits, as
// the older net package reads them, with nothing sshd would split on.
func sshdSourceAddress(s string) bool {
	if s == "" || strings.ContainsAny(s, "%, \t") {
		return false
	}
	if ip, network, err := net.ParseCIDR(s); err == nil {
		return ip.Equal(network.IP)
	}
	return net.ParseIP(s) != nil
}
