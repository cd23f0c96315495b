package awsidentity

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// Limits on what a login may carry. A GetCallerIdentity body is 43 bytes;
// headers are a handful, the largest being a session token of a few KiB.
const (
	maxBodyBase64 = 1024
	maxHeaders    = 32
	maxHeaderSize = 16 << 10
)

const amzDateFormat = "20060102T150405Z"

// signedLogin is a login that passed every check the service can make
// itself. Only STS can tell whether its signature is good.
type signedLogin struct {
	header    http.Header // what is sent on: the signed headers and Authorization
	host      string
	body      []byte
	signature string
	token     string // X-Amz-Security-Token, kept out of any message
	signedAt  time.Time
}

// loginRules are what a login is checked against.
type loginRules struct {
	endpoint *url.URL
	region   string
	serverID string
	now      time.Time
	maxAge   time.Duration
}

// check decodes a login and refuses anything but a fresh POST
// GetCallerIdentity for rules' STS endpoint and region, signed with the
// service's ID. Every refusal is a *RefusedError.
func (r loginRules) check(login api.AWSLogin) (*signedLogin, error) {
	if login.Method != http.MethodPost {
		return nil, refused("method", "the method is %q; a signed GetCallerIdentity is a POST", clip(login.Method, 20))
	}
	if err := r.checkURL(login.URL); err != nil {
		return nil, err
	}
	header, err := readHeaders(login.Headers)
	if err != nil {
		return nil, err
	}
	body, err := readBody(login.Body)
	if err != nil {
		return nil, err
	}

	auth, err := single(header, "Authorization", "the request is not signed: sign it with SigV4 and the machine's AWS credentials")
	if err != nil {
		return nil, err
	}
	sig, err := parseAuthorization(auth)
	if err != nil {
		return nil, err
	}
	if sig.service != signingName {
		return nil, refused("headers.Authorization", "the signature is scoped to the service %q; a login is signed for %q", clip(sig.service, 40), signingName)
	}
	if sig.region != r.region {
		return nil, refused("headers.Authorization", "the signature is scoped to the region %q; this service checks sign-ins in %q", clip(sig.region, 40), r.region)
	}

	id, err := single(header, ServerIDHeader, "there is no "+ServerIDHeader+" header: sign with the server_id GET /v1/login/aws names")
	if err != nil {
		return nil, err
	}
	if id != r.serverID {
		return nil, refused("headers."+ServerIDHeader, "%s is %q, but this service is %q: the request was signed for another Passport service", ServerIDHeader, clip(id, 100), r.serverID)
	}
	host, err := single(header, "Host", "there is no Host header: it is signed, so the service must see it")
	if err != nil {
		return nil, err
	}
	if want := hostHeader(r.endpoint); canonicalHost(r.endpoint.Scheme, host) != want {
		return nil, refused("headers.Host", "the request is signed for the host %q; this service checks sign-ins with STS at %q", clip(host, 100), want)
	}
	stamp, err := single(header, "X-Amz-Date", "there is no X-Amz-Date header: the signing time must be signed")
	if err != nil {
		return nil, err
	}
	signedAt, err := time.Parse(amzDateFormat, stamp)
	if err != nil {
		return nil, refused("headers.X-Amz-Date", "X-Amz-Date %q is not a SigV4 time (yyyyMMddTHHmmssZ)", clip(stamp, 40))
	}
	if stamp[:8] != sig.date {
		return nil, refused("headers.Authorization", "the signature's credential scope is dated %s but X-Amz-Date is %s", sig.date, stamp)
	}
	if age := r.now.Sub(signedAt); age > r.maxAge {
		return nil, refused("headers.X-Amz-Date", "the request was signed at %s, more than %s ago: sign a new one for each login (and check the machine's clock)", signedAt.Format(time.RFC3339), r.maxAge)
	} else if -age > r.maxAge {
		return nil, refused("headers.X-Amz-Date", "the request was signed at %s, more than %s from now: check the machine's clock", signedAt.Format(time.RFC3339), r.maxAge)
	}
	for _, name := range []string{"Host", "X-Amz-Date", ServerIDHeader} {
		if !slices.Contains(sig.signedHeaders, strings.ToLower(name)) {
			return nil, refused("headers.Authorization", "the header %s is not among the signed headers (%s): the signature must cover it", name, strings.Join(sig.signedHeaders, ";"))
		}
	}

	out := &signedLogin{header: http.Header{}, host: host, body: body, signature: sig.signature, signedAt: signedAt}
	for _, name := range sig.signedHeaders {
		key := http.CanonicalHeaderKey(name)
		values, ok := header[key]
		if !ok {
			return nil, refused("headers", "the signed header %s is missing", key)
		}
		if key != "Host" && key != "Content-Length" {
			out.header[key] = values
		}
	}
	out.header["Authorization"] = []string{auth}
	out.token = header.Get("X-Amz-Security-Token")

	ct, err := single(header, "Content-Type", "there is no Content-Type header: a GetCallerIdentity body is "+formContentType)
	if err != nil {
		return nil, err
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, refused("headers.Content-Type", "Content-Type is %q; a GetCallerIdentity body is %s", clip(ct, 100), formContentType)
	}
	if values, ok := header["Content-Length"]; ok {
		if len(values) != 1 || values[0] != strconv.Itoa(len(body)) {
			return nil, refused("headers.Content-Length", "Content-Length says %q but the body is %d bytes", clip(strings.Join(values, ","), 40), len(body))
		}
	}
	return out, nil
}

