package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// FuzzDecodeError feeds the client's reading of failed answers arbitrary
// statuses and bodies: the service's own error bodies, a proxy's page,
// nothing at all. Whatever comes back is an *Error that errors.As finds as
// an *api.Error with a code and the status; it carries the service's code
// and message when the body is the service's error body, and never repeats
// a body that is not (a proxy's page may hold anything).
func FuzzDecodeError(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{400, `{"error":{"code":"invalid","field":"duration","message":"duration \"forever\" is not a duration: write it like 45m, 2h or 1h30m"}}`},
		{401, `{"error":{"code":"unauthenticated","message":"sign in first"}}`},
		{403, `{"error":{"code":"denied","message":"cross-origin request refused"}}`},
		{404, `{"error":{"code":"no_route","message":"there is no /v1/nothing"}}`},
		{413, `{"error":{"code":"too_large","message":"the body is larger than the 65536 bytes this service accepts"}}`},
		{502, `{"error":{"code":"host_failure","message":"1 target of 1 failed"},"request":{"id":"ar-0123456789abcdef","state":"revoking","targets":[{"instance_id":"i-1","platform":"Linux","status":"active"}]}}`},
		{502, `<html><body>Bad Gateway ppt_secretsecret</body></html>`},
		{500, ``}, {429, `{"error":null}`}, {409, `{"error":{"code":""}}`}, {400, `{"error":{"code":7}}`}, {400, `[]`}, {0, `{}`}, {999, `{"error":{}}`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		err := decodeError(status, raw)
		var e *Error
		var ae *api.Error
		if !errors.As(err, &e) || !errors.As(err, &ae) || e.Err != ae {
			t.Fatalf("decodeError(%d, %q) = %T %v; want an *Error wrapping an *api.Error", status, raw, err, err)
		}
		if ae.Code == "" || ae.Message == "" || ae.Status != status || CodeOf(err) != ae.Code {
			t.Fatalf("decodeError(%d, %q): code %q, message %q, status %d", status, raw, ae.Code, ae.Message, ae.Status)
		}
		// Judged with a decoder of its own: is this the service's error body?
		var body map[string]json.RawMessage
		var inner struct {
			Code    *string `json:"code"`
			Message string  `json:"message"`
		}
		ok := json.Unmarshal(raw, &body) == nil && json.Unmarshal(body["error"], &inner) == nil && inner.Code != nil && *inner.Code != ""
		if ok {
			if ae.Code != *inner.Code || inner.Message != "" && ae.Message != inner.Message {
				t.Fatalf("the service's error %q %q came back as %q %q", *inner.Code, inner.Message, ae.Code, ae.Message)
			}
			return
		}
		if e.Request != nil {
			t.Fatalf("an answer without the service's error body gave a request: %+v", e.Request)
		}
		if want := codeFor(status); ae.Code != want {
			t.Fatalf("status %d without an error body gave code %q, want %q", status, ae.Code, want)
		}
		if len(raw) >= 4 && strings.Contains(ae.Message, string(raw)) {
			t.Fatalf("the message repeats a body that is not the service's: %q", ae.Message)
		}
		if !strings.Contains(ae.Message, http.StatusText(status)) {
			t.Fatalf("the message %q does not name the status %d", ae.Message, status)
		}
	})
}
