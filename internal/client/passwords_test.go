package client

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/winpass"
)

// seal seals pw as a Windows host does: RSA-OAEP-SHA256, base64url.
func seal(t *testing.T, to *rsa.PublicKey, pw string) string {
	t.Helper()
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, to, []byte(pw), nil)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(ct)
}

func TestPasswordKeyOpensWhatWasSealedToItOnly(t *testing.T) {
	k, err := NewPasswordKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("password_key is not a PKIX key: %v", err)
	}
	if rk := pub.(*rsa.PublicKey); rk.N.BitLen() != PasswordKeyBits {
		t.Fatalf("password_key is %d bits, want %d", rk.N.BitLen(), PasswordKeyBits)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good, err := winpass.Generate()
	if err != nil {
		t.Fatal(err)
	}
	stray, err := winpass.Generate()
	if err != nil {
		t.Fatal(err)
	}
	const (
		opens    = "i-0aaaaaaaaaaaaaaa1"
		elsewise = "i-0bbbbbbbbbbbbbbb2"
		garbled  = "i-0ccccccccccccccc3"
	)
	got, err := k.Open(api.Request{Username: "pp-abcdefghijkl", SealedPasswords: map[string]string{
		opens:    seal(t, pub.(*rsa.PublicKey), good),
		elsewise: seal(t, &other.PublicKey, stray),
		garbled:  "not*base64",
	}})
	if got[opens] != good || len(got) != 1 {
		t.Errorf("opened %d passwords (the good one right: %v), want only %s's", len(got), got[opens] == good, opens)
	}
	if err == nil {
		t.Fatal("passwords that do not open gave no error")
	}
	for _, id := range []string{elsewise, garbled} {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("the error does not name %s: %v", id, err)
		}
	}
	if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), stray) || strings.Contains(err.Error(), "not*base64") {
		t.Errorf("the error shows a password or its ciphertext: %v", err)
	}
}
