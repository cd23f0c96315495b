package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/winpass"
)

// serviceError is what the client returns when the service refused or
// failed a call, with the request as it stood when the call left some.
func serviceError(code, field, msg string, left *api.Request) error {
	return &client.Error{Err: &api.Error{Code: code, Field: field, Message: msg, Status: api.StatusOf(code)}, Request: left}
}

// TestServiceErrorsMapByCode: the service's errors become diagnostics by
// their code and field, never their words: an invalid input lands on its
// attribute, a refused sign-in says how to sign in, and the rest keep the
// service's message.
func TestServiceErrorsMapByCode(t *testing.T) {
	conn := &serviceConn{url: "https://passport.example.com"}
	for _, tc := range []struct {
		name        string
		err         error
		attr        string // the attribute the diagnostic names, if any
		summary     string
		wantInWords []string
	}{
		{"invalid reason", serviceError(api.CodeInvalid, "reason", "reason is 3 characters long", nil), "reason", "Access was not granted", []string{"reason is 3 characters long"}},
		{"invalid CA name", serviceError(api.CodeInvalid, "certificate_authority", `certificate_authority "x" is not one of this service's: lab`, nil), "certificate_authority", "Access was not granted", []string{"lab"}},
		// The provider makes password_key itself: no attribute to blame.
		{"invalid password key", serviceError(api.CodeInvalid, "password_key", "password_key is 1024 bits", nil), "", "Access was not granted", []string{"1024 bits"}},
		{"denied", serviceError(api.CodeDenied, "", `i-0123: forbidden by policy "no-production"`, nil), "", "Access was not granted", []string{`forbidden by policy "no-production"`}},
		{"host failure", serviceError(api.CodeHostFailure, "", "i-0123 did not answer", nil), "", "Access was not granted", []string{"i-0123 did not answer"}},
		{"unavailable", serviceError(api.CodeUnavailable, "", "the service cannot reach its ledger; try again shortly", nil), "", "Access was not granted", []string{"try again shortly"}},
		{"unauthenticated", serviceError(api.CodeUnauthenticated, "", "the token has expired or was signed out: sign in again", nil), "", "Not signed in to the Passport service",
			[]string{"sign in again", "passport login --server https://passport.example.com"}},
		// The access core's errors in direct mode map the same way.
		{"direct invalid", &access.Error{Class: access.Invalid, Field: "public_key", Err: errors.New("not a key")}, "public_key", "Access was not granted", []string{"not a key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var diags diag.Diagnostics
			addFailure(&diags, "Access was not granted", conn.explain(tc.err))
			if len(diags) != 1 || !diags.HasError() {
				t.Fatalf("diagnostics %v, want one error", diags)
			}
			d := diags[0]
			if d.Summary() != tc.summary {
				t.Errorf("summary %q, want %q", d.Summary(), tc.summary)
			}
			for _, w := range tc.wantInWords {
				if !strings.Contains(d.Detail(), w) {
					t.Errorf("detail %q does not say %q", d.Detail(), w)
				}
			}
			if p, ok := d.(diag.DiagnosticWithPath); ok != (tc.attr != "") || ok && !p.Path().Equal(path.Root(tc.attr)) {
				t.Errorf("diagnostic on attribute %v (%v), want %q", ok, d, tc.attr)
			}
		})
	}
}

// TestAFailedServiceCallKeepsWhatStands: a call that failed after it
// touched hosts comes back with the request as the service left it, which
// the resource keeps in the state so that destroy can end it, and the
// Windows passwords it carries are opened with the provider's own key; one
// that does not open is an error naming its host.
func TestAFailedServiceCallKeepsWhatStands(t *testing.T) {
	seal, err := client.NewPasswordKey()
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(seal.Public())
	pub, _ := x509.ParsePKIXPublicKey(der)
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sealTo := func(to *rsa.PublicKey, pw string) string {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, to, []byte(pw), nil)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(ct)
	}
	password, _ := winpass.Generate()
	issued := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	left := &api.Request{
		ID: "ar-0123456789abcdef", State: "revoking", Username: "pp-abcdefghijkl", Requester: "alice", RequesterKind: "person", Groups: []string{"ops"},
		Reason: "INC-1 left half-done", IssuedAt: issued, ExpiresAt: issued.Add(time.Hour), Serial: "42",
		Targets: []api.Target{
			{InstanceID: "i-0aaaaaaaaaaaaaaa1", Platform: "Windows", Status: "active"},
			{InstanceID: "i-0bbbbbbbbbbbbbbb2", Platform: "Windows", Status: "active"},
			{InstanceID: "i-0ccccccccccccccc3", Platform: "Linux", Status: "failed", Detail: "did not answer"},
		},
		SealedPasswords: map[string]string{"i-0aaaaaaaaaaaaaaa1": sealTo(pub.(*rsa.PublicKey), password), "i-0bbbbbbbbbbbbbbb2": sealTo(&stranger.PublicKey, password)},
	}
	s := serviceGrantor{conn: &serviceConn{url: "https://passport.example.com"}}
	g, err := s.settle(api.Request{}, serviceError(api.CodeHostFailure, "", "i-0ccccccccccccccc3 did not answer; the user could not be removed from i-0aaaaaaaaaaaaaaa1", left), "PRIVATE", seal)
	if g == nil {
		t.Fatalf("no grant for a request that left users on hosts: %v", err)
	}
	if client.CodeOf(err) != api.CodeHostFailure {
		t.Errorf("the service's code is lost: %v", err)
	}
	if !strings.Contains(err.Error(), "i-0bbbbbbbbbbbbbbb2") || strings.Contains(err.Error(), password) {
		t.Errorf("the error does not name the host whose password did not open, or shows the password: %v", err)
	}
	if g.ID != left.ID || g.Serial != 42 || g.PrivateKey != "PRIVATE" || len(g.Targets) != 3 || g.Targets[0].Status != access.Active || g.Targets[2].Detail != "did not answer" {
		t.Errorf("grant %+v does not match the request the service reported", g)
	}
	if len(g.Passwords) != 1 || g.Passwords["i-0aaaaaaaaaaaaaaa1"] != password {
		t.Errorf("opened %d passwords, want the one sealed to the provider's key", len(g.Passwords))
	}

	// A failure that touched nothing leaves nothing to keep.
	if g, err := s.settle(api.Request{}, serviceError(api.CodeDenied, "", "no policy permits alice", nil), "", seal); g != nil || client.CodeOf(err) != api.CodeDenied {
		t.Errorf("a refusal gave grant %+v, %v; want none and the refusal", g, err)
	}
}

