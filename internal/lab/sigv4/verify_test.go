package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testKey    = "AKIDLABTEST0000000001"
	testSecret = "lab-secret-0123456789abcdefghijklmnopqrs"
	tempKey    = "ASIALABTEMP000000001"
	expiredKey = "ASIALABTEMP000000002"
	tempToken  = "FwoGZXIvYXdzEBYaDLabSessionToken"
)

var now = time.Date(2026, 1, 24, 2, 30, 0, 0, time.UTC)

// verifyServer answers 200 with the signer's access key, or 403 with the
// refusal's code and message, so tests see what a client on the wire sees.
func verifyServer(t *testing.T) *httptest.Server {
	t.Helper()
	v := &Verifier{
		Region:  "us-east-1",
		Service: "ssm",
		Credential: func(id string) (Credential, bool) {
			switch id {
			case testKey:
				return Credential{Secret: testSecret}, true
			case tempKey:
				return Credential{Secret: testSecret, SessionToken: tempToken, Expires: now.Add(time.Hour)}, true
			case expiredKey:
				return Credential{Secret: testSecret, SessionToken: tempToken, Expires: now}, true
			}
			return Credential{}, false
		},
		Now: func() time.Time { return now },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key, err := v.Verify(r, body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("Verify returned %T, want *Error", err)
			}
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, err.Error())
			return
		}
		io.WriteString(w, key)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type signed struct {
	path    string
	body    string
	key     string
	secret  string
	token   string
	region  string
	service string
	at      time.Time
	header  http.Header
	// tamper changes the request after signing, as an attacker on the path would.
	tamper func(r *http.Request)
}

// send signs a request with the SDK's own signer and sends it.
func send(t *testing.T, srv *httptest.Server, s signed) (int, string) {
	t.Helper()
	if s.path == "" {
		s.path = "/"
	}
	if s.body == "" {
		s.body = `{"InstanceIds":["i-0123456789abcdef0"]}`
	}
	if s.key == "" {
		s.key, s.secret = testKey, testSecret
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.service == "" {
		s.service = "ssm"
	}
	if s.at.IsZero() {
		s.at = now
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+s.path, strings.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.DescribeInstanceInformation")
	for k, vs := range s.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	sum := sha256.Sum256([]byte(s.body))
	creds := aws.Credentials{AccessKeyID: s.key, SecretAccessKey: s.secret, SessionToken: s.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), s.service, s.region, s.at); err != nil {
		t.Fatal(err)
	}
	if s.tamper != nil {
		s.tamper(req)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func TestVerifyAcceptsSDKSignatures(t *testing.T) {
	srv := verifyServer(t)
	tests := []struct {
		name string
		req  signed
	}{
		{"plain", signed{}},
		{"empty body", signed{body: "{}"}},
		{"path and query need escaping", signed{path: "/v1/a%20b/c~d?b=2&a=x%2Fy&a=x-y&sp=a%20b&empty="}},
		{"repeated and spaced header values", signed{header: http.Header{"X-Amz-Meta": {"  one   two ", "three"}}}},
		{"content sha header", signed{header: http.Header{"X-Amz-Content-Sha256": {sha(`{"InstanceIds":["i-0123456789abcdef0"]}`)}}}},
		{"clock skew just inside 5 minutes", signed{at: now.Add(-4*time.Minute - 50*time.Second)}},
		{"clock ahead just inside 5 minutes", signed{at: now.Add(4*time.Minute + 50*time.Second)}},
		{"temporary credentials with their token", signed{key: tempKey, secret: testSecret, token: tempToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := send(t, srv, tt.req)
			want := testKey
			if tt.req.key != "" {
				want = tt.req.key
			}
			if code != http.StatusOK || body != want {
				t.Fatalf("got %d %q, want 200 %q", code, body, want)
			}
		})
	}
}

func TestVerifyRefusesTamperedRequests(t *testing.T) {
	srv := verifyServer(t)
	tests := []struct {
		name     string
		req      signed
		wantCode string
		wantMsg  string
	}{
		{"tampered body", signed{tamper: func(r *http.Request) {
			body := `{"InstanceIds":["i-0fffffffffffffff0"]}`
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		}}, CodeInvalidSignature, "signature we calculated does not match"},
		{"tampered signed header", signed{tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "AmazonSSM.SendCommand")
		}}, CodeInvalidSignature, "does not match"},
		{"tampered date", signed{tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", now.Add(time.Minute).Format(timeFormat))
		}}, CodeInvalidSignature, "does not match"},
		{"tampered query", signed{path: "/?a=1", tamper: func(r *http.Request) {
			r.URL.RawQuery = "a=2"
		}}, CodeInvalidSignature, "does not match"},
		{"wrong secret", signed{key: testKey, secret: "not-the-secret"}, CodeInvalidSignature, "does not match"},
		{"unknown access key", signed{key: "AKIDUNKNOWN", secret: testSecret}, CodeUnrecognizedClient, "The security token included in the request is invalid."},
		{"temporary credentials without their token", signed{key: tempKey, secret: testSecret}, CodeUnrecognizedClient, "security token included in the request is invalid"},
		{"temporary credentials with another token", signed{key: tempKey, secret: testSecret, token: "forged"}, CodeUnrecognizedClient, "security token included in the request is invalid"},
		{"long-term key with a token", signed{key: testKey, secret: testSecret, token: tempToken}, CodeUnrecognizedClient, "security token included in the request is invalid"},
		{"expired temporary credentials", signed{key: expiredKey, secret: testSecret, token: tempToken}, CodeExpiredToken, "The security token included in the request is expired"},
		{"expired", signed{at: now.Add(-6 * time.Minute)}, CodeInvalidSignature, "Signature expired: 20260124T022400Z is now earlier than 20260124T022500Z (20260124T023000Z - 5 min.)"},
		{"from the future", signed{at: now.Add(6 * time.Minute)}, CodeInvalidSignature, "Signature not yet current"},
		{"wrong region", signed{region: "eu-west-1"}, CodeInvalidSignature, "Credential should be scoped to a valid region, not 'eu-west-1'."},
		{"wrong service", signed{service: "kms"}, CodeInvalidSignature, "Credential should be scoped to correct service: 'ssm'."},
		{"lying content sha", signed{header: http.Header{"X-Amz-Content-Sha256": {sha("something else")}}}, CodeInvalidSignature, "x-amz-content-sha256"},
		{"no authorization", signed{tamper: func(r *http.Request) {
			r.Header.Del("Authorization")
		}}, CodeMissingAuthenticationToken, "Missing Authentication Token"},
		{"no date", signed{tamper: func(r *http.Request) {
			r.Header.Del("X-Amz-Date")
		}}, CodeIncompleteSignature, "'X-Amz-Date' or a 'Date' header"},
		{"host not signed", signed{tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";host;", ";", 1))
		}}, CodeIncompleteSignature, "'Host' must be a 'SignedHeader'"},
		{"two authorization headers", signed{tamper: func(r *http.Request) {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
		}}, CodeIncompleteSignature, "Only one Authorization header"},
		{"scope date differs from request date", signed{tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", now.Add(-24*time.Hour).Format(timeFormat))
		}}, CodeInvalidSignature, "Date in Credential scope does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := send(t, srv, tt.req)
			if code != http.StatusForbidden {
				t.Fatalf("got %d %q, want the request refused", code, body)
			}
			if !strings.HasPrefix(body, tt.wantCode+": ") || !strings.Contains(body, tt.wantMsg) {
				t.Fatalf("got %q, want %s containing %q", body, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(body, testSecret) {
				t.Fatalf("refusal %q reveals the secret", body)
			}
		})
	}
}

