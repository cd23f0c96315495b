package service

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
)

// The fuzz targets here call a real service, on a lab of model nodes,
// straight through its handler with an httptest recorder: the edge, the
// sign-in check, each handler and what it hands the access core. Every
// answer must be in the API document for its route and status; bad input
// never gets a 5xx; no answer carries a token, a login code or a
// verifier; refusals are the error body with a code.

// fuzzRig is the service the fuzz targets call: carol (admins, who may
// reach the model nodes) with an active request on the first one, and
// alice (ops, who may not).
type fuzzRig struct {
	*rig
	doc          *apiDocument
	h            http.Handler
	routes       *http.ServeMux
	carol, alice string
	id           string
	node         string
	// refusals are the messages of the sign-in check, which must never
	// carry what a caller presented.
	refusals string
}

func startFuzzRig(f *testing.F) *fuzzRig {
	f.Helper()
	doc, err := loadAPIDocument()
	if err != nil {
		f.Fatal(err)
	}
	r := startRigWith(f, lab.Options{ModelNodes: 2}, func(s *Settings) {
		// The fuzzer calls far faster than any person.
		s.RatePerMinute, s.Machines = 1<<24, true
	})
	fr := &fuzzRig{rig: r, doc: doc, h: r.svc.Server.Handler(), routes: http.NewServeMux(), carol: r.token(f, "carol"), alice: r.token(f, "alice")}
	for _, p := range r.svc.Server.Routes() {
		fr.routes.Handle(p, http.NotFoundHandler())
	}
	for _, m := range r.lab.Models {
		m.SetAnswer(0, "passport-result action=provision status=ok\n", "")
	}
	fr.node = r.lab.Models[0].Info().InstanceID
	req, err := r.anonymous(f).WithToken(fr.carol).Create(context.Background(), api.CreateRequest{Targets: []string{fr.node}, Reason: "CHG-1 fuzzing", PublicKey: newUserKey(f).line}, "")
	if err != nil {
		f.Fatal(err)
	}
	fr.id = req.ID
	for _, h := range []string{"", "Basic x", "Bearer x", "Bearer ppt_" + strings.Repeat("A", 43)} {
		x := fr.serve(fr.request("GET", api.PathWhoAmI, h, nil))
		fr.refusals += string(x.body)
	}
	return fr
}