// TestAccCreateRetriedAfterADroppedConnection: the connection drops after
// the service granted but before its answer arrived (a load balancer's
// timeout on a long grant). The create is asked again with the same
// Idempotency-Key, by Go's HTTP transport when the connection had carried
// a call before, else by the provider, and gets the request the first
// call made, not a second one; the Windows password, which only the lost
// answer carried, is reported lost, naming the host, with the request
// kept for destroy.
func TestAccCreateRetriedAfterADroppedConnection(t *testing.T) {
	l := startAccLabIn(t, lab.Options{Hosts: 1, WindowsHosts: 1}, serviceCarol)
	linux, win := l.Hosts[0].Info().InstanceID, l.Windows[0].Info().InstanceID
	// The service's handler on plain HTTP too, so that the proxy in
	// front of it sees where an answer starts.
	plain := httptest.NewServer(l.svc.Handler())
	t.Cleanup(plain.Close)
	tok, err := client.LoadToken(l.server, l.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	book, err := ledger.Open(ctx, os.Getenv("PASSPORT_LEDGER"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	for _, tc := range []struct {
		name string
		http *http.Client
	}{
		{"on a reused connection", nil},
		{"on a new connection", &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, creates := dropFirstAnswer(t, plain.Listener.Addr().String(), "POST "+api.PathRequests+" ")
			server := "http://" + proxy
			if err := client.SaveToken(server, tok); err != nil {
				t.Fatal(err)
			}
			conn, err := newServiceConn(server, client.SignIn{Options: client.Options{HTTP: tc.http}, Now: l.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			s := serviceGrantor{conn: conn}
			g, err := s.grant(ctx, ask{reason: "INC-5 a flaky load balancer", targets: []string{linux, win}})
			if creates() != 2 {
				t.Fatalf("%d creates reached the service, want the dropped one and one retry", creates())
			}
			if g == nil || !strings.Contains(fmt.Sprint(err), win) || !strings.Contains(fmt.Sprint(err), "passwords") {
				t.Fatalf("after the retry: grant %v, error %v; want the request, and an error naming %s's lost password", g != nil, err, win)
			}
			granted, err := book.List(ctx, ledger.Active)
			if err != nil || len(granted) != 1 || granted[0].ID != g.ID {
				t.Fatalf("the service's ledger holds %d active requests (%v), want only %s", len(granted), err, g.ID)
			}
			if users := passportUsers(t, l.Hosts[0]); !sameUsers(users, g.Username) {
				t.Errorf("%s has Passport users %v, want only %s", linux, users, g.Username)
			}
			if err := s.revoke(ctx, g); err != nil {
				t.Fatal(err)
			}
			if users := passportUsers(t, l.Hosts[0]); len(users) != 0 {
				t.Errorf("%s still has Passport users %v after the request ended", linux, users)
			}
		})
	}
}

// dropFirstAnswer is a TCP proxy to backend that passes everything on,
// except that it closes the connection that carries the first call
// starting with call as that call's answer starts: a network that fails at
// the worst moment. It returns its address and a count of the calls
// starting with call it saw.
func dropFirstAnswer(t *testing.T, backend, call string) (string, func() int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var seen atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				var drop atomic.Bool
				go func() {
					// Calls on one connection go one at a time: once this
					// one is sent, the next bytes back are its answer.
					buf := make([]byte, 64<<10)
					for {
						n, err := c.Read(buf)
						if n > 0 && strings.HasPrefix(string(buf[:n]), call) && seen.Add(1) == 1 {
							drop.Store(true)
						}
						if n > 0 {
							b.Write(buf[:n])
						}
						if err != nil {
							return
						}
					}
				}()
				buf := make([]byte, 64<<10)
				for {
					n, err := b.Read(buf)
					if n > 0 && drop.Load() {
						// The grant is done; the caller never hears of it.
						return
					}
					if n > 0 {
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), seen.Load
}
