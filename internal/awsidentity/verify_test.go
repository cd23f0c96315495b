package awsidentity

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sigv4"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sts"
)

// Each of the lab's identities signs in as itself: the requester (an IAM
// user with no permission on the access path), the service (a session of
// its role) and the operator.
func TestVerifyNamesTheSigner(t *testing.T) {
	l := startLab(t)
	v := labVerifier(l)
	for _, c := range []struct {
		name  string
		creds lab.Credentials
		want  Identity
	}{
		{"requester", l.Requester, Identity{ARN: lab.RequesterARN, CallerARN: lab.RequesterARN, Account: lab.AccountID, UserID: "AIDA" + l.Requester.AccessKeyID[4:]}},
		{"service", l.Service, Identity{ARN: lab.ServiceRoleARN, CallerARN: lab.ServiceARN, SessionName: "passport", Account: lab.AccountID, UserID: "AROA" + l.Service.AccessKeyID[4:] + ":passport"}},
		{"operator", l.Operator, Identity{ARN: lab.OperatorARN, CallerARN: lab.OperatorARN, Account: lab.AccountID, UserID: "AIDA" + l.Operator.AccessKeyID[4:]}},
	} {
		id, err := v.Verify(context.Background(), sign(t, l.AWSConfigAs(c.creds), v))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if id != c.want {
			t.Errorf("%s: Verify = %+v, want %+v", c.name, id, c.want)
		}
	}
}

// Parallel jobs on one machine sign in within the same second with the
// same credentials; each login is its own, not a replay of the other.
func TestVerifyTwoLoginsInOneSecond(t *testing.T) {
	l := startLab(t)
	v := labVerifier(l)
	cfg := l.AWSConfigAs(l.Requester)
	first, second := sign(t, cfg, v), sign(t, cfg, v)
	if signatureOf(first) == signatureOf(second) {
		t.Fatal("two logins have the same signature")
	}
	for _, login := range []api.AWSLogin{first, second} {
		if _, err := v.Verify(context.Background(), login); err != nil {
			t.Fatal(err)
		}
	}
}

