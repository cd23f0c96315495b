package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/identity"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	labbrowser "github.com/passport-access/terraform-provider-passport/internal/lab/browser"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
)

func startLabIdP(t *testing.T) *idp.IdP {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := idp.New(idp.Config{URL: srv.URL + "/saml", Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/saml/", p.Handler())
	return p
}

// A browser signs a person in at the IdP from the URL passport login
// printed, and returns the text of the page the ACS answered with.
type browser func(t *testing.T, signInURL, user, password string) string

// httpBrowser submits the forms the way a browser would, without one.
// With tamper, the response is changed on its way to the ACS, as a hostile
// proxy or browser extension could.
func httpBrowser(tamper func(xml []byte) []byte) browser {
	return func(t *testing.T, signInURL, user, password string) string {
		t.Helper()
		client := http.DefaultClient
		if tamper != nil {
			client = &http.Client{Transport: tamperingTransport(tamper)}
		}
		page, err := idp.SignIn(client, signInURL, user, password)
		if err != nil && page == "" {
			t.Fatal(err)
		}
		return page
	}
}

type tamperingTransport func(xml []byte) []byte

func (change tamperingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/saml/acs") {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		raw, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
		if err != nil {
			return nil, err
		}
		form.Set("SAMLResponse", base64.StdEncoding.EncodeToString(change(raw)))
		encoded := form.Encode()
		r = r.Clone(r.Context())
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(encoded)), int64(len(encoded))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// chromiumBrowser signs in with Debian's headless Chromium.
func chromiumBrowser(t *testing.T) browser {
	t.Helper()
	b, err := labbrowser.Find()
	if err != nil {
		t.Skip(err)
	}
	return func(t *testing.T, signInURL, user, password string) string {
		t.Helper()
		page, err := b.SignIn(context.Background(), signInURL, user, password)
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
}

// login runs passport login --no-browser, hands the printed URL to b and
// returns login's output, the ACS page and login's error.
func login(t *testing.T, b browser, session, metadata, user, password string) (string, string, error) {
	t.Helper()
	return runLogin(t, b, []string{"--metadata", metadata, "--session", session}, user, password)
}

// runLogin runs passport login --no-browser with args, hands the printed
// URL to b to sign user in, and returns login's output, the page the
// browser was shown at the end, and login's error.
func runLogin(t *testing.T, b browser, args []string, user, password string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"login", "--no-browser", "--timeout", "1m"}, args...)...)
	cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var out strings.Builder
	var page string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if strings.HasPrefix(lines.Text(), "http") && page == "" {
			page = b(t, lines.Text(), user, password)
		}
	}
	err = cmd.Wait()
	return out.String() + stderr.String(), page, err
}

func TestLoginWhoamiLogout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		browser func(t *testing.T) browser
	}{
		{"http", func(*testing.T) browser { return httpBrowser(nil) }},
		{"chromium", chromiumBrowser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.browser(t)
			p := startLabIdP(t)
			session := filepath.Join(t.TempDir(), "config", "passport", "session.json")

			out, page, err := login(t, b, session, p.MetadataURL(), "carol", "carol-lab")
			if err != nil {
				t.Fatalf("login: %v\n%s", err, out)
			}
			if !strings.Contains(out, "Signed in as carol (groups: admins, ops) until") {
				t.Errorf("login said:\n%s", out)
			}
			if !strings.Contains(page, "Signed in as carol (admins, ops)") {
				t.Errorf("the browser was shown %q", page)
			}
			if fi, err := os.Stat(session); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("session file: %v %v", fi, err)
			}

			for _, args := range [][]string{{}, {"--metadata", p.MetadataURL()}} {
				who, _, err := passportRun(t, append([]string{"whoami", "--session", session}, args...)...)
				if err != nil || !regexp.MustCompile(`subject: carol\ngroups:  admins, ops\nexpires: .* \(in 8h0m\)`).MatchString(who) {
					t.Errorf("whoami %v: %v\n%s", args, err, who)
				}
			}

			if out, _, err := passportRun(t, "logout", "--session", session); err != nil || out != "Signed out.\n" {
				t.Errorf("logout: %v %q", err, out)
			}
			if _, errOut, err := passportRun(t, "whoami", "--session", session); err == nil || !strings.Contains(errOut, "run passport login") {
				t.Errorf("whoami after logout: %v %q", err, errOut)
			}
		})
	}
}