// request is a call with an Authorization header (none when empty).
func (fr *fuzzRig) request(method, target, authorization string, body []byte) *http.Request {
	r := httptest.NewRequest(method, "http://passport.test/", bytes.NewReader(body))
	// Any bytes at all: the target is set apart from URL parsing.
	r.URL = &url.URL{Path: target}
	if p, q, ok := strings.Cut(target, "?"); ok {
		r.URL = &url.URL{Path: p, RawQuery: q}
	}
	r.RequestURI = target
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

// serve runs one call through the service's handler.
func (fr *fuzzRig) serve(r *http.Request) exchange {
	_, route := fr.routes.Handler(r)
	var reqBody []byte
	if r.Body != nil {
		reqBody, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	w := httptest.NewRecorder()
	fr.h.ServeHTTP(w, r)
	return exchange{route: route, method: r.Method, url: r.URL.RequestURI(), reqType: r.Header.Get("Content-Type"), reqBody: reqBody,
		status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// judge holds x to what every answer owes: the document, no 5xx for input
// the document calls invalid (valid says whether it did), no secret.
func (fr *fuzzRig) judge(t *testing.T, x exchange, valid bool, secrets ...string) {
	t.Helper()
	for _, p := range fr.doc.check(x) {
		t.Fatalf("docs/service-api.yaml: %s", p)
	}
	switch {
	case x.status == http.StatusInternalServerError:
		t.Fatalf("%s: %s", x, redacted(x.body))
	case x.status >= 500 && !valid:
		t.Fatalf("%s for input the API document calls invalid: %s", x, redacted(x.body))
	}
	if x.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s without Cache-Control: no-store", x)
	}
	all := append([]string{fr.carol, fr.alice}, secrets...)
	for _, s := range all {
		if s == "" {
			continue
		}
		if bytes.Contains(x.body, []byte(s)) || strings.Contains(strings.Join(x.header.Values("Location"), " "), s) || strings.Contains(strings.Join(x.header.Values("Set-Cookie"), " "), s) {
			t.Fatalf("%s carries a secret the caller sent or holds", x)
		}
	}
}

// validBody says whether body is what the document calls a valid request
// body of route.
func (fr *fuzzRig) validBody(route string, contentType string, body []byte) bool {
	method, path := splitPattern(route)
	ptr, ok := fr.doc.requestSchema(path, method, contentType)
	if !ok {
		return false
	}
	return len(fr.doc.validate(exchange{route: route}, ptr, body, "request body")) == 0
}

// bodyRoutes are the routes that read a JSON body.
var bodyRoutes = []string{
	"POST /v1/requests", "POST /v1/requests/{id}/extend", "PUT /v1/requests/{id}/targets",
	"POST /v1/requests/{id}/sessions", "POST /v1/login/token", "POST /v1/login/aws",
	"POST /v1/requests/preview",
}

// FuzzRequestBodies sends arbitrary bodies to every route that reads one,
// as carol on her active request, and lets each handler do what it does
// with what it read.
func FuzzRequestBodies(f *testing.F) {
	fr := startFuzzRig(f)
	key := newUserKey(f).line
	// From the bad-input suite (badcallers_test.go), by route (the order
	// of bodyRoutes); every route also gets the bodies that are no object.
	seeds := [][]string{{
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY"}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY","requester":"alice"}`,
		`{"Targets":["NODE"],"REASON":"CHG-7 look at the disk","public_key":"KEY"}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY","duration":7200}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY"}{}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY","tags":{"Env":"scale"}}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY","duration":"forever"}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY","duration":"13h"}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY","certificate_authority":"other"}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"KEY","password_key":"$$$"}`,
		`{"targets":["NODE"],"reason":"fix","public_key":"KEY"}`, `{"targets":["i-$(id)"],"reason":"CHG-7 look at the disk","public_key":"KEY"}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","public_key":"command=\"id\" KEY"}`,
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk"}`, `{"tags":{"Env":"scale"},"reason":"CHG-7","public_key":"KEY","sudo":true}`,
	}, {
		`{"duration":"2h"}`, `{"duration":"3h"}`, `{"duration":"-1h"}`, `{"duration":"forever"}`,
	}, {
		`{"targets":[]}`, `{"targets":["NODE","i-0123456789abcdef0"]}`, `{"targets":["i-$(id)"],"password_key":"MIIB"}`,
	}, {
		`{"target":"NODE","kind":"ssh"}`, `{"target":"i-0123456789abcdef0","kind":"ssh"}`, `{"target":"NODE","kind":"telnet"}`, `{"target":"NODE","kind":"port","port":70000}`,
	}, {
		`{"code":"ppc_` + strings.Repeat("A", 43) + `","verifier":"` + strings.Repeat("v", 43) + `"}`, `{"code":"alice","verifier":"v"}`, `{"code":"ppc_x","verifier":"v"}`,
	}, {
		`{"method":"POST","url":"https://evil.example/","headers":{},"body":""}`, `{"method":7}`,
	}, {
		`{"targets":["NODE"],"reason":"CHG-7 look at the disk","duration":"3h"}`, `{"tags":{"Env":"scale"}}`, `{"targets":["NODE"],"reason":"fix"}`,
		`{"targets":["NODE"],"duration":"13h"}`, `{"targets":["i-$(id)"]}`, `{"targets":["NODE"],"tags":{"Env":"scale"}}`, `{"reason":"CHG-7 look at the disk"}`,
	}}
	for i := range bodyRoutes {
		for _, s := range append(seeds[i], "reason=yes", "", "null", "[]") {
			f.Add(uint8(i), "application/json", []byte(strings.NewReplacer("NODE", fr.node, "KEY", key).Replace(s)))
		}
	}
	f.Add(uint8(0), "application/x-www-form-urlencoded", []byte(`{}`))
	f.Fuzz(func(t *testing.T, which uint8, contentType string, body []byte) {
		route := bodyRoutes[int(which)%len(bodyRoutes)]
		method, path := splitPattern(route)
		r := fr.request(strings.ToUpper(method), strings.ReplaceAll(path, "{id}", fr.id), "Bearer "+fr.carol, body)
		if contentType == "" {
			r.Header.Del("Content-Type")
		} else {
			r.Header.Set("Content-Type", contentType)
		}
		x := fr.serve(r)
		fr.judge(t, x, fr.validBody(route, contentType, body))
		if x.status >= 400 {
			var e api.ErrorBody
			if json.Unmarshal(x.body, &e) != nil || e.Error == nil || api.StatusOf(e.Error.Code) != x.status {
				t.Fatalf("%s: the error body's code does not go with the status: %s", x, redacted(x.body))
			}
		}
	})
}