// A CI job's role session signs with temporary credentials: the session
// token travels signed, and policy sees the role, not the session.
func TestVerifyAssumedRoleIsItsRole(t *testing.T) {
	l := startLab(t)
	const key, secret, token = "ASIAEXAMPLEDEPLOY001", "deploy-secret", "deploy-session-token-FwoGZXIvYXdzE"
	l.Server.AddCredentials(key, sigv4.Credential{Secret: secret, SessionToken: token})
	l.STS.SetIdentity(key, sts.Identity{Arn: "arn:aws:sts::" + lab.AccountID + ":assumed-role/deploy/ci-run-42", UserID: "AROAEXAMPLEDEPLOY:ci-run-42", Account: lab.AccountID})

	v := labVerifier(l)
	cfg := aws.Config{Region: l.Region, Credentials: credentials.NewStaticCredentialsProvider(key, secret, token)}
	login := sign(t, cfg, v)
	if got := login.Headers["X-Amz-Security-Token"]; len(got) != 1 || got[0] != token {
		t.Fatalf("the login carries the session token %q, want %q", got, token)
	}
	id, err := v.Verify(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{
		ARN:         "arn:aws:iam::" + lab.AccountID + ":role/deploy",
		CallerARN:   "arn:aws:sts::" + lab.AccountID + ":assumed-role/deploy/ci-run-42",
		SessionName: "ci-run-42",
		Account:     lab.AccountID,
		UserID:      "AROAEXAMPLEDEPLOY:ci-run-42",
	}
	if id != want {
		t.Fatalf("Verify = %+v, want %+v", id, want)
	}
}

// refusal is one bad login and the reason it must be refused with.
type refusal struct {
	name string
	// login makes the bad login; v may be changed too.
	login func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin
	field string
	want  string // in the reason
}

func TestVerifyRefuses(t *testing.T) {
	l := startLab(t)
	creds := labCredentials(t, l)
	good := func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
		return sign(t, l.AWSConfigAs(l.Requester), v)
	}
	edited := func(edit func(*api.AWSLogin)) func(*testing.T, *lab.Lab, *Verifier) api.AWSLogin {
		return func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
			login := good(t, l, v)
			edit(&login)
			return login
		}
	}
	raw := func(o rawLogin) func(*testing.T, *lab.Lab, *Verifier) api.AWSLogin {
		return func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
			if o.url == "" {
				o.url = l.Endpoint
			}
			if o.region == "" {
				o.region = l.Region
			}
			return o.sign(t, creds)
		}
	}
	setAuthorization := func(value string) func(*api.AWSLogin) {
		return func(login *api.AWSLogin) { login.Headers["Authorization"] = []string{value} }
	}

	cases := []refusal{
		{name: "server id header missing", field: "headers.X-Passport-Server-ID", want: "there is no X-Passport-Server-ID header",
			login: raw(rawLogin{edit: func(r *http.Request) { r.Header.Del(ServerIDHeader) }})},
		{name: "server id of another service", field: "headers.X-Passport-Server-ID", want: `signed for another Passport service`,
			login: func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
				other := *v
				other.ServerID = "https://passport.other.example"
				return sign(t, l.AWSConfigAs(l.Requester), &other)
			}},
		{name: "server id header present but not signed", field: "headers.Authorization", want: "X-Passport-Server-ID is not among the signed headers",
			login: func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
				login := raw(rawLogin{edit: func(r *http.Request) { r.Header.Del(ServerIDHeader) }})(t, l, v)
				login.Headers[ServerIDHeader] = []string{testServerID}
				return login
			}},
		{name: "stale signing date", field: "headers.X-Amz-Date", want: "ago: sign a new one",
			login: func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
				c := &clock.Offset{}
				c.Advance(v.maxAge() + time.Minute)
				v.Now = c.Now
				return good(t, l, v)
			}},
		{name: "signing date in the future", field: "headers.X-Amz-Date", want: "from now: check the machine's clock",
			login: func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
				c := &clock.Offset{}
				c.Advance(-v.maxAge() - time.Minute)
				v.Now = c.Now
				return good(t, l, v)
			}},
		{name: "replay of a used login", field: "headers.Authorization", want: "has been used already",
			login: func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
				login := good(t, l, v)
				if _, err := v.Verify(context.Background(), login); err != nil {
					t.Fatalf("first use: %v", err)
				}
				return login
			}},
		{name: "another action", field: "body", want: `asks STS for "AssumeRole"`,
			login: raw(rawLogin{body: "Action=AssumeRole&Version=2011-06-15"})},
		{name: "extra form parameter", field: "body", want: `the parameter "RoleArn", which GetCallerIdentity does not take`,
			login: raw(rawLogin{body: "Action=GetCallerIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fadmin"})},
		{name: "action given twice", field: "body", want: "gives Action 2 times",
			login: raw(rawLogin{body: "Action=GetCallerIdentity&Action=AssumeRole&Version=2011-06-15"})},
		{name: "another API version", field: "body", want: `API version "2099-01-01"`,
			login: raw(rawLogin{body: "Action=GetCallerIdentity&Version=2099-01-01"})},
		{name: "GET", field: "method", want: `the method is "GET"`,
			login: edited(func(l *api.AWSLogin) { l.Method = http.MethodGet })},
		{name: "oversized body", field: "body", want: "a GetCallerIdentity body is 60",
			login: edited(func(l *api.AWSLogin) {
				l.Body = base64.StdEncoding.EncodeToString([]byte(callerIdentityBody + "&" + strings.Repeat("x", 4096)))
			})},
		{name: "body not base64", field: "body", want: "not standard padded base64",
			login: edited(func(l *api.AWSLogin) { l.Body = callerIdentityBody })},
		{name: "host of another endpoint", field: "headers.Host", want: `signed for the host "sts.amazonaws.com"`,
			login: func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
				login := raw(rawLogin{url: "https://sts.amazonaws.com"})(t, l, v)
				login.URL = l.Endpoint
				return login
			}},
		{name: "unsigned", field: "headers.Authorization", want: "the request is not signed",
			login: edited(func(l *api.AWSLogin) { delete(l.Headers, "Authorization") })},
		{name: "garbage authorization", field: "headers.Authorization", want: "does not start with AWS4-HMAC-SHA256",
			login: edited(setAuthorization("Bearer eyJhbGciOiJub25lIn0.e30."))},
		{name: "authorization without a signature", field: "headers.Authorization", want: "Signature is not 64 lower-case hex digits",
			login: edited(func(l *api.AWSLogin) {
				a := l.Headers["Authorization"][0]
				l.Headers["Authorization"] = []string{a[:strings.Index(a, ", Signature=")] + ", Signature=zz"}
			})},
		{name: "authorization given twice", field: "headers.Authorization", want: "given 2 times",
			login: edited(func(l *api.AWSLogin) {
				l.Headers["Authorization"] = append(l.Headers["Authorization"], l.Headers["Authorization"][0])
			})},
		{name: "x-amz-date left out of the signed headers", field: "headers.Authorization", want: "X-Amz-Date is not among the signed headers",
			login: edited(func(l *api.AWSLogin) {
				l.Headers["Authorization"][0] = strings.Replace(l.Headers["Authorization"][0], ";x-amz-date", "", 1)
			})},
		{name: "signed for another region", field: "headers.Authorization", want: `scoped to the region "us-west-2"`,
			login: raw(rawLogin{region: "us-west-2"})},
		{name: "signed for another service", field: "headers.Authorization", want: `scoped to the service "iam"`,
			login: raw(rawLogin{service: "iam"})},
		{name: "credential scope of another day", field: "headers.Authorization", want: "credential scope is dated",
			login: edited(func(l *api.AWSLogin) {
				l.Headers["X-Amz-Date"][0] = time.Now().UTC().Add(-24 * time.Hour).Format(amzDateFormat)
			})},
		{name: "url pointing elsewhere", field: "url", want: "but this service checks sign-ins with STS at",
			login: func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
				decoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					t.Errorf("the decoy a client named (standing in for any host it might choose) was called: %s %s", r.Method, r.URL)
				}))
				t.Cleanup(decoy.Close)
				login := good(t, l, v)
				login.URL = decoy.URL
				return login
			}},
		{name: "url that is not an endpoint", field: "url", want: "is not an http(s) URL",
			login: edited(func(l *api.AWSLogin) { l.URL = "file:///etc/passwd" })},
		{name: "tampered body", field: "sts", want: "SignatureDoesNotMatch",
			login: edited(func(l *api.AWSLogin) {
				l.Body = base64.StdEncoding.EncodeToString([]byte("Version=2011-06-15&Action=GetCallerIdentity"))
			})},
		{name: "tampered signed header", field: "sts", want: "SignatureDoesNotMatch",
			login: edited(func(l *api.AWSLogin) { l.Headers["Content-Type"] = []string{"application/x-www-form-urlencoded"} })},
		{name: "tampered content length", field: "headers.Content-Length", want: `Content-Length says "44"`,
			login: edited(func(l *api.AWSLogin) { l.Headers["Content-Length"] = []string{"44"} })},
		{name: "not a form", field: "headers.Content-Type", want: `Content-Type is "application/json"`,
			login: raw(rawLogin{edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }})},
		{name: "host named twice in two cases", field: "headers", want: "the header Host is given twice, in different cases",
			login: edited(func(l *api.AWSLogin) { l.Headers["host"] = []string{"127.0.0.1:1"} })},
		{name: "header with a line break", field: "headers.X-Amz-Date", want: "control character",
			login: edited(func(l *api.AWSLogin) { l.Headers["X-Amz-Date"][0] += "\r\nX-Injected: 1" })},
		{name: "too many headers", field: "headers", want: "a login has at most 32",
			login: edited(func(l *api.AWSLogin) {
				for i := range 40 {
					l.Headers["X-Filler-"+strings.Repeat("a", i+1)] = []string{"x"}
				}
			})},
		{name: "credentials STS does not know", field: "sts", want: "InvalidClientTokenId",
			login: func(t *testing.T, l *lab.Lab, v *Verifier) api.AWSLogin {
				return sign(t, aws.Config{Credentials: credentials.NewStaticCredentialsProvider("AKIAUNKNOWNUNKNOWN00", "nope", "")}, v)
			}},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d bad-input cases", len(cases))
	}

	reasons := map[string]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := labVerifier(l)
			login := c.login(t, l, v)
			id, err := v.Verify(context.Background(), login)
			var r *RefusedError
			if !errors.As(err, &r) {
				t.Fatalf("Verify = %+v, %v; want a *RefusedError", id, err)
			}
			if r.Field != c.field || !strings.Contains(r.Reason, c.want) {
				t.Fatalf("refused %s: %q\nwant %s: ...%s...", r.Field, r.Reason, c.field, c.want)
			}
			assertNoSecret(t, err.Error(), login, l.Requester.SecretAccessKey)
			if r.Field != "sts" {
				if other, ok := reasons[r.Reason]; ok {
					t.Errorf("%q gives the same reason as %q: %s", c.name, other, r.Reason)
				}
				reasons[r.Reason] = c.name
			}
		})
	}
}

