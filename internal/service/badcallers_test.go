package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
)

// call is one raw HTTP call to the service, as an attacker or a broken
// client would make it.
type call struct {
	method, path string
	token        string // Authorization: Bearer
	header       map[string]string
	body         string
}

// answer is what came back: status and the API's error body.
type answer struct {
	status int
	code   string
	field  string
	msg    string
	raw    string
	header http.Header
}

func (r *rig) do(t *testing.T, c call) answer {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, r.url+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	var e struct {
		Error api.Error `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil {
		a.code, a.field, a.msg = e.Error.Code, e.Error.Field, e.Error.Message
	}
	return a
}

// tokenOf is the raw token a signed-in client carries.
func (r *rig) token(t testing.TB, person string) string {
	t.Helper()
	code, verifier := r.loginCode(t, person)
	tok, err := r.anonymous(t).ExchangeCode(context.Background(), code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func TestBadCallersGetNothing(t *testing.T) {
	clk := &clock.Offset{}
	r := startRig(t, 1, 0, func(s *Settings) { s.Now = clk.Now })
	ctx := context.Background()
	h := r.lab.Hosts[0]
	staging := h.Info().InstanceID
	alice, bob, carol := r.token(t, "alice"), r.token(t, "bob"), r.token(t, "carol")
	key := newUserKey(t)
	made, err := r.anonymous(t).WithToken(alice).Create(ctx, api.CreateRequest{Targets: []string{staging}, Reason: "INC-7 look at the disk", PublicKey: key.line}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := made.ID
	create := func(fields string) string {
		return `{"targets":["` + staging + `"],"reason":"INC-7 look at the disk","public_key":"` + key.line + `"` + fields + `}`
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)

	tests := []struct {
		name   string
		call   call
		status int
		code   string
		field  string
	}{
		// Every route but health, sign-in and metadata wants a sign-in.
		{"whoami unsigned", call{method: "GET", path: "/v1/whoami"}, 401, "unauthenticated", ""},
		{"targets unsigned", call{method: "GET", path: "/v1/targets"}, 401, "unauthenticated", ""},
		{"create unsigned", call{method: "POST", path: "/v1/requests", body: create("")}, 401, "unauthenticated", ""},
		{"list unsigned", call{method: "GET", path: "/v1/requests"}, 401, "unauthenticated", ""},
		{"get unsigned", call{method: "GET", path: "/v1/requests/" + id}, 401, "unauthenticated", ""},
		{"extend unsigned", call{method: "POST", path: "/v1/requests/" + id + "/extend", body: `{"duration":"2h"}`}, 401, "unauthenticated", ""},
		{"targets change unsigned", call{method: "PUT", path: "/v1/requests/" + id + "/targets", body: `{"targets":[]}`}, 401, "unauthenticated", ""},
		{"end unsigned", call{method: "POST", path: "/v1/requests/" + id + "/end"}, 401, "unauthenticated", ""},
		{"check unsigned", call{method: "POST", path: "/v1/requests/" + id + "/check"}, 401, "unauthenticated", ""},
		{"approve unsigned", call{method: "POST", path: "/v1/requests/" + id + "/approve", body: `{}`}, 401, "unauthenticated", ""},
		{"deny unsigned", call{method: "POST", path: "/v1/requests/" + id + "/deny", body: `{"comment":"no"}`}, 401, "unauthenticated", ""},
		{"review unsigned", call{method: "POST", path: "/v1/requests/" + id + "/review", body: `{"comment":"ok"}`}, 401, "unauthenticated", ""},
		{"session unsigned", call{method: "POST", path: "/v1/requests/" + id + "/sessions", body: `{"target":"` + staging + `","kind":"ssh"}`}, 401, "unauthenticated", ""},
		{"resume unsigned", call{method: "POST", path: "/v1/sessions/s-1/resume"}, 401, "unauthenticated", ""},
		{"end session unsigned", call{method: "POST", path: "/v1/sessions/s-1/end"}, 401, "unauthenticated", ""},
		{"audit unsigned", call{method: "GET", path: "/v1/audit"}, 401, "unauthenticated", ""},
		{"verify unsigned", call{method: "GET", path: "/v1/audit/verify"}, 401, "unauthenticated", ""},
		{"logout unsigned", call{method: "POST", path: "/v1/logout"}, 401, "unauthenticated", ""},
		// Tokens that are not a live token.
		{"garbage token", call{method: "GET", path: "/v1/whoami", token: "garbage"}, 401, "unauthenticated", ""},
		{"forged token", call{method: "GET", path: "/v1/whoami", token: "ppt_" + base64.RawURLEncoding.EncodeToString(randomBytes(32))}, 401, "unauthenticated", ""},
		{"token with a trailing byte", call{method: "GET", path: "/v1/whoami", token: alice + "A"}, 401, "unauthenticated", ""},
		{"basic auth", call{method: "GET", path: "/v1/whoami", header: map[string]string{"Authorization": "Basic YWxpY2U6YWxpY2UtbGFi"}}, 401, "unauthenticated", ""},
		{"garbage cookie", call{method: "GET", path: "/v1/whoami", header: map[string]string{"Cookie": "passport_session=ppt_nope"}}, 401, "unauthenticated", ""},
		// Bodies the service will not read.
		{"body too large", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"tags":{"x":"` + strings.Repeat("a", 70<<10) + `"}`)}, 413, "too_large", ""},
		{"body not JSON", call{method: "POST", path: "/v1/requests", token: alice, body: "reason=yes"}, 400, "invalid", ""},
		{"unknown field", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"requester":"carol"`)}, 400, "invalid", "requester"},
		{"two JSON values", call{method: "POST", path: "/v1/requests", token: alice, body: create("") + "{}"}, 400, "invalid", ""},
		{"wrong type", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"duration":7200`)}, 400, "invalid", "duration"},
		{"form content type", call{method: "POST", path: "/v1/requests", token: alice, body: create(""), header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 400, "invalid", ""},
		// Requests the service refuses, naming the field.
		{"no public key", call{method: "POST", path: "/v1/requests", token: alice, body: `{"targets":["` + staging + `"],"reason":"INC-7 look at the disk"}`}, 400, "invalid", "public_key"},
		{"targets and tags", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"tags":{"Env":"staging"}`)}, 400, "invalid", "targets"},
		{"bad duration", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"duration":"forever"`)}, 400, "invalid", "duration"},
		{"duration past the cap", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"duration":"13h"`)}, 400, "invalid", "duration"},
		{"unknown CA", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"certificate_authority":"other"`)}, 400, "invalid", "certificate_authority"},
		{"password key not base64", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"password_key":"$$$"`)}, 400, "invalid", "password_key"},
		{"password key not RSA", call{method: "POST", path: "/v1/requests", token: alice, body: create(`,"password_key":"` + base64.StdEncoding.EncodeToString(ecDER) + `"`)}, 400, "invalid", "password_key"},
		{"reason too short", call{method: "POST", path: "/v1/requests", token: alice, body: `{"targets":["` + staging + `"],"reason":"fix","public_key":"` + key.line + `"}`}, 400, "invalid", "reason"},
		{"target not an id", call{method: "POST", path: "/v1/requests", token: alice, body: `{"targets":["i-$(id)"],"reason":"INC-7 look at the disk","public_key":"` + key.line + `"}`}, 400, "invalid", "targets"},
		{"public key with options", call{method: "POST", path: "/v1/requests", token: alice, body: `{"targets":["` + staging + `"],"reason":"INC-7 look at the disk","public_key":"command=\"id\" ` + key.line + `"}`}, 400, "invalid", "public_key"},
		{"bad idempotency key", call{method: "POST", path: "/v1/requests", token: alice, body: create(""), header: map[string]string{"Idempotency-Key": "two words"}}, 400, "invalid", "Idempotency-Key"},
		{"policy denies bob production sudo", call{method: "POST", path: "/v1/requests", token: bob, body: `{"targets":["` + staging + `"],"reason":"INC-7 look at the disk","sudo":true,"public_key":"` + key.line + `"}`}, 403, "denied", ""},
		// Other people's requests.
		{"bob reads alice's", call{method: "GET", path: "/v1/requests/" + id, token: bob}, 404, "not_found", "id"},
		{"bob ends alice's", call{method: "POST", path: "/v1/requests/" + id + "/end", token: bob}, 404, "not_found", "id"},
		{"bob extends alice's", call{method: "POST", path: "/v1/requests/" + id + "/extend", token: bob, body: `{"duration":"3h"}`}, 404, "not_found", "id"},
		{"bob opens a session on alice's", call{method: "POST", path: "/v1/requests/" + id + "/sessions", token: bob, body: `{"target":"` + staging + `","kind":"ssh"}`}, 404, "not_found", "id"},
		{"carol extends alice's", call{method: "POST", path: "/v1/requests/" + id + "/extend", token: carol, body: `{"duration":"3h"}`}, 403, "denied", ""},
		{"carol opens a session on alice's", call{method: "POST", path: "/v1/requests/" + id + "/sessions", token: carol, body: `{"target":"` + staging + `","kind":"ssh"}`}, 403, "denied", ""},
		{"a request id that is not one", call{method: "GET", path: "/v1/requests/..%2Fetc", token: alice}, 404, "not_found", "id"},
		{"an unknown request", call{method: "GET", path: "/v1/requests/ar-0000000000000000", token: alice}, 404, "not_found", "id"},
		{"a session of a target not in the request", call{method: "POST", path: "/v1/requests/" + id + "/sessions", token: alice, body: `{"target":"i-0123456789abcdef0","kind":"ssh"}`}, 400, "invalid", "target"},
		{"a session of no kind", call{method: "POST", path: "/v1/requests/" + id + "/sessions", token: alice, body: `{"target":"` + staging + `","kind":"telnet"}`}, 400, "invalid", "kind"},
		{"someone else's session", call{method: "POST", path: "/v1/sessions/s-0123/resume", token: alice}, 404, "not_found", "session"},
		{"ending someone else's session", call{method: "POST", path: "/v1/sessions/s-0123/end", token: alice}, 404, "not_found", "session"},
		{"bob checks alice's", call{method: "POST", path: "/v1/requests/" + id + "/check", token: bob}, 404, "not_found", "id"},
		{"bob changes alice's targets", call{method: "PUT", path: "/v1/requests/" + id + "/targets", token: bob, body: `{"targets":[]}`}, 404, "not_found", "id"},
		{"carol changes alice's targets", call{method: "PUT", path: "/v1/requests/" + id + "/targets", token: carol, body: `{"targets":[]}`}, 403, "denied", ""},
		{"a target that is not an id", call{method: "PUT", path: "/v1/requests/" + id + "/targets", token: alice, body: `{"targets":["i-$(id)"]}`}, 400, "invalid", "targets"},
		{"an extension that is no duration", call{method: "POST", path: "/v1/requests/" + id + "/extend", token: alice, body: `{"duration":"forever"}`}, 400, "invalid", "duration"},
		{"an approval with a comment that is no string", call{method: "POST", path: "/v1/requests/" + id + "/approve", token: carol, body: `{"comment":5}`}, 400, "invalid", "comment"},
		{"an approval of a request that waits for none", call{method: "POST", path: "/v1/requests/" + id + "/approve", token: carol, body: `{}`}, 409, "conflict", ""},
		{"a denial of a request that waits for none", call{method: "POST", path: "/v1/requests/" + id + "/deny", token: carol, body: `{"comment":"no"}`}, 409, "conflict", ""},
		{"bob approves alice's", call{method: "POST", path: "/v1/requests/" + id + "/approve", token: bob, body: `{}`}, 404, "not_found", "id"},
		// Lists with filters that mean nothing.
		{"a state that is none", call{method: "GET", path: "/v1/requests?state=forever", token: alice}, 400, "invalid", "state"},
		{"an audit since no time", call{method: "GET", path: "/v1/audit?since=yesterday", token: alice}, 400, "invalid", "since"},
		{"a platform that is none", call{method: "GET", path: "/v1/targets?platform=Plan9", token: alice}, 400, "invalid", "platform"},
		{"a tag without a value", call{method: "GET", path: "/v1/targets?tag=Env", token: alice}, 400, "invalid", "tag"},
		// Routes and methods that do not exist.
		{"no such route", call{method: "GET", path: "/v1/nothing", token: alice}, 404, "no_route", ""},
		{"wrong method", call{method: "DELETE", path: "/v1/requests", token: alice}, 405, "method_not_allowed", ""},
		// A browser made to post from another site, with the cookie.
		{"cross-site post with a cookie", call{method: "POST", path: "/v1/requests/" + id + "/end", header: map[string]string{
			"Cookie": "passport_session=" + alice, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}}, 403, "denied", ""},
		// Sign-in codes.
		{"unknown login code", call{method: "POST", path: "/v1/login/token", body: `{"code":"ppc_` + strings.Repeat("A", 43) + `","verifier":"` + strings.Repeat("v", 43) + `"}`}, 401, "unauthenticated", ""},
		{"not a login code", call{method: "POST", path: "/v1/login/token", body: `{"code":"alice","verifier":"` + strings.Repeat("v", 43) + `"}`}, 400, "invalid", "code"},
		{"short verifier", call{method: "POST", path: "/v1/login/token", body: `{"code":"ppc_x","verifier":"v"}`}, 400, "invalid", "verifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := r.do(t, tt.call)
			if a.status != tt.status || a.code != tt.code || a.field != tt.field {
				t.Errorf("%s %s: %d code %q field %q (%s); want %d %q %q", tt.call.method, tt.call.path, a.status, a.code, a.field, a.msg, tt.status, tt.code, tt.field)
			}
			if a.msg == "" || strings.Contains(a.raw, "ppt_") {
				t.Errorf("the answer must say what happened and never carry a token: %.300s", a.raw)
			}
			if a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", a.header.Get("Cache-Control"))
			}
			if a.status == 401 && a.header.Get("WWW-Authenticate") == "" && !strings.HasPrefix(tt.call.path, "/v1/login") {
				t.Error("a 401 without WWW-Authenticate")
			}
		})
	}

	// Nothing above changed the request or reached a host twice.
	got, err := r.anonymous(t).WithToken(alice).Get(ctx, id)
	if err != nil || got.State != "active" || !got.ExpiresAt.Equal(made.ExpiresAt) {
		t.Fatalf("after the bad calls alice's request is %+v, %v; want it active and unchanged", got, err)
	}

	t.Run("open routes answer without a sign-in", func(t *testing.T) {
		for _, p := range []string{"/v1/health", "/saml/metadata"} {
			if a := r.do(t, call{method: "GET", path: p}); a.status != 200 {
				t.Errorf("GET %s: %d %s", p, a.status, a.raw)
			}
		}
	})
	t.Run("a code is traded once, and only with its verifier", func(t *testing.T) {
		code, verifier := r.loginCode(t, "alice")
		body := func(v string) string { return `{"code":"` + code + `","verifier":"` + v + `"}` }
		if a := r.do(t, call{method: "POST", path: "/v1/login/token", body: body(verifier + "x")}); a.status != 401 {
			t.Errorf("a wrong verifier: %d %s", a.status, a.raw)
		}
		if a := r.do(t, call{method: "POST", path: "/v1/login/token", body: body(verifier)}); a.status != 401 {
			t.Errorf("the right verifier after a wrong one must find the code spent: %d %s", a.status, a.raw)
		}
		code, verifier = r.loginCode(t, "alice")
		body = func(v string) string { return `{"code":"` + code + `","verifier":"` + v + `"}` }
		if a := r.do(t, call{method: "POST", path: "/v1/login/token", body: body(verifier)}); a.status != 200 {
			t.Fatalf("a fresh code: %d %s", a.status, a.raw)
		}
		if a := r.do(t, call{method: "POST", path: "/v1/login/token", body: body(verifier)}); a.status != 401 {
			t.Errorf("a replayed code: %d %s", a.status, a.raw)
		}
	})
	t.Run("a SAML answer is taken once", func(t *testing.T) {
		acs, form, err := idp.SignedAnswer(ctx, noRedirects(), r.url+"/saml/login", "alice", "alice-lab")
		if err != nil {
			t.Fatal(err)
		}
		post := func() *http.Response {
			resp, err := noRedirects().PostForm(acs, form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		first := post()
		if first.StatusCode != 200 || len(first.Cookies()) == 0 || !first.Cookies()[0].HttpOnly || !first.Cookies()[0].Secure || first.Cookies()[0].SameSite == http.SameSiteNoneMode {
			t.Fatalf("the browser sign-in: %s, cookies %v; want a HttpOnly, Secure, SameSite cookie", first.Status, first.Cookies())
		}
		if again := post(); again.StatusCode != 400 || len(again.Cookies()) != 0 {
			t.Errorf("a replayed SAML answer: %s, cookies %v", again.Status, again.Cookies())
		}
	})
	t.Run("a SAML answer for another sign-in is refused", func(t *testing.T) {
		acs, form, err := idp.SignedAnswer(ctx, noRedirects(), r.url+"/saml/login", "alice", "alice-lab")
		if err != nil {
			t.Fatal(err)
		}
		// A second sign-in, pending at the service: its RelayState with
		// the first one's answer.
		a := r.do(t, call{method: "GET", path: "/saml/login"})
		to, err := url.Parse(a.header.Get("Location"))
		if a.status != 302 || err != nil || to.Query().Get("RelayState") == "" {
			t.Fatalf("starting a sign-in: %d %q", a.status, a.header.Get("Location"))
		}
		form.Set("RelayState", to.Query().Get("RelayState"))
		resp, err := noRedirects().PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
			t.Errorf("an answer to another sign-in: %s, cookies %v; want 403 and no cookie", resp.Status, resp.Cookies())
		}
	})
	t.Run("a large IdP answer is read", func(t *testing.T) {
		// IdPs that list many groups send responses far larger than any
		// API body; the ACS reads up to what identity.Verify accepts.
		acs, form, err := idp.SignedAnswer(ctx, noRedirects(), r.url+"/saml/login", "alice", "alice-lab")
		if err != nil {
			t.Fatal(err)
		}
		form.Set("padding", strings.Repeat("p", 100<<10))
		resp, err := noRedirects().PostForm(acs, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || len(resp.Cookies()) == 0 {
			t.Errorf("a 100 KiB form from the IdP: %s; want signed in", resp.Status)
		}
	})
	t.Run("a next page elsewhere is refused", func(t *testing.T) {
		for _, next := range []string{"//evil.example", "https://evil.example/", `/\evil.example`} {
			a := r.do(t, call{method: "GET", path: "/saml/login?" + url.Values{"next": {next}}.Encode()})
			if a.status != 400 || a.header.Get("Location") != "" {
				t.Errorf("next=%s: %d %q; want 400 and no redirect", next, a.status, a.header.Get("Location"))
			}
		}
	})
	t.Run("sign-in links that would send the code elsewhere", func(t *testing.T) {
		for _, redirect := range []string{"https://evil.example/cb", "http://evil.example:80/cb", "http://127.0.0.1/cb", "http://user@127.0.0.1:9/cb", "http://127.0.0.1:9/cb?x=1", "javascript:alert(1)"} {
			q := url.Values{"redirect_uri": {redirect}, "code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}, "state": {strings.Repeat("s", 16)}}
			a := r.do(t, call{method: "GET", path: "/v1/login/cli?" + q.Encode()})
			if a.status != 400 || a.header.Get("Location") != "" {
				t.Errorf("redirect_uri %q: %d %q", redirect, a.status, a.header.Get("Location"))
			}
		}
		q := url.Values{"redirect_uri": {"http://127.0.0.1:9/cb"}, "code_challenge": {"short"}, "code_challenge_method": {"plain"}, "state": {strings.Repeat("s", 16)}}
		if a := r.do(t, call{method: "GET", path: "/v1/login/cli?" + q.Encode()}); a.status != 400 {
			t.Errorf("a plain challenge: %d", a.status)
		}
	})
	t.Run("a token ends with the sign-in", func(t *testing.T) {
		clk.Advance(13 * time.Hour)
		defer clk.Advance(-13 * time.Hour)
		if a := r.do(t, call{method: "GET", path: "/v1/whoami", token: carol}); a.status != 401 {
			t.Errorf("a token past its sign-in: %d %s", a.status, a.raw)
		}
	})
	t.Run("an administrator may end anyone's request", func(t *testing.T) {
		ended, err := r.anonymous(t).WithToken(carol).End(ctx, id)
		if err != nil || ended.State != "revoked" {
			t.Fatalf("carol ending alice's request: %+v, %v", ended, err)
		}
		events, err := r.anonymous(t).WithToken(alice).Audit(ctx, client.AuditFilter{Request: id})
		if err != nil || len(events) == 0 || events[len(events)-1].Actor != "carol" || events[len(events)-1].Action != "revoked" {
			t.Errorf("alice's trail %+v, %v; want it to end with carol's revoke", events, err)
		}
		h := r.lab.Hosts[0]
		labtest.MustBeRefused(t, h, made.Username, labtest.CertSigner(t, key.signer, made.Certificate), "after carol ended the request")
	})
}

func TestCallsAreRateLimitedPerCaller(t *testing.T) {
	r := startRig(t, 0, 0, func(s *Settings) { s.RatePerMinute = 20 })
	alice, bob := r.token(t, "alice"), r.token(t, "bob")
	limited := -1
	for i := range 20 {
		if a := r.do(t, call{method: "GET", path: "/v1/whoami", token: alice}); a.status == 429 {
			if a.code != "rate_limited" || a.header.Get("Retry-After") == "" {
				t.Errorf("a limited call: %s, Retry-After %q", a.raw, a.header.Get("Retry-After"))
			}
			limited = i
			break
		}
	}
	if limited < 0 {
		t.Fatal("20 calls in a row at 20 a minute were all served: nothing limits a caller")
	}
	// The limit is alice's, not everyone's.
	if a := r.do(t, call{method: "GET", path: "/v1/whoami", token: bob}); a.status != 200 {
		t.Errorf("bob after alice was limited: %d %s", a.status, a.raw)
	}

	// A portal page is one call, however many API calls it makes in
	// process: carol opens the admin page (who she is, every open
	// request, the unreviewed break-glass grants, the targets' names) as
	// often as her burst of 5 allows calls, and then is limited.
	carol := map[string]string{"Cookie": api.SessionCookie + "=" + r.token(t, "carol")}
	pages := 0
	for ; pages < 20; pages++ {
		a := r.do(t, call{method: "GET", path: "/admin", header: carol})
		if a.status == 429 {
			break
		}
		if a.status != 200 {
			t.Fatalf("carol's admin page: %d %s", a.status, a.raw)
		}
	}
	if pages < 5 || pages == 20 {
		t.Errorf("carol opened the admin page %d times before being limited; want each page charged once: 5 (her burst), then limited", pages)
	}
}
