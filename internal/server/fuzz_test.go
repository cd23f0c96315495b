package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// bodyTypes are the request bodies the service reads, by route.
var bodyTypes = []struct {
	route string
	new   func() any
}{
	{"POST /v1/requests", func() any { return new(api.CreateRequest) }},
	{"POST /v1/requests/{id}/extend", func() any { return new(api.ExtendRequest) }},
	{"PUT /v1/requests/{id}/targets", func() any { return new(api.TargetsRequest) }},
	{"POST /v1/requests/{id}/sessions", func() any { return new(api.SessionRequest) }},
	{"POST /v1/requests/{id}/approve", func() any { return new(api.Decision) }},
	{"POST /v1/requests/{id}/review", func() any { return new(api.Decision) }},
	{"POST /v1/login/token", func() any { return new(api.LoginCode) }},
	{"POST /v1/login/aws", func() any { return new(api.AWSLogin) }},
}

// readSeeds are bodies from the bad-input suite (internal/service's
// badcallers_test.go) and good ones of each type.
var readSeeds = []string{
	`{"targets":["i-0123456789abcdef0"],"reason":"INC-7 look at the disk","public_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC0"}`,
	`{"targets":["i-0123456789abcdef0"],"reason":"INC-7","public_key":"k","requester":"carol"}`,
	`{"targets":["i-0123456789abcdef0"],"reason":"INC-7","public_key":"k","duration":7200}`,
	`{"targets":["i-0123456789abcdef0"],"reason":"INC-7","public_key":"k"}{}`,
	`{"tags":{"Env":"staging"},"reason":"INC-7","sudo":true,"public_key":"k","password_key":"$$$","certificate_authority":"other"}`,
	`{"duration":"2h"}`, `{"duration":"forever"}`, `{"targets":[]}`, `{"targets":["i-$(id)"],"password_key":"MIIB"}`,
	`{"comment":"INC-7 is real"}`, `{"comment":5}`, `{}`,
	`{"target":"i-0123456789abcdef0","kind":"ssh"}`, `{"target":"i-1","kind":"port","port":3389}`, `{"kind":"telnet","port":-1}`,
	`{"code":"ppc_` + strings.Repeat("A", 43) + `","verifier":"` + strings.Repeat("v", 43) + `"}`, `{"code":"alice","verifier":"v"}`,
	`{"method":"POST","url":"https://sts.amazonaws.com/","headers":{"X-Amz-Date":["20260124T120000Z"]},"body":"QQ=="}`,
	"reason=yes", "", "null", "[]", `"x"`, `{"Public_Key":"k"}`, `{"targets":{"a":1}}`, `{"tags":{"k":7}}`, "{\"reason\":\"\xff\"}",
}

