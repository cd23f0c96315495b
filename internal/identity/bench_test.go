package identity

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"
)

// BenchmarkVerify measures a whole verification against the one thing it
// cannot avoid, an RSA-SHA256 signature check, timed in the same run: the
// ratio is what XML parsing, canonicalization and the checks cost on top.
func BenchmarkVerify(b *testing.B) {
	p := newTestIdP(b, "idp")
	raw := p.response(b, goodSpec())
	opts := testOptions(p.metadata())
	digest := sha256.Sum256(raw)
	sig, err := rsa.SignPKCS1v15(nil, p.key, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	for range b.N {
		if _, err := Verify(raw, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()

	start := time.Now()
	for range b.N {
		if err := rsa.VerifyPKCS1v15(&p.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(time.Since(start)), "x-rsa-verify")
}
