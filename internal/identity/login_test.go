package identity

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// idpVisit is what a test IdP learns from Login's redirect.
type idpVisit struct {
	requestID, acsURL, relayState string
}

func readRedirect(t *testing.T, md *saml.EntityDescriptor, redirect string) idpVisit {
	t.Helper()
	u, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	if sso := md.IDPSSODescriptors[0].SingleSignOnServices[0].Location; !strings.HasPrefix(redirect, sso+"?") {
		t.Fatalf("redirect %s does not go to the IdP's SSO %s", redirect, sso)
	}
	deflated, err := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatal(err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(inflated, &req); err != nil {
		t.Fatal(err)
	}
	if req.Issuer.Value != testSP || req.ProtocolBinding != saml.HTTPPostBinding {
		t.Fatalf("AuthnRequest issuer %q binding %q", req.Issuer.Value, req.ProtocolBinding)
	}
	return idpVisit{requestID: req.ID, acsURL: req.AssertionConsumerServiceURL, relayState: u.Query().Get("RelayState")}
}

func post(t *testing.T, acsURL, relayState string, raw []byte) (int, string) {
	t.Helper()
	resp, err := http.PostForm(acsURL, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}, "RelayState": {relayState}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// login runs Login against a test IdP that answers with the response
// change makes from a good one, and returns Login's result and the page
// the browser was shown.
func login(t *testing.T, p *testIdP, change func(s *spec)) (Session, error, int, string) {
	t.Helper()
	md := p.metadata()
	var status int
	var page string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Login(ctx, LoginConfig{
		Metadata: md, MetadataSource: "idp.xml", SPEntityID: testSP,
		Now: func() time.Time { return testNow.Add(10 * time.Second) },
		Open: func(redirect string) error {
			v := readRedirect(t, md, redirect)
			sp := goodSpec()
			sp.recipient, sp.destination, sp.inResponseTo = v.acsURL, v.acsURL, v.requestID
			if change != nil {
				change(&sp)
			}
			status, page = post(t, v.acsURL, v.relayState, p.response(t, sp))
			return nil
		},
	})
	return s, err, status, page
}

func TestLoginReturnsVerifiedSession(t *testing.T) {
	p := newTestIdP(t, "idp")
	s, err, status, page := login(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || !strings.Contains(page, "Signed in as alice@example.test (ops, staff)") {
		t.Errorf("browser saw %d %q", status, page)
	}
	if s.Subject != "alice@example.test" || len(s.Groups) != 2 || s.Metadata != "idp.xml" || !strings.HasPrefix(s.ACSURL, "http://127.0.0.1:") {
		t.Errorf("session = %+v", s)
	}
	c, err := s.Verify(Options{Metadata: p.metadata(), SPEntityID: testSP, Now: func() time.Time { return testNow.Add(time.Hour) }})
	if err != nil || c.Subject != s.Subject {
		t.Fatalf("stored response does not verify again: %v", err)
	}
}

func TestLoginRefusesBadResponses(t *testing.T) {
	p := newTestIdP(t, "idp")
	for _, tc := range []struct {
		name   string
		change func(s *spec)
		want   string
	}{
		{"unsigned", func(s *spec) { s.signAssertion = false }, "not signed"},
		{"wrong audience", func(s *spec) { s.audience = "other" }, "audience"},
		{"expired", func(s *spec) { s.notOnOrAfter = testNow.Add(-time.Hour) }, "after its delivery deadline"},
		{"unknown InResponseTo", func(s *spec) { s.inResponseTo = "id-not-mine" }, "answers request"},
		{"wrong recipient", func(s *spec) { s.recipient = testACS }, "Recipient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err, status, page := login(t, p, tc.change)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Login = %+v, %v; want an error saying %q", s, err, tc.want)
			}
			if status != http.StatusForbidden || !strings.Contains(page, "Sign-in refused") {
				t.Errorf("browser saw %d %q", status, page)
			}
		})
	}
	t.Run("signed by another key", func(t *testing.T) {
		md := p.metadata()
		_, err := Login(context.Background(), LoginConfig{
			Metadata: md, SPEntityID: testSP, Now: func() time.Time { return testNow },
			Open: func(redirect string) error {
				v := readRedirect(t, md, redirect)
				sp := goodSpec()
				sp.recipient, sp.destination, sp.inResponseTo = v.acsURL, v.acsURL, v.requestID
				post(t, v.acsURL, v.relayState, newTestIdP(t, "other").response(t, sp))
				return nil
			},
		})
		if err == nil || !strings.Contains(err.Error(), "not in the IdP metadata") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLoginGivesUpWhenCancelled(t *testing.T) {
	p := newTestIdP(t, "idp")
	ctx, cancel := context.WithCancelCause(context.Background())
	_, err := Login(ctx, LoginConfig{Metadata: p.metadata(), SPEntityID: testSP, Open: func(string) error {
		cancel(errors.New("the person pressed Ctrl-C"))
		return nil
	}})
	if err == nil || !strings.Contains(err.Error(), "Ctrl-C") {
		t.Fatalf("err = %v", err)
	}
}

// The ACS hears one response per login: a replay of the consumed one, a
// stranger's post without the RelayState, and oversized or garbled forms are
// refused without touching the login's outcome.
func TestACSRefusesReplayAndStrangers(t *testing.T) {
	p := newTestIdP(t, "idp")
	a := &acs{relayState: "state-1", opts: testOptions(p.metadata()), done: make(chan loginResult, 1)}
	good := p.response(t, goodSpec())
	send := func(form url.Values) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, testACS, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		return w
	}
	form := func(raw []byte, relay string) url.Values {
		return url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}, "RelayState": {relay}}
	}

	if w := send(form(good, "guessed")); w.Code != http.StatusBadRequest {
		t.Errorf("wrong RelayState: %d", w.Code)
	}
	big := url.Values{"SAMLResponse": {strings.Repeat("A", maxForm)}, "RelayState": {"state-1"}}
	if w := send(big); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d", w.Code)
	}
	if w := send(form(good, "state-1")); w.Code != http.StatusOK {
		t.Fatalf("good response: %d %s", w.Code, w.Body)
	}
	if r := <-a.done; r.err != nil || r.claims.Subject != "alice@example.test" {
		t.Fatalf("result = %+v", r)
	}
	if w := send(form(good, "state-1")); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "accepted once") {
		t.Errorf("replay: %d %s", w.Code, w.Body)
	}
	select {
	case r := <-a.done:
		t.Fatalf("replay produced a second result: %+v", r)
	default:
	}

	b := &acs{relayState: "s", opts: testOptions(p.metadata()), done: make(chan loginResult, 1)}
	a = b
	if w := send(url.Values{"SAMLResponse": {"%%%not base64"}, "RelayState": {"s"}}); w.Code != http.StatusForbidden {
		t.Errorf("garbled: %d", w.Code)
	}
	if r := <-b.done; r.err == nil || !strings.Contains(r.err.Error(), "not base64") {
		t.Errorf("garbled result: %v", r.err)
	}
}