// FuzzRead feeds read, the decoder of every JSON body the service takes,
// arbitrary bodies for each of its types. It must refuse with an API error
// (invalid or too_large, a short message, a field of the type) or decode
// exactly what encoding/json does, and accept nothing that is not JSON.
func FuzzRead(f *testing.F) {
	for i := range bodyTypes {
		for _, s := range readSeeds {
			f.Add(uint8(i), "application/json", []byte(s))
		}
	}
	f.Add(uint8(0), "application/x-www-form-urlencoded", []byte(`{"reason":"x"}`))
	f.Add(uint8(0), "application/json; charset=utf-8", []byte(`{"reason":"x"}`))
	f.Add(uint8(0), "", []byte(`{"reason":"x"}`))
	f.Fuzz(func(t *testing.T, which uint8, contentType string, body []byte) {
		bt := bodyTypes[int(which)%len(bodyTypes)]
		r := httptest.NewRequest("POST", "/", nil)
		w := httptest.NewRecorder()
		r.Body = http.MaxBytesReader(w, io.NopCloser(strings.NewReader(string(body))), DefaultMaxBody)
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		got := bt.new()
		err := read(r, got)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.code != api.CodeInvalid && ae.code != api.CodeTooLarge {
				t.Fatalf("%s: refusal %T %v is not an invalid or too_large API error", bt.route, err, err)
			}
			if ae.msg == "" || len(ae.msg) > 300 || strings.ContainsAny(ae.msg, "\r\n") {
				t.Fatalf("%s: refusal message %q must be one short line", bt.route, ae.msg)
			}
			if ae.code == api.CodeTooLarge && len(body) <= DefaultMaxBody {
				t.Fatalf("%s: a %d-byte body refused as too large", bt.route, len(body))
			}
			// The first JSON value's keys: read stops at the first error.
			var top map[string]json.RawMessage
			json.NewDecoder(bytes.NewReader(body)).Decode(&top)
			if _, sent := top[ae.field]; ae.field != "" && !isField(got, ae.field) && !sent {
				t.Fatalf("%s: refusal names %q, which is neither a field of %T nor one sent", bt.route, ae.field, got)
			}
			return
		}
		// What read accepted is JSON of the type, in a JSON content type,
		// and decodes the same with encoding/json on its own.
		if mt := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0])); contentType != "" && mt != "application/json" {
			t.Fatalf("%s: read a body sent as %q", bt.route, contentType)
		}
		if !json.Valid(body) {
			t.Fatalf("%s: read a body that is not JSON: %q", bt.route, body)
		}
		plain := bt.new()
		if err := json.Unmarshal(body, plain); err != nil || !reflect.DeepEqual(got, plain) {
			t.Fatalf("%s: read %+v, encoding/json %+v (%v)", bt.route, got, plain, err)
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) == nil {
			for k := range top {
				if !isField(got, k) {
					t.Fatalf("%s: read a body with the unknown field %q", bt.route, k)
				}
			}
		}
	})
}

// isField says whether name is exactly a JSON field of v's type; a type
// error names a nested field ("tags.Env"), which counts by its first part.
func isField(v any, name string) bool {
	name, _, _ = strings.Cut(name, ".")
	typ := reflect.TypeOf(v).Elem()
	for i := range typ.NumField() {
		if tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); tag == name {
			return true
		}
	}
	return false
}

// FuzzLoopbackRedirect feeds the CLI sign-in's redirect_uri check arbitrary
// URLs. Whatever it accepts must send the browser, and the login code, to
// a loopback address and a real port over plain http, with nothing
// attached: judged here with net/netip, not the net parsing it uses.
func FuzzLoopbackRedirect(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:9/callback", "http://[::1]:8080/cb", "http://127.0.0.2:1/", "http://localhost:9/cb",
		"https://evil.example/cb", "http://evil.example:80/cb", "http://127.0.0.1/cb", "http://user@127.0.0.1:9/cb",
		"http://127.0.0.1:9/cb?x=1", "http://127.0.0.1:9/cb#f", "javascript:alert(1)", "http://127.0.0.1:99999/cb",
		"http://[::ffff:127.0.0.1]:9/", "http://[::1%25eth0]:9/", "http://127.0.0.1:0/", "//127.0.0.1:9/", "http://0x7f000001:9/",
		"http://127.1:9/", "http://127.0.0.1:9@evil.example/", "http://127.0.0.1:+9/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := loopbackRedirect(raw)
		if err != nil {
			// A fixed sentence: nothing of the URL comes back.
			if !strings.HasPrefix(err.Error(), "redirect_uri must be ") || len(err.Error()) > 120 {
				t.Fatalf("the refusal %q is not one of the fixed sentences", err)
			}
			return
		}
		u, perr := url.Parse(got)
		if perr != nil || u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("accepted %q as %q: not plain http without user, query or fragment", raw, got)
		}
		host, port, ok := strings.Cut(u.Host, "]:")
		if ok {
			host = strings.TrimPrefix(host, "[")
		} else {
			i := strings.LastIndexByte(u.Host, ':')
			if i < 0 {
				t.Fatalf("accepted %q without a port", raw)
			}
			host, port = u.Host[:i], u.Host[i+1:]
		}
		addr, aerr := netip.ParseAddr(host)
		if aerr != nil || !addr.Unmap().IsLoopback() || addr.Zone() != "" {
			t.Fatalf("accepted %q: host %q is not a loopback address", raw, host)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			t.Fatalf("accepted %q: port %q is not a TCP port", raw, port)
		}
	})
}
