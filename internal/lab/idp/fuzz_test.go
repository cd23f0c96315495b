package idp

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequestedACS feeds arbitrary SAMLRequest values to the redirect
// binding's decoder: it must stay within its bounds and only ever return a
// loopback ACS.
func FuzzRequestedACS(f *testing.F) {
	f.Add(deflated(f, authnRequest("passport", "http://127.0.0.1:4711/saml/acs")))
	f.Add(deflated(f, authnRequest("passport", "http://[::1]:1/acs")))
	f.Add(deflated(f, authnRequest("passport", "https://evil.example.test/acs")))
	f.Add(deflated(f, authnRequest("passport", "http://127.0.0.1.evil.test/acs")))
	f.Add(deflated(f, []byte(strings.Repeat("<a>", 1000))))
	f.Add(base64.StdEncoding.EncodeToString([]byte("not deflate")))
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, encoded string) {
		acs, err := requestedACS(encoded)
		if err != nil {
			return
		}
		u, perr := url.Parse(acs)
		if perr != nil || u.Scheme != "http" || !loopback(u.Hostname()) {
			t.Fatalf("accepted ACS %q", acs)
		}
	})
}