// assertNoSecret fails if msg repeats the login's signature or session
// token, or secret.
func assertNoSecret(t *testing.T, msg string, login api.AWSLogin, secret string) {
	t.Helper()
	for _, s := range []string{secret, signatureOf(login), firstValue(login.Headers, "X-Amz-Security-Token")} {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("the error repeats a secret: %s", msg)
		}
	}
}

func signatureOf(login api.AWSLogin) string {
	_, sig, _ := strings.Cut(firstValue(login.Headers, "Authorization"), "Signature=")
	return sig
}

func firstValue(h map[string][]string, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// brokenSTS stands in for an STS endpoint that misbehaves; AWS's own
// cannot be made to. It counts the requests it gets.
type brokenSTS struct {
	*httptest.Server
	calls atomic.Int32
}

func newBrokenSTS(t *testing.T, h http.HandlerFunc) *brokenSTS {
	t.Helper()
	b := &brokenSTS{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		h(w, r)
	}))
	// A handler that hangs ends only when its connection does.
	t.Cleanup(func() { b.CloseClientConnections(); b.Close() })
	return b
}

// verifyAgainst signs a good login for a Verifier whose STS is endpoint.
func verifyAgainst(t *testing.T, endpoint string, cfg aws.Config, edit func(*Verifier)) (api.AWSLogin, error) {
	t.Helper()
	v := &Verifier{STSEndpoint: endpoint, Region: "us-east-1", ServerID: testServerID, Once: (&MemoryOnce{}).Use}
	if edit != nil {
		edit(v)
	}
	login := sign(t, cfg, v)
	_, err := v.Verify(context.Background(), login)
	return login, err
}

