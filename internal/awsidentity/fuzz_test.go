package awsidentity

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// FuzzCheckLogin feeds the login decoder and checker arbitrary logins. It
// must never panic, refuse only with a *RefusedError on one line, and let
// through only a POST of the one body with the service's ID, Host and a
// fresh date, all signed.
func FuzzCheckLogin(f *testing.F) {
	endpoint, _ := url.Parse("https://sts.us-east-1.amazonaws.com/")
	now := time.Date(2026, 1, 24, 12, 0, 0, 0, time.UTC)
	rules := loginRules{endpoint: endpoint, region: "us-east-1", serverID: testServerID, now: now, maxAge: DefaultMaxAge}

	seed := rawLogin{url: endpoint.String(), region: "us-east-1", at: now}.sign(f, testCredentials(f))
	if _, err := rules.check(seed); err != nil {
		f.Fatalf("the seed login is refused, so no accepted login is fuzzed: %v", err)
	}
	headers, _ := json.Marshal(seed.Headers)
	f.Add(seed.Method, seed.URL, string(headers), seed.Body)
	f.Add("POST", seed.URL, `{"Authorization":["AWS4-HMAC-SHA256 Credential=a/20260124/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-passport-server-id, Signature=`+strings.Repeat("0", 64)+`"],"Host":["sts.us-east-1.amazonaws.com:443"],"X-Amz-Date":["20260124T120000Z"],"x-passport-server-id":["`+testServerID+`"],"Content-Type":["application/x-www-form-urlencoded"]}`, base64.StdEncoding.EncodeToString([]byte("Version=2011-06-15&Action=GetCallerIdentity")))
	f.Add("GET", "http://[::1", `{"host":["a"],"Host":["b"]}`, "%%%")

	f.Fuzz(func(t *testing.T, method, rawURL, headerJSON, body string) {
		var h map[string][]string
		if json.Unmarshal([]byte(headerJSON), &h) != nil {
			return
		}
		login := api.AWSLogin{Method: method, URL: rawURL, Headers: h, Body: body}
		got, err := rules.check(login)
		if err != nil {
			var r *RefusedError
			if !errors.As(err, &r) || r.Reason == "" || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("refusal %T %q is not a one-line *RefusedError", err, err)
			}
			if sig := signatureOf(login); len(sig) >= 16 && strings.Contains(err.Error(), sig) {
				t.Fatalf("refusal repeats the signature: %q", err)
			}
			return
		}
		if method != "POST" || string(got.body) != callerIdentityBody && string(got.body) != "Version=2011-06-15&Action=GetCallerIdentity" {
			t.Fatalf("accepted %s with body %q", method, got.body)
		}
		if canonicalHost("https", got.host) != "sts.us-east-1.amazonaws.com" {
			t.Fatalf("accepted the host %q", got.host)
		}
		if got.header.Get(ServerIDHeader) != testServerID {
			t.Fatalf("accepted the server id %q", got.header.Get(ServerIDHeader))
		}
		if d := now.Sub(got.signedAt); d > DefaultMaxAge || d < -DefaultMaxAge {
			t.Fatalf("accepted a login signed at %v", got.signedAt)
		}
		sig, err := parseAuthorization(got.header.Get("Authorization"))
		if err != nil {
			t.Fatalf("accepted an Authorization it cannot parse: %v", err)
		}
		for _, name := range []string{"host", "x-amz-date", "x-passport-server-id"} {
			if !slices.Contains(sig.signedHeaders, name) {
				t.Fatalf("accepted a login that does not sign %s", name)
			}
		}
		for key := range got.header {
			if key != "Authorization" && !slices.Contains(sig.signedHeaders, strings.ToLower(key)) {
				t.Fatalf("would send the unsigned header %s on to STS", key)
			}
		}
	})
}

// FuzzReadAnswer feeds the STS answer parser arbitrary answers. It must
// never panic, name a caller only from a 200 with an Arn, Account and
// UserId, and otherwise fail with one of its two error types, on one line
// and without the secrets it was given.
func FuzzReadAnswer(f *testing.F) {
	f.Add(200, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/ci</Arn><UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`)
	f.Add(403, `<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>bad s3cr3t-token-value
canonical s3cr3t-token-value</Message></Error></ErrorResponse>`)
	f.Add(503, `<ErrorResponse><Error><Code>"evil"
code</Code><Message>&#10;&#13;x</Message></Error></ErrorResponse>`)
	f.Add(200, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><GetCallerIdentityResponse>&a;</GetCallerIdentityResponse>`)
	const secret = "s3cr3t-token-value"
	f.Fuzz(func(t *testing.T, status int, body string) {
		caller, err := readAnswer("https://sts.example", status, []byte(body), secret)
		if err == nil {
			if status != http.StatusOK || caller.ARN == "" || caller.Account == "" || caller.UserID == "" {
				t.Fatalf("HTTP %d answer read as caller %+v", status, caller)
			}
			return
		}
		var r *RefusedError
		var u *UpstreamError
		if !errors.As(err, &r) && !errors.As(err, &u) {
			t.Fatalf("error %T %v is neither a refusal nor STS's failure", err, err)
		}
		if r != nil && (status < 400 || status >= 500) {
			t.Fatalf("HTTP %d refused the caller: %v", status, err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") || strings.Contains(err.Error(), secret) {
			t.Fatalf("error is not one line without the secret: %q", err)
		}
	})
}
