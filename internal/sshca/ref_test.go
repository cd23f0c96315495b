package sshca

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
)

func TestOpenStateSigner(t *testing.T) {
	for _, alg := range []Algorithm{Ed25519, ECDSAP256} {
		ca, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes, err := ca.MarshalPrivateKey("test")
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenRef(context.Background(), nil, StateRef(pemBytes))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if got.Fingerprint() != ca.Fingerprint() {
			t.Errorf("%s: the reference opens CA %s, want %s", alg, got.Fingerprint(), ca.Fingerprint())
		}
	}
}

func TestSignerRefRejects(t *testing.T) {
	ca, err := Generate(Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := ca.MarshalPrivateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	secretRef := StateRef(pemBytes)
	for _, tc := range []struct {
		name, ref, want string
	}{
		{"empty", "", "must start with kms: or state:"},
		{"CA id instead of signer", "ca-0123456789abcdef0123456789abcdef", "must start with kms: or state:"},
		{"raw PEM", string(pemBytes), "must start with kms: or state:"},
		{"kms without key", "kms:", "names no key"},
		{"state not base64", "state:$(id)", "not valid base64"},
		{"state base64 of garbage", "state:" + base64.StdEncoding.EncodeToString([]byte("not a key")), "does not hold a usable CA private key"},
		{"state truncated key", secretRef[:len(secretRef)/2], ""},
		{"kms without client", "kms:arn:aws:kms:us-east-1:123456789012:key/x", "no KMS client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenRef(context.Background(), nil, tc.ref)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || (len(tc.ref) > 24 && strings.Contains(err.Error(), tc.ref[8:24])) {
				t.Errorf("error quotes the reference, which may be a private key: %q", err)
			}
		})
	}
}

// FuzzOpenSigner: whatever the reference, openSigner either opens a CA or
// fails with an error that does not repeat the reference, which may hold a
// private key.
func FuzzOpenSigner(f *testing.F) {
	ca, err := Generate(Ed25519)
	if err != nil {
		f.Fatal(err)
	}
	pemBytes, err := ca.MarshalPrivateKey("seed")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{StateRef(pemBytes), "state:", "kms:", "state:AAAA", "x", "state:" + string(pemBytes)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		got, err := OpenRef(context.Background(), nil, ref)
		if err == nil {
			if got == nil {
				t.Fatal("no CA and no error")
			}
			return
		}
		if len(ref) >= 16 && strings.Contains(err.Error(), ref) {
			t.Fatalf("error repeats the reference: %q", err)
		}
	})
}