var testConfig = aws.Config{Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLEMACHINE01", "machine-secret", "machine-session-token")}

func TestVerifyBrokenSTS(t *testing.T) {
	xmlAnswer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	identity := func(arn, account string) string {
		return `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>` + arn +
			`</Arn><UserId>AIDAEXAMPLE</UserId><Account>` + account + `</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`
	}
	cases := []struct {
		name    string
		sts     http.HandlerFunc
		timeout time.Duration
		want    string // in the *UpstreamError's reason
	}{
		{name: "redirects", want: "answered with a redirect (HTTP 307",
			sts: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://169.254.169.254/latest/", http.StatusTemporaryRedirect)
			}},
		{name: "fails", want: `failed (HTTP 503): ServiceUnavailable: "try later"`,
			sts: xmlAnswer(503, `<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>try later</Message></Error></ErrorResponse>`)},
		{name: "throttles", want: `failed (HTTP 400): Throttling: "Rate exceeded"`,
			sts: xmlAnswer(400, `<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>`)},
		{name: "answers malformed XML", want: "not a GetCallerIdentityResponse",
			sts: xmlAnswer(200, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/x</Arn`)},
		{name: "answers another document", want: "not a GetCallerIdentityResponse",
			sts: xmlAnswer(200, `<html><body>captive portal</body></html>`)},
		{name: "answers no ARN", want: "without an Arn, Account or UserId",
			sts: xmlAnswer(200, identity("", "123456789012"))},
		{name: "answers an error that is not STS's", want: "answered HTTP 403 with a body that is not an STS error",
			sts: xmlAnswer(403, `Forbidden`)},
		{name: "answers an ARN that is no principal", want: "is not the ARN of an IAM or STS principal",
			sts: xmlAnswer(200, identity("arn:aws:s3:::bucket", "123456789012"))},
		{name: "answers another account", want: `the account "210987654321" for an ARN of another account`,
			sts: xmlAnswer(200, identity("arn:aws:iam::123456789012:user/ci", "210987654321"))},
		{name: "answers too much", want: "answered more than 65536 bytes",
			sts: xmlAnswer(200, identity("arn:aws:iam::123456789012:user/ci", "123456789012")+strings.Repeat(" ", 70000))},
		{name: "hangs", timeout: 100 * time.Millisecond, want: "did not answer within 100ms",
			sts: func(w http.ResponseWriter, r *http.Request) {
				// Go's server notices a client that hung up only once the body is read.
				io.Copy(io.Discard, r.Body)
				<-r.Context().Done()
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			broken := newBrokenSTS(t, c.sts)
			login, err := verifyAgainst(t, broken.URL, testConfig, func(v *Verifier) { v.Timeout = c.timeout })
			var u *UpstreamError
			if !errors.As(err, &u) || !strings.Contains(u.Reason, c.want) {
				t.Fatalf("Verify: %v\nwant an *UpstreamError saying ...%s...", err, c.want)
			}
			if !strings.Contains(u.Reason, broken.URL) {
				t.Errorf("the reason does not name the endpoint %s: %s", broken.URL, u.Reason)
			}
			if n := broken.calls.Load(); n != 1 {
				t.Errorf("the broken STS was called %d times, want once", n)
			}
			assertNoSecret(t, err.Error(), login, "machine-secret")
		})
	}
}

// A redirect is never followed: the target never sees the signed request.
func TestVerifyFollowsNoRedirect(t *testing.T) {
	target := newBrokenSTS(t, func(w http.ResponseWriter, r *http.Request) {})
	redirecting := newBrokenSTS(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	_, err := verifyAgainst(t, redirecting.URL, testConfig, nil)
	var u *UpstreamError
	if !errors.As(err, &u) {
		t.Fatalf("Verify: %v, want an *UpstreamError", err)
	}
	if n := target.calls.Load(); n != 0 {
		t.Fatalf("the redirect's target was called %d times", n)
	}
}

// STS's error message reaches the caller escaped, on one line, without
// the canonical request AWS appends (it holds the session token).
func TestVerifySTSErrorIsEscaped(t *testing.T) {
	var token string
	broken := newBrokenSTS(t, func(w http.ResponseWriter, r *http.Request) {
		token = r.Header.Get("X-Amz-Security-Token")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>` +
			`Sig &quot;bad&quot; &lt;b&gt;here&lt;/b&gt; ` + "\u202e" + `for ` + r.Header.Get("X-Amz-Security-Token") + `

The Canonical String for this request should have been
'POST
/

x-amz-security-token:` + r.Header.Get("X-Amz-Security-Token") + `'</Message></Error></ErrorResponse>`))
	})
	login, err := verifyAgainst(t, broken.URL, testConfig, nil)
	var r *RefusedError
	if !errors.As(err, &r) || r.Field != "sts" {
		t.Fatalf("Verify: %v, want a *RefusedError from STS", err)
	}
	const want = `STS did not accept the signed request: SignatureDoesNotMatch: "Sig \"bad\" <b>here</b> \u202efor [redacted]"`
	if r.Reason != want {
		t.Fatalf("reason:\n%s\nwant\n%s", r.Reason, want)
	}
	if token == "" || strings.Contains(err.Error(), token) || strings.ContainsAny(err.Error(), "\n\u202e") {
		t.Fatalf("the error is not one escaped line without the token %q: %q", token, err)
	}
	assertNoSecret(t, err.Error(), login, "machine-secret")
}

