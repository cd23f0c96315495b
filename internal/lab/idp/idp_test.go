package idp

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/passport-access/terraform-provider-passport/internal/identity"
)

func startIdP(t *testing.T) (*IdP, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := New(Config{URL: srv.URL + "/saml", Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/saml/", p.Handler())
	return p, srv
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func postForm(t *testing.T, u string, v url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func hidden(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no %s field:\n%s", name, page)
	}
	return html.UnescapeString(m[1])
}

func metadata(t *testing.T, p *IdP) *saml.EntityDescriptor {
	t.Helper()
	md, err := identity.LoadMetadata(context.Background(), p.MetadataURL())
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// Every demo person signs in through identity.Login and gets their groups.
func TestLoginWithDemoUsers(t *testing.T) {
	p, _ := startIdP(t)
	md := metadata(t, p)
	for _, u := range DemoUsers() {
		t.Run(u.Name, func(t *testing.T) {
			var page string
			s, err := identity.Login(context.Background(), identity.LoginConfig{
				Metadata: md, SPEntityID: "passport",
				Open: func(redirect string) error {
					var err error
					page, err = SignIn(nil, redirect, u.Name, u.Password)
					return err
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if s.Subject != u.Name || !slices.Equal(s.Groups, u.Groups) {
				t.Errorf("session %s %v, want %s %v", s.Subject, s.Groups, u.Name, u.Groups)
			}
			if d := time.Until(s.Expires); d < 7*time.Hour || d > 8*time.Hour {
				t.Errorf("session ends in %v, want 8h", d)
			}
			if !strings.Contains(page, "Signed in as "+u.Name) {
				t.Errorf("ACS page: %s", page)
			}
			// Signed as a strict SP requires, and as Passport accepts
			// without its insecure SHA-1 setting.
			for _, want := range []string{
				`Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"`,
				`Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"`,
			} {
				if !strings.Contains(string(s.Response), want) {
					t.Errorf("the response is not signed with %s", want)
				}
			}
			if strings.Contains(string(s.Response), "sha1") {
				t.Error("the response names a SHA-1 algorithm")
			}
		})
	}
}

func TestWrongPasswordShowsFormAgain(t *testing.T) {
	p, srv := startIdP(t)
	md := metadata(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := identity.Login(ctx, identity.LoginConfig{
		Metadata: md, SPEntityID: "passport",
		Open: func(redirect string) error {
			_, page := get(t, redirect)
			token := hidden(t, page, "token")
			for _, creds := range [][2]string{{"alice", "bob-lab"}, {"mallory", "alice-lab"}, {"alice", ""}} {
				status, page := postForm(t, srv.URL+"/saml/sso", url.Values{"token": {token}, "username": {creds[0]}, "password": {creds[1]}})
				if status != http.StatusUnauthorized || !strings.Contains(page, "Wrong user name or password") {
					t.Errorf("%v: %d %s", creds, status, page)
				}
			}
			// The same page still works with the right password, once.
			status, _ := postForm(t, srv.URL+"/saml/sso", url.Values{"token": {token}, "username": {"alice"}, "password": {"alice-lab"}})
			if status != http.StatusOK {
				t.Errorf("right password after wrong ones: %d", status)
			}
			status, page = postForm(t, srv.URL+"/saml/sso", url.Values{"token": {token}, "username": {"alice"}, "password": {"alice-lab"}})
			if status != http.StatusBadRequest || !strings.Contains(page, "expired or was used") {
				t.Errorf("second use of a sign-in page: %d %s", status, page)
			}
			cancel()
			return nil
		},
	})
	if err == nil {
		t.Fatal("login completed without the response being posted")
	}
}

func deflated(t testing.TB, raw []byte) string {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(raw)
	w.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func authnRequest(sp, acs string) []byte {
	return []byte(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-1" Version="2.0" IssueInstant="` +
		time.Now().UTC().Format(time.RFC3339) + `" AssertionConsumerServiceURL="` + acs + `" ProtocolBinding="` + saml.HTTPPostBinding +
		`"><saml:Issuer>` + sp + `</saml:Issuer></samlp:AuthnRequest>`)
}

func TestSSORefusesBadRequests(t *testing.T) {
	_, srv := startIdP(t)
	// 8 MiB of XML that deflates to under the encoded-size limit.
	bomb := append(authnRequest("passport", "http://127.0.0.1:1/saml/acs"), bytes.Repeat([]byte(" "), 8<<20)...)
	for _, tc := range []struct {
		name, samlRequest, want string
		status                  int
	}{
		{"deflate bomb", deflated(t, bomb), "inflates to more than", http.StatusBadRequest},
		{"oversized", strings.Repeat("A", maxEncodedRequest+4), "larger than", http.StatusBadRequest},
		{"not base64", "%%%", "not base64", http.StatusBadRequest},
		{"not deflated", base64.StdEncoding.EncodeToString([]byte("<x/>")), "not deflated", http.StatusBadRequest},
		{"not XML", deflated(t, []byte("hello")), "not an AuthnRequest", http.StatusBadRequest},
		{"remote ACS", deflated(t, authnRequest("passport", "https://evil.example.test/acs")), "not on loopback", http.StatusBadRequest},
		{"loopback ACS, not HTTP", deflated(t, authnRequest("passport", "ftp://127.0.0.1/acs")), "not on loopback", http.StatusBadRequest},
		{"unknown SP", deflated(t, authnRequest("someone-else", "http://127.0.0.1:1/saml/acs")), "unknown service provider", http.StatusBadRequest},
		{"missing", "", "no SAMLRequest", http.StatusBadRequest},
	} {
		// The bomb's answer names the limit it met: the IdP stopped
		// inflating there rather than after 8 MiB.
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, srv.URL+"/saml/sso?SAMLRequest="+url.QueryEscape(tc.samlRequest))
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %q; want %d saying %q", status, body, tc.status, tc.want)
			}
		})
	}
}

func TestMetadataIsServed(t *testing.T) {
	p, _ := startIdP(t)
	md := metadata(t, p)
	if md.EntityID != p.MetadataURL() {
		t.Errorf("entityID %q, want %q", md.EntityID, p.MetadataURL())
	}
	if _, err := identity.SigningCertificates(md); err != nil {
		t.Fatal(err)
	}
}