// A response changed on its way to the ACS is refused, and no session is
// written.
func TestLoginRefusesTamperedResponse(t *testing.T) {
	p := startLabIdP(t)
	session := filepath.Join(t.TempDir(), "session.json")
	promote := httpBrowser(func(raw []byte) []byte {
		return []byte(strings.Replace(string(raw), ">dev<", ">admins<", 1))
	})
	out, page, err := login(t, promote, session, p.MetadataURL(), "bob", "bob-lab")
	if err == nil || !strings.Contains(out, "SAML response refused") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if !strings.Contains(page, "Sign-in refused") {
		t.Errorf("the browser was shown %q", page)
	}
	if _, err := os.Stat(session); !os.IsNotExist(err) {
		t.Fatalf("a session was written: %v", err)
	}
}

// TestWhoamiRefusesWhatVerifyRefuses: a session stored by an earlier
// Passport, before it refused content after the response, holds an
// unsigned assertion for someone else after </samlp:Response>. Whoami
// verifies it again and refuses it, as the provider would.
func TestWhoamiRefusesWhatVerifyRefuses(t *testing.T) {
	p := startLabIdP(t)
	session := filepath.Join(t.TempDir(), "session.json")
	if out, _, err := login(t, httpBrowser(nil), session, p.MetadataURL(), "bob", "bob-lab"); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	s, err := identity.LoadSession(session)
	if err != nil {
		t.Fatal(err)
	}
	end := strings.Index(string(s.Response), "</samlp:Response>")
	if end < 0 {
		t.Fatalf("the stored response has no </samlp:Response>:\n%s", s.Response)
	}
	start := strings.Index(string(s.Response), "<saml:Assertion")
	forged := strings.Replace(string(s.Response[start:end]), ">bob<", ">carol<", 1)
	s.Response = append(s.Response, forged...)
	s.Subject = "carol"
	if err := identity.SaveSession(session, s); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"--metadata", p.MetadataURL()}} {
		out, errOut, err := passportRun(t, append([]string{"whoami", "--session", session}, args...)...)
		if err == nil || !strings.Contains(errOut, "second element") || !strings.Contains(errOut, "run passport login") {
			t.Errorf("whoami %v of a session with an assertion appended: %v\n%s%s", args, err, out, errOut)
		}
		if strings.Contains(out, "carol") {
			t.Errorf("whoami %v printed the forged subject:\n%s", args, out)
		}
	}
}

func TestWhoamiExpiredSession(t *testing.T) {
	session := filepath.Join(t.TempDir(), "session.json")
	if err := identity.SaveSession(session, identity.Session{Subject: "alice", Expires: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := passportRun(t, "whoami", "--session", session)
	if err == nil || !strings.Contains(errOut, "the session for alice expired at") || !strings.Contains(errOut, "run passport login") {
		t.Fatalf("whoami: %v %q", err, errOut)
	}
}

func TestLoginNeedsMetadata(t *testing.T) {
	_, errOut, err := passportRun(t, "login", "--no-browser", "--metadata", "")
	if err == nil || !strings.Contains(errOut, "--metadata is required") {
		t.Fatalf("login: %v %q", err, errOut)
	}
}

// The lab serves its IdP on the lab endpoint and points passport login at
// it through the environment it prints.
func TestLoginAtTheLab(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Options{Dir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var metadata string
	for _, kv := range l.Env() {
		if v, ok := strings.CutPrefix(kv, "PASSPORT_SAML_METADATA="); ok {
			metadata = v
		}
	}
	if metadata != l.Endpoint+"/saml/metadata" {
		t.Fatalf("lab environment points at metadata %q", metadata)
	}
	session := filepath.Join(t.TempDir(), "session.json")
	if out, _, err := login(t, httpBrowser(nil), session, metadata, "alice", "alice-lab"); err != nil || !strings.Contains(out, "Signed in as alice (groups: ops)") {
		t.Fatalf("login: %v\n%s", err, out)
	}
}
