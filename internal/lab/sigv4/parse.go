package sigv4

import (
	"fmt"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm the lab accepts.
const Algorithm = "AWS4-HMAC-SHA256"

const (
	timeFormat      = "20060102T150405Z"
	shortTimeFormat = "20060102"
	terminator      = "aws4_request"
)

// Authorization is a parsed SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20260124/us-east-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex
type Authorization struct {
	AccessKeyID string
	Date        string // the scope's yyyymmdd
	Region      string
	Service     string
	// SignedHeaders are lower-case, sorted and unique, as the canonical
	// request lists them.
	SignedHeaders []string
	Signature     string // 64 lower-case hex digits
}

// Scope is the credential scope, date/region/service/aws4_request.
func (a Authorization) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + terminator
}

// ParseAuthorization parses an Authorization header value. Every failure is
// an *Error with code IncompleteSignatureException, the code AWS uses for a
// header it cannot read; the message never repeats the signature.
func ParseAuthorization(header string) (Authorization, error) {
	var a Authorization
	alg, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if alg != Algorithm {
		// AWS quotes the algorithm back; it is not secret, but bound its size.
		return a, incomplete("Unsupported AWS 'algorithm': '%s'.", clip(alg, 40))
	}
	if !ok {
		return a, incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.")
	}

	var credential, signedHeaders, signature string
	var seen [3]bool
	for _, part := range strings.Split(rest, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, incomplete("Authorization header parameter '%s' is not a key=value pair.", clip(key, 40))
		}
		var dst *string
		var i int
		switch key {
		case "Credential":
			dst, i = &credential, 0
		case "SignedHeaders":
			dst, i = &signedHeaders, 1
		case "Signature":
			dst, i = &signature, 2
		default:
			return a, incomplete("Authorization header has an unknown parameter '%s'.", clip(key, 40))
		}
		if seen[i] {
			return a, incomplete("Authorization header repeats the '%s' parameter.", key)
		}
		seen[i], *dst = true, value
	}
	for i, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			return a, incomplete("Authorization header requires '%s' parameter.", name)
		}
	}

	scope := strings.Split(credential, "/")
	if len(scope) != 5 {
		return a, incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'.", clip(credential, 200))
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]
	if a.AccessKeyID == "" || a.Region == "" || a.Service == "" {
		return a, incomplete("Credential has an empty access key, region or service: '%s'.", clip(credential, 200))
	}
	if _, err := time.Parse(shortTimeFormat, a.Date); err != nil || len(a.Date) != 8 {
		return a, incomplete("Credential date '%s' is not in yyyyMMdd format.", clip(a.Date, 20))
	}
	if scope[4] != terminator {
		return a, incomplete("Credential should be scoped with a valid terminator: '%s', not '%s'.", terminator, clip(scope[4], 40))
	}

	if signedHeaders == "" {
		return a, incomplete("Authorization header requires a non-empty 'SignedHeaders' parameter.")
	}
	a.SignedHeaders = strings.Split(signedHeaders, ";")
	for i, h := range a.SignedHeaders {
		if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, " \t:") {
			return a, incomplete("SignedHeaders must be lower-case header names separated by ';', got '%s'.", clip(signedHeaders, 200))
		}
		if i > 0 && a.SignedHeaders[i-1] >= h {
			return a, incomplete("SignedHeaders must be sorted and unique, got '%s'.", clip(signedHeaders, 200))
		}
	}

	if len(signature) != 64 || strings.Trim(signature, "0123456789abcdef") != "" {
		return a, incomplete("Signature must be 64 lower-case hexadecimal digits.")
	}
	a.Signature = signature
	return a, nil
}

func incomplete(format string, args ...any) *Error {
	return &Error{Code: CodeIncompleteSignature, Message: fmt.Sprintf(format, args...)}
}

// clip bounds attacker-chosen text quoted back in an error message.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