// FuzzIdempotencyKey sends arbitrary Idempotency-Keys with a create that
// policy refuses (alice may not reach the model nodes). A key is taken
// exactly when it is 1 to 128 printable ASCII characters without spaces,
// and the refusal of one never repeats it.
func FuzzIdempotencyKey(f *testing.F) {
	fr := startFuzzRig(f)
	body := []byte(`{"targets":["` + fr.node + `"],"reason":"INC-3 fuzzing","public_key":"` + newUserKey(f).line + `"}`)
	for _, k := range []string{"apply-7f3a", "two words", "", strings.Repeat("k", 128), strings.Repeat("k", 129), "tab\there", "ünï", "\x00", "~!@#$%^&*()"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		r := fr.request("POST", api.PathRequests, "Bearer "+fr.alice, body)
		r.Header.Set("Idempotency-Key", key)
		x := fr.serve(r)
		fr.judge(t, x, false)
		good := len(key) <= 128
		for i := 0; i < len(key); i++ {
			good = good && key[i] >= 0x21 && key[i] <= 0x7e
		}
		var e api.ErrorBody
		json.Unmarshal(x.body, &e)
		switch {
		case good && (x.status != http.StatusForbidden || e.Error.Code != api.CodeDenied):
			t.Fatalf("key %q: %s %s; want policy's refusal, as with no key", key, x, redacted(x.body))
		case !good && (x.status != http.StatusBadRequest || e.Error.Field != "Idempotency-Key"):
			t.Fatalf("key %q: %s %s; want it refused, naming the header", key, x, redacted(x.body))
		case !good && len(key) >= 4 && strings.Contains(e.Error.Message, key):
			t.Fatalf("the refusal repeats the key: %s", e.Error.Message)
		}
	})
}

