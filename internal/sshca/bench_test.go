package sshca

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// BenchmarkSign measures certificates signed per second by a local CA of
// each algorithm against bare x/crypto/ssh signing of the same certificate
// with the same key. Each iteration signs once each way, interleaved, so
// both see the same machine load; vs-bare-signing is the throughput ratio
// (1.0: validation and a random serial cost nothing; the target is >= 0.8).
// ns/op covers both signatures.
func BenchmarkSign(b *testing.B) {
	for _, alg := range Algorithms() {
		b.Run(string(alg), func(b *testing.B) {
			ca := testCA(b, alg)
			req := validRequest(b)
			bare := bareSigner(b, ca, req)
			ctx := context.Background()
			compare(b, "vs-bare-signing", bare, func() {
				if _, err := ca.Sign(ctx, req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkKMSSign measures certificates signed per second through the lab
// KMS (one kms:Sign round trip over loopback HTTP with SigV4 each) against
// a local CA of the same algorithm, interleaved in the same run.
func BenchmarkKMSSign(b *testing.B) {
	client := labKMS(b)
	ctx := context.Background()
	for _, alg := range Algorithms() {
		b.Run(string(alg), func(b *testing.B) {
			ca, err := CreateKMS(ctx, client, alg, KMSKeyOptions{})
			if err != nil {
				b.Fatal(err)
			}
			req := validRequest(b)
			local := testCA(b, alg)
			compare(b, "vs-local-ca", func() {
				if _, err := local.Sign(ctx, req); err != nil {
					b.Fatal(err)
				}
			}, func() {
				if _, err := ca.Sign(ctx, req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// bareSigner is the baseline: Certificate.SignCert alone, with no
// validation and a fixed serial.
func bareSigner(b *testing.B, ca *CA, req CertRequest) func() {
	signer, err := ssh.NewSignerFromSigner(ca.key)
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		cert := &ssh.Certificate{
			Key: req.PublicKey, Serial: 1, CertType: ssh.UserCert, KeyId: req.KeyID,
			ValidPrincipals: []string{req.Username},
			ValidAfter:      uint64(req.ValidAfter.Unix()), ValidBefore: uint64(req.ValidBefore.Unix()),
			Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
		}
		// For an RSA key SignCert picks rsa-sha2-512, as the CA does.
		if err := cert.SignCert(rand.Reader, signer); err != nil {
			b.Fatal(err)
		}
	}
}

// compare runs baseline and subject alternately in b's loop and reports
// the subject's certificates per second and its throughput relative to the
// baseline.
func compare(b *testing.B, metric string, baseline, subject func()) {
	var base, subj time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		baseline()
		t1 := time.Now()
		subject()
		base += t1.Sub(t0)
		subj += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(n)/subj.Seconds(), "certs/s")
	b.ReportMetric(base.Seconds()/subj.Seconds(), metric)
}