// Every response the bad-input suite builds is refused by the ACS too,
// with the verifier's reason on the page and in the login's result.
func TestACSRefusesEveryBadResponse(t *testing.T) {
	p := newTestIdP(t, "idp")
	md := p.metadata()
	for _, tc := range badCases() {
		opts := tc.options(md)
		if opts.RequestID == "" {
			continue // a rule for reusing a session later; the ACS checks as at login
		}
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if tc.name == "empty" {
				want = "no SAMLResponse" // the form itself is empty
			}
			a := &acs{relayState: "state", opts: opts, done: make(chan loginResult, 1)}
			form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(tc.raw(t, p))}, "RelayState": {"state"}}
			r := httptest.NewRequest(http.MethodPost, testACS, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			a.ServeHTTP(w, r)
			if w.Code == http.StatusRequestEntityTooLarge {
				return // refused before it was read, as it should be
			}
			select {
			case res := <-a.done:
				if res.err == nil || !strings.Contains(res.err.Error(), want) {
					t.Fatalf("result %+v; want an error saying %q", res, want)
				}
			default:
				t.Fatalf("the ACS answered %d without a result", w.Code)
			}
			if w.Code != http.StatusForbidden {
				t.Errorf("the browser got %d, want 403", w.Code)
			}
			if page := html.UnescapeString(w.Body.String()); !strings.Contains(page, "Sign-in refused: ") || !strings.Contains(page, want) {
				t.Errorf("the page does not give the reason %q:\n%s", want, page)
			}
		})
	}
}