// FuzzCredentials sends arbitrary Authorization and Cookie headers. Only
// carol's own token, as a bearer token or the session cookie, is carol; no
// answer repeats what was presented.
func FuzzCredentials(f *testing.F) {
	fr := startFuzzRig(f)
	for _, s := range []struct{ auth, cookie string }{
		{"Bearer " + fr.carol, ""}, {"bearer  " + fr.carol + " ", ""}, {"BEARER " + fr.carol, ""}, {"Bearer " + fr.carol + "A", ""},
		{"Basic YWxpY2U6YWxpY2UtbGFi", ""}, {"garbage", ""}, {"Bearer", ""}, {"Bearer ppt_" + strings.Repeat("A", 43), ""},
		{"", "passport_session=" + fr.carol}, {"", "passport_session=\"" + fr.carol + "\""}, {"", "a=b; passport_session=" + fr.carol},
		{"", "passport_session=ppt_nope"}, {"", "passport_session=" + fr.carol + "; passport_session=x"}, {"Bearer x", "passport_session=" + fr.carol},
	} {
		f.Add(s.auth, s.cookie)
	}
	f.Fuzz(func(t *testing.T, authorization, cookie string) {
		r := fr.request("GET", api.PathWhoAmI, authorization, nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		x := fr.serve(r)
		// The checks of judge with the presented values as secrets would
		// refuse an answer that is carol's own whoami; judge without them.
		fr.judge(t, x, false)
		scheme, value, _ := strings.Cut(authorization, " ")
		bearer := authorization != "" && strings.EqualFold(scheme, "bearer") && strings.TrimSpace(value) == fr.carol
		fromCookie := authorization == "" && strings.Contains(cookie, "passport_session=")
		switch x.status {
		case http.StatusOK:
			var p api.Principal
			if json.Unmarshal(x.body, &p) != nil || p.Name != "carol" {
				t.Fatalf("signed in as %s", x.body)
			}
			if !bearer && !(fromCookie && strings.Contains(cookie, fr.carol)) {
				t.Fatalf("Authorization %q, Cookie %q signed carol in", authorization, cookie)
			}
		case http.StatusUnauthorized:
			if bearer {
				t.Fatalf("carol's own token as %q was refused: %s", authorization, x.body)
			}
			if x.header.Get("WWW-Authenticate") == "" {
				t.Fatal("a 401 without WWW-Authenticate")
			}
			for _, v := range []string{strings.TrimSpace(value), cookie} {
				if len(v) >= 8 && bytes.Contains(x.body, []byte(v)) && !strings.Contains(fr.refusals, v) {
					t.Fatalf("the refusal repeats what was presented: %s", x.body)
				}
			}
		default:
			t.Fatalf("%s: %s; want 200 or 401", x, x.body)
		}
	})
}

// FuzzCLILoginStart sends arbitrary query parameters to the start of
// `passport login --server`. A sign-in starts (to the IdP, never to the
// redirect_uri) only for a loopback redirect_uri, an S256 challenge of 43
// base64url characters and a state of 16 to 128, judged here on their own.
func FuzzCLILoginStart(f *testing.F) {
	fr := startFuzzRig(f)
	for _, s := range [][4]string{
		{"http://127.0.0.1:9/callback", strings.Repeat("c", 43), "S256", strings.Repeat("s", 16)},
		{"http://[::1]:8080/cb", strings.Repeat("c", 43), "S256", strings.Repeat("s", 128)},
		{"https://evil.example/cb", strings.Repeat("c", 43), "S256", strings.Repeat("s", 16)},
		{"http://127.0.0.1/cb", strings.Repeat("c", 43), "S256", strings.Repeat("s", 16)},
		{"http://user@127.0.0.1:9/cb", strings.Repeat("c", 43), "S256", strings.Repeat("s", 16)},
		{"http://127.0.0.1:9/cb?x=1", strings.Repeat("c", 43), "S256", strings.Repeat("s", 16)},
		{"javascript:alert(1)", strings.Repeat("c", 43), "S256", strings.Repeat("s", 16)},
		{"http://127.0.0.1:9/cb", "short", "plain", strings.Repeat("s", 16)},
		{"http://127.0.0.1:9/cb", strings.Repeat("c", 43), "S256", "<script>alert(1)</script>"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	idpURL := fr.lab.IdP.MetadataURL()
	f.Fuzz(func(t *testing.T, redirect, challenge, method, state string) {
		q := url.Values{"redirect_uri": {redirect}, "code_challenge": {challenge}, "code_challenge_method": {method}, "state": {state}}
		x := fr.serve(fr.request("GET", api.PathLoginCLI+"?"+q.Encode(), "", nil))
		fr.judge(t, x, false)
		want := loopback(redirect) && method == "S256" && base64url(challenge, 43, 43) && base64url(state, 16, 128)
		switch {
		case x.status == http.StatusFound && want:
			to, err := url.Parse(x.header.Get("Location"))
			if err != nil || !strings.HasPrefix(idpURL, to.Scheme+"://"+to.Host+"/") {
				t.Fatalf("the sign-in went to %q, not the IdP", x.header.Get("Location"))
			}
		case x.status == http.StatusBadRequest && !want:
			if x.header.Get("Location") != "" {
				t.Fatalf("a refused link redirects to %q", x.header.Get("Location"))
			}
			if page := resultOf(x.body); strings.ContainsAny(page, "<>") {
				t.Fatalf("the page carries markup from the link: %s", x.body)
			}
		default:
			t.Fatalf("redirect_uri %q, challenge %q, method %q, state %q: %s; want a sign-in %v", redirect, challenge, method, state, x, want)
		}
	})
}

// loopback is the CLI redirect rule, written with net/netip.
func loopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#") {
		return false
	}
	ap, err := netip.ParseAddrPort(u.Host)
	return err == nil && ap.Addr().Zone() == "" && ap.Addr().Unmap().IsLoopback() && ap.Port() > 0 && strconv.Itoa(int(ap.Port())) == u.Port()
}

// base64url says whether s is min to max characters of A-Z a-z 0-9 - _.
func base64url(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// resultOf is the sentence of a service page.
func resultOf(page []byte) string {
	_, after, _ := strings.Cut(string(page), `<p id="result">`)
	sentence, _, _ := strings.Cut(after, "</p>")
	return sentence
}

// FuzzACS posts arbitrary IdP answers to the ACS: for a sign-in the
// service has pending (fresh), or under any RelayState; or (signed) a
// real, unspent answer the IdP signed for another pending sign-in. None is
// the IdP's answer to the sign-in it names, so none signs anyone in; each
// is refused with a page that carries no markup of its.
func FuzzACS(f *testing.F) {
	fr := startFuzzRig(f)
	// A real signed answer, spent here, so that it is known and refused.
	acs, form, err := idp.SignedAnswer(context.Background(), noRedirects(), fr.url+"/saml/login", "alice", "alice-lab")
	if err != nil {
		f.Fatal(err)
	}
	if resp, err := noRedirects().PostForm(acs, form); err != nil || resp.StatusCode != http.StatusOK {
		f.Fatalf("the seed answer does not sign in: %v", err)
	}
	f.Add(true, false, form.Get("RelayState"), form.Get("SAMLResponse"), "")
	f.Add(false, false, form.Get("RelayState"), form.Get("SAMLResponse"), "")
	f.Add(true, true, "", "", "")
	f.Add(true, false, "", "PHNhbWxwOlJlc3BvbnNlLz4=", "")
	f.Add(true, false, "", "not base64!", "")
	f.Add(true, false, "", "", "")
	f.Add(false, false, strings.Repeat("r", 129), "", "")
	f.Add(true, false, "", "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "SAMLResponse=x&RelayState=y")
	f.Fuzz(func(t *testing.T, fresh, signed bool, relay, samlResponse, extra string) {
		if signed {
			_, answer, err := idp.SignedAnswer(context.Background(), noRedirects(), fr.url+"/saml/login", "alice", "alice-lab")
			if err != nil {
				t.Fatal(err)
			}
			samlResponse, fresh = answer.Get("SAMLResponse"), true
		}
		if fresh {
			x := fr.serve(fr.request("GET", api.PathSAMLLogin, "", nil))
			to, err := url.Parse(x.header.Get("Location"))
			if x.status != http.StatusFound || err != nil {
				t.Fatalf("starting a sign-in: %s", x)
			}
			relay = to.Query().Get("RelayState")
		}
		form := url.Values{"RelayState": {relay}, "SAMLResponse": {samlResponse}}.Encode()
		if extra != "" {
			form += "&" + extra
		}
		r := fr.request("POST", api.PathSAMLACS, "", []byte(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		x := fr.serve(r)
		fr.judge(t, x, false)
		if x.status != http.StatusBadRequest && x.status != http.StatusForbidden {
			t.Fatalf("%s: want the answer refused (400 or 403): %s", x, x.body)
		}
		if len(x.header.Values("Set-Cookie")) > 0 || x.header.Get("Location") != "" {
			t.Fatalf("a refused answer set %q and sent the browser to %q", x.header.Values("Set-Cookie"), x.header.Get("Location"))
		}
		if page := resultOf(x.body); page == "" || strings.ContainsAny(page, "<>") {
			t.Fatalf("the page must say why, with no markup from the answer: %s", x.body)
		}
	})
}

// FuzzLoginCode trades a real login code and its verifier, each either
// as issued or changed by the fuzzer. A token comes back exactly when both
// are the ones issued, and every code is good once.
func FuzzLoginCode(f *testing.F) {
	fr := startFuzzRig(f)
	f.Add(uint8(0), "", "")
	f.Add(uint8(0), "", "x")
	f.Add(uint8(1), "A", "")
	f.Add(uint8(2), "ppc_"+strings.Repeat("A", 43), strings.Repeat("v", 43))
	f.Add(uint8(2), "alice", "v")
	f.Fuzz(func(t *testing.T, codeMode uint8, codeText, verifierText string) {
		realCode, realVerifier := fr.loginCode(t, "alice")
		code := realCode
		switch codeMode % 3 {
		case 1:
			code += codeText
		case 2:
			code = codeText
		}
		verifier := realVerifier + verifierText
		body, _ := json.Marshal(api.LoginCode{Code: code, Verifier: verifier})
		x := fr.serve(fr.request("POST", api.PathLoginCode, "", body))
		fr.judge(t, x, false, realCode, realVerifier)
		good := code == realCode && verifier == realVerifier
		switch {
		case good && x.status != http.StatusOK:
			t.Fatalf("the issued code and verifier: %s %s", x, x.body)
		case !good && x.status == http.StatusOK:
			t.Fatalf("code %q, verifier %q traded for a token", code, verifier)
		case good:
			// Spent: the same again is refused.
			again := fr.serve(fr.request("POST", api.PathLoginCode, "", body))
			fr.judge(t, again, false, realCode, realVerifier)
			if again.status != http.StatusUnauthorized {
				t.Fatalf("a code traded twice: %s", again)
			}
		}
	})
}

// FuzzListQueries sends arbitrary queries to the routes that filter:
// requests, targets, audit. Bad filters are refused naming the parameter.
func FuzzListQueries(f *testing.F) {
	fr := startFuzzRig(f)
	routes := []string{api.PathRequests, api.PathTargets, api.PathAudit}
	for i, q := range []string{"state=forever", "all=true&state=revoked", "tag=Env", "tag=Env=scale&platform=Linux&ping_status=Online",
		"platform=Plan9", "since=yesterday", "since=2026-12-06T09:00:00Z&until=2026-12-07T09:00:00Z&person=carol", "%zz", "request=" + fr.id} {
		f.Add(uint8(i), q)
	}
	f.Fuzz(func(t *testing.T, which uint8, query string) {
		route := routes[int(which)%len(routes)]
		x := fr.serve(fr.request("GET", route+"?"+query, "Bearer "+fr.carol, nil))
		fr.judge(t, x, false)
		if x.status != http.StatusOK && x.status != http.StatusBadRequest {
			t.Fatalf("%s: %s", x, redacted(x.body))
		}
	})
}
