// Package sigv4 verifies AWS Signature Version 4 on requests that reach the
// lab, so that a client with the wrong secret, a tampered body or a stale
// clock is refused exactly where AWS would refuse it.
//
// Only header authentication (the Authorization header) is supported; the
// lab's clients never presign URLs for the services it serves.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Error codes, as AWS's JSON services name them.
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeExpiredToken               = "ExpiredTokenException"
)

// MaxSkew is how far a request's signing time may be from the server's
// clock, in either direction, for most services; SkewFor gives each
// service's own.
const MaxSkew = 5 * time.Minute

// SkewFor is how far a request's signing time may be from the server's
// clock for a service (its signing name): 15 minutes for STS and EC2, the
// query-protocol services that allow it, 5 for the others.
func SkewFor(service string) time.Duration {
	switch service {
	case "sts", "ec2":
		return 15 * time.Minute
	}
	return MaxSkew
}

// Error is a refused request. Code is one of the Code constants; Message is
// AWS's wording where AWS has one.
type Error struct {
	Code    string
	Message string
	// Expired marks a signing time outside the allowed skew, which query
	// services answer with a code of their own (EC2: RequestExpired).
	Expired bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Credential is what the server knows about an access key.
type Credential struct {
	Secret string
	// SessionToken marks temporary credentials (from STS): requests signed
	// with them must carry it in X-Amz-Security-Token. Long-term keys have
	// none, and requests that send one anyway are refused, as on AWS.
	SessionToken string
	// Expires is when temporary credentials stop working; zero for never.
	Expires time.Time
}

// Verifier checks signatures for one region and signing name.
type Verifier struct {
	Region  string // the region the credential scope must name
	Service string // the signing name the credential scope must name
	// Credential looks up an access key id.
	Credential func(accessKeyID string) (Credential, bool)
	// Now is the server's clock; time.Now when nil.
	Now func() time.Time
	// S3 applies S3's rules: the path is encoded once, not twice, and the
	// signed payload may be "UNSIGNED-PAYLOAD" (X-Amz-Content-Sha256,
	// which S3 requires).
	S3 bool
}

// Verify checks r's signature over body (the complete request body, which
// the caller has already read) and returns the access key id that signed it.
// Every refusal is an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (accessKeyID string, err error) {
	header := r.Header.Values("Authorization")
	if len(header) == 0 {
		return "", &Error{Code: CodeMissingAuthenticationToken, Message: "Missing Authentication Token"}
	}
	if len(header) > 1 {
		return "", incomplete("Only one Authorization header is allowed.")
	}
	auth, err := ParseAuthorization(header[0])
	if err != nil {
		return "", err
	}
	if !slices.Contains(auth.SignedHeaders, "host") {
		return "", incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}

	signed, err := v.signingTime(r, auth)
	if err != nil {
		return "", err
	}
	if auth.Region != v.Region {
		return "", invalid("Credential should be scoped to a valid region, not '%s'.", clip(auth.Region, 40))
	}
	if auth.Service != v.Service {
		return "", invalid("Credential should be scoped to correct service: '%s'.", v.Service)
	}

	cred, ok := v.Credential(auth.AccessKeyID)
	token := r.Header.Get("X-Amz-Security-Token")
	if !ok || !hmac.Equal([]byte(token), []byte(cred.SessionToken)) {
		return "", &Error{Code: CodeUnrecognizedClient, Message: "The security token included in the request is invalid."}
	}
	if !cred.Expires.IsZero() && !v.now().Before(cred.Expires) {
		return "", &Error{Code: CodeExpiredToken, Message: "The security token included in the request is expired"}
	}

	payloadHash, err := v.payloadHash(r, body)
	if err != nil {
		return "", err
	}
	canonical, err := canonicalRequest(r, auth.SignedHeaders, payloadHash, !v.S3)
	if err != nil {
		return "", err
	}
	want := Sign(cred.Secret, auth, signed, canonical)
	if !hmac.Equal([]byte(want), []byte(auth.Signature)) {
		return "", invalid("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return auth.AccessKeyID, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// signingTime reads X-Amz-Date (or, failing that, Date), checks it against
// the credential scope's date and the server's clock.
func (v *Verifier) signingTime(r *http.Request, auth Authorization) (string, error) {
	stamp := r.Header.Get("X-Amz-Date")
	var t time.Time
	var err error
	switch {
	case stamp != "":
		t, err = time.Parse(timeFormat, stamp)
		if err != nil {
			return "", incomplete("X-Amz-Date must be in ISO-8601 basic format (yyyyMMddTHHmmssZ).")
		}
	case r.Header.Get("Date") != "":
		stamp = r.Header.Get("Date")
		t, err = http.ParseTime(stamp)
		if err != nil {
			return "", incomplete("Date header is not an HTTP date.")
		}
		stamp = t.UTC().Format(timeFormat)
	default:
		return "", incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if day := stamp[:8]; day != auth.Date {
		return "", invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", auth.Date, day, stamp)
	}

	n := v.now().UTC()
	f := func(t time.Time) string { return t.Format(timeFormat) }
	skew := SkewFor(v.Service)
	minutes := int(skew / time.Minute)
	if t.Before(n.Add(-skew)) {
		e := invalid("Signature expired: %s is now earlier than %s (%s - %d min.)", stamp, f(n.Add(-skew)), f(n), minutes)
		e.Expired = true
		return "", e
	}
	if t.After(n.Add(skew)) {
		e := invalid("Signature not yet current: %s is still later than %s (%s + %d min.)", stamp, f(n.Add(skew)), f(n), minutes)
		e.Expired = true
		return "", e
	}
	return stamp, nil
}

// payloadHash is the hex SHA-256 of the body. A client-supplied
// X-Amz-Content-Sha256 must agree with the body: trusting it alone would let
// anyone replay a signature with a different body.
func (v *Verifier) payloadHash(r *http.Request, body []byte) (string, error) {
	if v.S3 {
		switch claimed := r.Header.Get("X-Amz-Content-Sha256"); {
		case claimed == "":
			return "", invalid("Missing required header for this request: x-amz-content-sha256")
		case claimed == "UNSIGNED-PAYLOAD":
			return claimed, nil
		case strings.HasPrefix(claimed, "STREAMING-"):
			// aws-chunked bodies: the lab does not decode them. The SDK
			// sends them only for checksums it is not asked for.
			return "", invalid("The lab's S3 does not take aws-chunked uploads (%s); set the S3 client's RequestChecksumCalculation to WhenRequired", clip(claimed, 60))
		}
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if claimed := r.Header.Get("X-Amz-Content-Sha256"); claimed != "" && claimed != hash {
		return "", invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return hash, nil
}

// canonicalRequest builds the SigV4 canonical request for r.
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string, encodeTwice bool) (string, error) {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", invalid("The request's query string cannot be parsed.")
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL, encodeTwice))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(query))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), nil
}

// headerValue is a signed header's canonical value: all its values, each
// trimmed with inner runs of spaces collapsed, joined with commas. Go's
// server moves Host out of the header map, and may do the same with
// Content-Length, so both are read from the request itself.
func headerValue(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		values = []string{r.Host}
	case "content-length":
		values = r.Header.Values("Content-Length")
		if len(values) == 0 && r.ContentLength >= 0 {
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	default:
		values = r.Header.Values(name)
	}
	canonical := make([]string, len(values))
	for i, v := range values {
		canonical[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(canonical, ",")
}

// canonicalURI is the path, URI-encoded a second time: for every service
// but S3, SigV4 encodes each already-escaped path segment again.
func canonicalURI(u *url.URL, encodeTwice bool) string {
	path := u.EscapedPath()
	if path == "" {
		return "/"
	}
	if !encodeTwice {
		return path
	}
	return escape(path, false)
}

func canonicalQuery(query url.Values) string {
	var pairs []string
	for key, values := range query {
		for _, value := range values {
			// Sorting happens after encoding, as the specification says.
			pairs = append(pairs, escape(key, true)+"="+escape(value, true))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// escape percent-encodes every byte outside RFC 3986's unreserved set, with
// upper-case hex; '/' survives only in paths.
func escape(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// Sign returns the hex signature of a canonical request, signed at stamp
// (yyyyMMddTHHmmssZ) for auth's credential scope.
func Sign(secret string, auth Authorization, stamp, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := Algorithm + "\n" + stamp + "\n" + auth.Scope() + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+secret), auth.Date)
	key = hmacSHA256(key, auth.Region)
	key = hmacSHA256(key, auth.Service)
	key = hmacSHA256(key, terminator)
	return hex.EncodeToString(hmacSHA256(key, stringToSign))
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidSignature, Message: fmt.Sprintf(format, args...)}
}