// The service's own failures are neither refusals nor STS's: a server
// answers them as its own.
func TestVerifyOnceStoreFailure(t *testing.T) {
	broken := newBrokenSTS(t, func(w http.ResponseWriter, r *http.Request) {})
	storeDown := errors.New("ledger unavailable")
	_, err := verifyAgainst(t, broken.URL, testConfig, func(v *Verifier) {
		v.Once = func(context.Context, string, time.Time) error { return storeDown }
	})
	var r *RefusedError
	var u *UpstreamError
	if !errors.Is(err, storeDown) || errors.As(err, &r) || errors.As(err, &u) {
		t.Fatalf("Verify: %v, want the store's own error", err)
	}
	if n := broken.calls.Load(); n != 0 {
		t.Fatalf("STS was asked %d times about a login whose one use could not be recorded", n)
	}
}

// The one-time-use key is the same for one login on every replica, and
// lasts exactly as long as the login could be accepted.
func TestVerifyOnceKey(t *testing.T) {
	var keys []string
	var untils []time.Time
	once := func(_ context.Context, key string, until time.Time) error {
		keys, untils = append(keys, key), append(untils, until)
		return nil
	}
	broken := newBrokenSTS(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/ci</Arn><UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`))
	})
	replica := func() *Verifier {
		return &Verifier{STSEndpoint: broken.URL, Region: "us-east-1", ServerID: testServerID, Once: once}
	}
	login := sign(t, testConfig, replica())
	for range 2 {
		if _, err := replica().Verify(context.Background(), login); err != nil {
			t.Fatal(err)
		}
	}
	signedAt, _ := time.Parse(amzDateFormat, login.Headers["X-Amz-Date"][0])
	if len(keys) != 2 || keys[0] != keys[1] || !untils[0].Equal(signedAt.Add(DefaultMaxAge)) {
		t.Fatalf("keys %q until %v; want one key twice, until %v", keys, untils, signedAt.Add(DefaultMaxAge))
	}
	if strings.Contains(keys[0], signatureOf(login)) {
		t.Fatalf("the key %q holds the signature", keys[0])
	}
}

func TestVerifierValidate(t *testing.T) {
	good := Verifier{STSEndpoint: "https://sts.us-east-1.amazonaws.com", Region: "us-east-1", ServerID: "https://passport.example.com", Once: (&MemoryOnce{}).Use}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		edit func(*Verifier)
		want string
	}{
		"endpoint":  {func(v *Verifier) { v.STSEndpoint = "sts.amazonaws.com" }, "is not an http(s) URL"},
		"path":      {func(v *Verifier) { v.STSEndpoint = "https://sts.amazonaws.com/x?y" }, "has more than a scheme and host"},
		"region":    {func(v *Verifier) { v.Region = "" }, "needs the region"},
		"server id": {func(v *Verifier) { v.ServerID = "" }, "needs a server ID"},
		"once":      {func(v *Verifier) { v.Once = nil }, "needs a one-time-use store"},
	} {
		v := good
		c.edit(&v)
		err := v.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want ...%s...", name, err, c.want)
		}
		if _, verr := v.Verify(context.Background(), api.AWSLogin{}); verr == nil || verr.Error() != err.Error() {
			t.Errorf("%s: Verify = %v, want Validate's error", name, verr)
		}
	}
}

func TestSignRefusesBadInfo(t *testing.T) {
	info := api.AWSLoginInfo{ServerID: testServerID, STSEndpoint: "https://sts.us-east-1.amazonaws.com", Region: "us-east-1"}
	for name, c := range map[string]struct {
		cfg  aws.Config
		info func(*api.AWSLoginInfo)
		want string
	}{
		"endpoint":    {testConfig, func(i *api.AWSLoginInfo) { i.STSEndpoint = "://" }, "sts_endpoint"},
		"server id":   {testConfig, func(i *api.AWSLoginInfo) { i.ServerID = "" }, "no server_id"},
		"line break":  {testConfig, func(i *api.AWSLoginInfo) { i.ServerID = "a\r\nX-Evil: 1" }, "line break"},
		"region":      {testConfig, func(i *api.AWSLoginInfo) { i.Region = "" }, "no region"},
		"credentials": {aws.Config{}, func(*api.AWSLoginInfo) {}, "no AWS credentials"},
		"anonymous":   {aws.Config{Credentials: aws.AnonymousCredentials{}}, func(*api.AWSLoginInfo) {}, "anonymous"},
	} {
		i := info
		c.info(&i)
		if _, err := Sign(context.Background(), c.cfg, i); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Sign = %v, want ...%s...", name, err, c.want)
		}
	}
}

// Sign's login is exactly what the service expects: the POST to the
// endpoint it named, the one body, and the headers signed.
func TestSignShape(t *testing.T) {
	info := api.AWSLoginInfo{ServerID: testServerID, STSEndpoint: "https://sts.eu-west-1.amazonaws.com", Region: "eu-west-1"}
	login, err := Sign(context.Background(), testConfig, info)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := base64.StdEncoding.DecodeString(login.Body)
	if login.Method != "POST" || login.URL != "https://sts.eu-west-1.amazonaws.com/" || string(body) != "Action=GetCallerIdentity&Version=2011-06-15" {
		t.Fatalf("login %s %s %q", login.Method, login.URL, body)
	}
	if got := firstValue(login.Headers, "Host"); got != "sts.eu-west-1.amazonaws.com" {
		t.Errorf("Host %q", got)
	}
	auth := firstValue(login.Headers, "Authorization")
	for _, want := range []string{"/eu-west-1/sts/aws4_request", "host;", "x-amz-date;", "x-amz-security-token;", "x-passport-nonce;", "x-passport-server-id"} {
		if !strings.Contains(auth, want) {
			t.Errorf("Authorization %q lacks %q", auth, want)
		}
	}
	u, _ := url.Parse(login.URL)
	rules := loginRules{endpoint: u, region: "eu-west-1", serverID: testServerID, now: time.Now(), maxAge: DefaultMaxAge}
	if _, err := rules.check(login); err != nil {
		t.Fatalf("the service's own checks refuse Sign's login: %v", err)
	}
}
