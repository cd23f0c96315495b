package idp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// ServiceLoginCode plays the browser half of `passport login --server`
// for user at the Passport service at server, with this IdP's form: the
// sign-in starts at the service's CLI route with an S256 challenge and a
// state, and the service must answer with a redirect to the CLI's
// loopback listener carrying that state. It returns the one-time code and
// the verifier to trade it with (client.ExchangeCode). transport reaches
// the service (one that trusts its TLS); nil is the default.
//
// It is a scripted client of the lab's own pages, for clients' tests that
// need a signed-in person; the CLI's own login is tested with a real
// browser.
func ServiceLoginCode(ctx context.Context, transport http.RoundTripper, server, user, password string) (code, verifier string, err error) {
	browser := &http.Client{Transport: transport, Timeout: 30 * time.Second,
		// The redirect to the loopback listener is the answer: it is read,
		// not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	browser.Jar, _ = cookiejar.New(nil)
	verifier = "vvvvvvvvvv" + base64.RawURLEncoding.EncodeToString(random(32))
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"redirect_uri":          {"http://127.0.0.1:9/callback"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"state":                 {"state-" + base64.RawURLEncoding.EncodeToString(random(12))},
	}
	resp, err := SignInResponse(ctx, browser, server+api.PathLoginCLI+"?"+q.Encode(), user, password)
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || to.Host != "127.0.0.1:9" {
		return "", "", fmt.Errorf("the ACS answered %s to %q, want a redirect to the CLI's loopback listener", resp.Status, resp.Header.Get("Location"))
	}
	if to.Query().Get("state") != q.Get("state") {
		return "", "", fmt.Errorf("the redirect carries state %q, want %q", to.Query().Get("state"), q.Get("state"))
	}
	return to.Query().Get("code"), verifier, nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
