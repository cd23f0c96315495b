package awsidentity

import (
	"context"
	"testing"

	stssdk "github.com/aws/aws-sdk-go-v2/service/sts"
)

// BenchmarkVerify is one machine login checked against the lab's STS:
// the checks, the one-time use and the round trip. Its baseline,
// BenchmarkVerify/sdk, is the same GetCallerIdentity sent by the SDK's
// own STS client, so the ratio is what the service adds to the call it
// cannot avoid.
func BenchmarkVerify(b *testing.B) {
	l := startLab(b)
	v := labVerifier(l)
	b.Run("sdk", func(b *testing.B) {
		client := stssdk.NewFromConfig(l.AWSConfigAs(l.Requester))
		for b.Loop() {
			if _, err := client.GetCallerIdentity(context.Background(), &stssdk.GetCallerIdentityInput{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		cfg := l.AWSConfigAs(l.Requester)
		for b.Loop() {
			b.StopTimer()
			// Each login is good once: signing is the machine's cost.
			login := sign(b, cfg, v)
			b.StartTimer()
			if _, err := v.Verify(context.Background(), login); err != nil {
				b.Fatal(err)
			}
		}
	})
}
