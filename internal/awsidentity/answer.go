package awsidentity

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// stsCaller is what GetCallerIdentity answers.
type stsCaller struct {
	ARN, Account, UserID string
}

type callerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
}

var errorCode = regexp.MustCompile(`^[A-Za-z0-9.]{1,64}$`)

// readAnswer reads STS's answer to a forwarded login. An ErrorResponse
// for a request the caller got wrong (4xx other than throttling) is a
// *RefusedError quoting STS, escaped and with the login's secrets taken
// out; anything else that is not a caller identity is an *UpstreamError
// naming endpoint. secrets are strings no message may repeat.
func readAnswer(endpoint string, status int, body []byte, secrets ...string) (stsCaller, error) {
	if status == http.StatusOK {
		var ok callerIdentityResponse
		if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&ok); err != nil {
			return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s answered HTTP 200 with a body that is not a GetCallerIdentityResponse: check the service's STS endpoint", endpoint)}
		}
		r := ok.Result
		if r.Arn == "" || r.Account == "" || r.UserID == "" {
			return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s answered a GetCallerIdentityResponse without an Arn, Account or UserId", endpoint)}
		}
		return stsCaller{ARN: r.Arn, Account: r.Account, UserID: r.UserID}, nil
	}

	var e errorResponse
	if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&e); err != nil || e.Error.Code == "" {
		return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s answered HTTP %d with a body that is not an STS error", endpoint, status)}
	}
	code := e.Error.Code
	if !errorCode.MatchString(code) {
		code = fmt.Sprintf("%q", clip(code, 64))
	}
	said := fmt.Sprintf("%s: %q", code, stsMessage(e.Error.Message, secrets))
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests && !strings.Contains(e.Error.Code, "Throttl") {
		return stsCaller{}, &RefusedError{Field: "sts", Reason: "STS did not accept the signed request: " + said}
	}
	return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s failed (HTTP %d): %s", endpoint, status, said)}
}

// stsMessage is the part of an STS error message safe to pass on: its
// first line (AWS appends the canonical request it expected, which holds
// the session token, after a blank line), without any of secrets,
// bounded.
func stsMessage(msg string, secrets []string) string {
	msg, _, _ = strings.Cut(strings.TrimSpace(msg), "\n")
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return clip(msg, 300)
}