func TestParseAuthorizationRefusesMalformedHeaders(t *testing.T) {
	const sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const cred = "Credential=AKID/20260124/us-east-1/ssm/aws4_request"
	tests := []struct {
		name, header, want string
	}{
		{"empty", "", "Unsupported AWS 'algorithm'"},
		{"other algorithm", "AWS4-HMAC-SHA1 " + cred, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'"},
		{"sigv2", "AWS AKID:c2ln", "Unsupported AWS 'algorithm'"},
		{"algorithm only", "AWS4-HMAC-SHA256", "requires 'Credential', 'SignedHeaders' and 'Signature'"},
		{"no signature", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host", "requires 'Signature' parameter"},
		{"no signed headers", "AWS4-HMAC-SHA256 " + cred + ", Signature=" + sig, "requires 'SignedHeaders' parameter"},
		{"no credential", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + sig, "requires 'Credential' parameter"},
		{"repeated parameter", "AWS4-HMAC-SHA256 " + cred + ", " + cred + ", SignedHeaders=host, Signature=" + sig, "repeats the 'Credential'"},
		{"unknown parameter", "AWS4-HMAC-SHA256 " + cred + ", Foo=bar, SignedHeaders=host, Signature=" + sig, "unknown parameter 'Foo'"},
		{"not key=value", "AWS4-HMAC-SHA256 " + cred + ", junk, SignedHeaders=host, Signature=" + sig, "not a key=value pair"},
		{"short scope", "AWS4-HMAC-SHA256 Credential=AKID/20260124/us-east-1/ssm, SignedHeaders=host, Signature=" + sig, "exactly 5 slash-delimited"},
		{"long scope", "AWS4-HMAC-SHA256 Credential=AKID/20260124/us-east-1/ssm/aws4_request/x, SignedHeaders=host, Signature=" + sig, "exactly 5 slash-delimited"},
		{"bad terminator", "AWS4-HMAC-SHA256 Credential=AKID/20260124/us-east-1/ssm/aws5_request, SignedHeaders=host, Signature=" + sig, "valid terminator"},
		{"bad date", "AWS4-HMAC-SHA256 Credential=AKID/2026-01-24/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=" + sig, "yyyyMMdd"},
		{"empty key", "AWS4-HMAC-SHA256 Credential=/20260124/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=" + sig, "empty access key"},
		{"empty signed headers", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=, Signature=" + sig, "non-empty 'SignedHeaders'"},
		{"upper-case signed header", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=Host, Signature=" + sig, "lower-case"},
		{"unsorted signed headers", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=x-amz-date;host, Signature=" + sig, "sorted and unique"},
		{"duplicate signed headers", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;host, Signature=" + sig, "sorted and unique"},
		{"empty signed header", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;;x, Signature=" + sig, "lower-case"},
		{"short signature", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host, Signature=abc", "64 lower-case hexadecimal"},
		{"upper-case signature", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host, Signature=" + strings.ToUpper(sig), "64 lower-case hexadecimal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAuthorization(tt.header)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeIncompleteSignature {
				t.Fatalf("got %v, want %s", err, CodeIncompleteSignature)
			}
			if !strings.Contains(e.Message, tt.want) {
				t.Fatalf("message %q does not contain %q", e.Message, tt.want)
			}
			if strings.Contains(e.Message, sig) {
				t.Fatalf("message %q repeats the signature", e.Message)
			}
		})
	}
}

func TestParseAuthorizationReadsEveryField(t *testing.T) {
	const sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	a, err := ParseAuthorization("AWS4-HMAC-SHA256 Credential=AKID/20260124/us-east-1/ssm/aws4_request,SignedHeaders=content-type;host;x-amz-date,  Signature=" + sig)
	if err != nil {
		t.Fatal(err)
	}
	want := Authorization{AccessKeyID: "AKID", Date: "20260124", Region: "us-east-1", Service: "ssm",
		SignedHeaders: []string{"content-type", "host", "x-amz-date"}, Signature: sig}
	if a.AccessKeyID != want.AccessKeyID || a.Scope() != want.Scope() || a.Signature != want.Signature ||
		strings.Join(a.SignedHeaders, ";") != strings.Join(want.SignedHeaders, ";") {
		t.Fatalf("got %+v, want %+v", a, want)
	}
}

// FuzzParseAuthorization checks that no header crashes the parser and that
// whatever it accepts is well-formed enough to be used in a canonical request.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20260124/us-east-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=;, Signature=")
	f.Add("AWS4-HMAC-SHA256 ,,,===")
	f.Add("AWS4-HMAC-SHA256 Credential=A/20260124/r/s/aws4_request,Credential=x")
	f.Add("\x00\xff")
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseAuthorization(header)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeIncompleteSignature {
				t.Fatalf("error %v is not an IncompleteSignatureException", err)
			}
			return
		}
		if a.AccessKeyID == "" || a.Region == "" || a.Service == "" || len(a.Date) != 8 || len(a.Signature) != 64 {
			t.Fatalf("accepted incomplete authorization %+v from %q", a, header)
		}
		for _, h := range a.SignedHeaders {
			if h == "" || strings.ContainsAny(h, ";: \t") || strings.ToLower(h) != h {
				t.Fatalf("accepted signed header %q from %q", h, header)
			}
		}
		if strings.Contains(a.AccessKeyID+a.Region+a.Service, "/") {
			t.Fatalf("scope element contains a slash: %+v", a)
		}
	})
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestSkewDependsOnTheService: STS and EC2 take a signing time up to 15
// minutes off, the JSON services 5, and a refusal for skew says so.
func TestSkewDependsOnTheService(t *testing.T) {
	for _, tt := range []struct {
		service string
		off     time.Duration
		ok      bool
	}{
		{"ssm", -4*time.Minute - 50*time.Second, true},
		{"kms", -5*time.Minute - 10*time.Second, false},
		{"sts", -14*time.Minute - 50*time.Second, true},
		{"ec2", 14*time.Minute + 50*time.Second, true},
		{"sts", -15*time.Minute - 10*time.Second, false},
		{"ec2", 15*time.Minute + 10*time.Second, false},
	} {
		v := &Verifier{Region: "us-east-1", Service: tt.service, Now: func() time.Time { return now },
			Credential: func(string) (Credential, bool) { return Credential{Secret: testSecret}, true }}
		req := httptest.NewRequest(http.MethodPost, "http://lab.test/", strings.NewReader("Action=GetCallerIdentity"))
		sum := sha256.Sum256([]byte("Action=GetCallerIdentity"))
		creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), tt.service, "us-east-1", now.Add(tt.off)); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(req, []byte("Action=GetCallerIdentity"))
		var e *Error
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s signed %v off: %v; want it accepted", tt.service, tt.off, err)
		case !tt.ok && (!errors.As(err, &e) || !e.Expired || !strings.Contains(e.Message, fmt.Sprintf("%d min.", int(SkewFor(tt.service)/time.Minute)))):
			t.Errorf("%s signed %v off: %v; want it refused as expired, naming the service's skew", tt.service, tt.off, err)
		}
	}
}
