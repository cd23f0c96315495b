package identity

import (
	"testing"
)

// FuzzVerify feeds arbitrary documents, seeded with a good response and
// every bad one from the suite, to Verify. It must never panic and never
// accept anything but a response signed by the test IdP for alice.
func FuzzVerify(f *testing.F) {
	p := newTestIdP(f, "idp")
	f.Add(p.response(f, goodSpec()))
	both := goodSpec()
	both.signResponse = true
	f.Add(p.response(f, both))
	for _, tc := range badCases() {
		f.Add(tc.raw(f, p))
	}
	md := p.metadata()
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Verify(raw, testOptions(md))
		if err == nil && (c.Subject != "alice@example.test" || c.Issuer != testIdPEntity) {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}