// checkURL refuses a login meant for another STS endpoint. The URL is only
// compared: the service sends every login to its own endpoint, so a URL
// the caller chose is never dialled.
func (r loginRules) checkURL(raw string) error {
	u, err := parseEndpoint(raw)
	if err != nil {
		return refused("url", "the url %v", err)
	}
	if u.Scheme != r.endpoint.Scheme || hostHeader(u) != hostHeader(r.endpoint) {
		return refused("url", "the url is %q, but this service checks sign-ins with STS at %q: sign for the endpoint GET /v1/login/aws names", clip(raw, 200), r.endpoint.String())
	}
	return nil
}

// readHeaders canonicalises the login's header names, refusing a name
// given twice in different cases (which one would be signed?), names and
// values no HTTP request could carry, and more than the limits.
func readHeaders(in map[string][]string) (http.Header, error) {
	if len(in) > maxHeaders {
		return nil, refused("headers", "there are %d headers; a login has at most %d", len(in), maxHeaders)
	}
	out := make(http.Header, len(in))
	size := 0
	for name, values := range in {
		if !validHeaderName(name) {
			return nil, refused("headers", "the header name %q is not an HTTP token", clip(name, 60))
		}
		key := http.CanonicalHeaderKey(name)
		if _, ok := out[key]; ok {
			return nil, refused("headers", "the header %s is given twice, in different cases", key)
		}
		if len(values) == 0 {
			return nil, refused("headers."+key, "the header %s has no value", key)
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return nil, refused("headers."+key, "the header %s has a control character in its value", key)
			}
			size += len(name) + len(v)
		}
		out[key] = values
	}
	if size > maxHeaderSize {
		return nil, refused("headers", "the headers are %d bytes; a login's are at most %d", size, maxHeaderSize)
	}
	return out, nil
}

// single returns a header's one value; missing says what to do when there
// is none.
func single(h http.Header, name, missing string) (string, error) {
	values := h[http.CanonicalHeaderKey(name)]
	switch {
	case len(values) == 0:
		return "", refused("headers."+name, "%s", missing)
	case len(values) > 1:
		return "", refused("headers."+name, "the header %s is given %d times; a login has it once", name, len(values))
	}
	return values[0], nil
}

// readBody decodes the body and refuses anything but the parameters of
// GetCallerIdentity: the signature would let STS run whatever else the
// body asked, with the caller's credentials.
func readBody(b64 string) ([]byte, error) {
	if len(b64) > maxBodyBase64 {
		return nil, refused("body", "the body is %d base64 characters; a GetCallerIdentity body is %d", len(b64), base64.StdEncoding.EncodedLen(len(callerIdentityBody)))
	}
	body, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, refused("body", "the body is not standard padded base64")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, refused("body", "the body is not a form (%s)", callerIdentityBody)
	}
	for key, values := range form {
		switch {
		case key != "Action" && key != "Version":
			return nil, refused("body", "the body has the parameter %q, which GetCallerIdentity does not take", clip(key, 60))
		case len(values) != 1:
			return nil, refused("body", "the body gives %s %d times", key, len(values))
		}
	}
	if a := form.Get("Action"); a != "GetCallerIdentity" {
		return nil, refused("body", "the body asks STS for %q; a login asks only for GetCallerIdentity", clip(a, 60))
	}
	if v := form.Get("Version"); v != "2011-06-15" {
		return nil, refused("body", "the body asks for STS API version %q; GetCallerIdentity is 2011-06-15", clip(v, 20))
	}
	return body, nil
}

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
	signature                          string
}

// parseAuthorization reads
//
//	AWS4-HMAC-SHA256 Credential=AKID/20260124/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
//
// Its refusals never quote the header: it holds the signature.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	bad := func(what string) error {
		return refused("headers.Authorization", "the Authorization header is not SigV4 (AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...): %s", what)
	}
	alg, rest, _ := strings.Cut(h, " ")
	if alg != "AWS4-HMAC-SHA256" {
		return a, bad("it does not start with AWS4-HMAC-SHA256")
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || (key != "Credential" && key != "SignedHeaders" && key != "Signature") {
			return a, bad("it has a part that is not Credential, SignedHeaders or Signature")
		}
		if _, dup := params[key]; dup {
			return a, bad("it gives " + key + " twice")
		}
		params[key] = value
	}
	scope := strings.Split(params["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" || scope[2] == "" || scope[3] == "" {
		return a, bad("its Credential is not access-key/date/region/service/aws4_request")
	}
	if _, err := time.Parse("20060102", scope[1]); err != nil || len(scope[1]) != 8 {
		return a, bad("its Credential's date is not yyyyMMdd")
	}
	a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	if params["SignedHeaders"] == "" {
		return a, bad("it has no SignedHeaders")
	}
	a.signedHeaders = strings.Split(params["SignedHeaders"], ";")
	for i, name := range a.signedHeaders {
		if !validHeaderName(name) || name != strings.ToLower(name) || (i > 0 && a.signedHeaders[i-1] >= name) {
			return a, bad("its SignedHeaders are not sorted, unique, lower-case header names")
		}
	}
	a.signature = params["Signature"]
	if len(a.signature) != 64 || strings.Trim(a.signature, "0123456789abcdef") != "" {
		return a, bad("its Signature is not 64 lower-case hex digits")
	}
	return a, nil
}

// onceKey names a signature for the one-time-use table. A hash, so the
// table never holds a signature that could be tried again elsewhere.
func onceKey(signature string) string {
	sum := sha256.Sum256([]byte(signature))
	return "aws-sigv4:" + hex.EncodeToString(sum[:])
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
