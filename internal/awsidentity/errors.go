package awsidentity

import (
	"errors"
	"fmt"
)

// RefusedError is a login the caller must fix: the request is not a fresh
// GetCallerIdentity signed for this service, or STS did not accept its
// signature. A server answers it as unauthenticated (401). Reason says
// what to change and never repeats a signature or a session token.
type RefusedError struct {
	// Field is the part of the login at fault: "method", "url",
	// "headers.<Name>", "body", or "sts" when STS refused it.
	Field  string
	Reason string
}

func (e *RefusedError) Error() string {
	return "AWS sign-in refused: " + e.Reason
}

// UpstreamError is a login that could not be checked because the
// service's STS endpoint gave no usable answer: it could not be reached,
// timed out, redirected, failed, or answered something that is not STS.
// The caller did nothing wrong and may try again; a server answers it as
// unavailable (503). Reason names the endpoint and what went wrong, for
// the operator.
type UpstreamError struct {
	Reason string
	Err    error // the transport's error, if any
}

func (e *UpstreamError) Error() string {
	if e.Err != nil {
		return "AWS sign-in could not be checked: " + e.Reason + ": " + e.Err.Error()
	}
	return "AWS sign-in could not be checked: " + e.Reason
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// ErrUsed is what a Verifier's Once hook returns (or wraps) when the key
// has been used before: the login is a replay.
var ErrUsed = errors.New("already used")

func refused(field, format string, args ...any) *RefusedError {
	return &RefusedError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// clip bounds text a caller or a peer chose before it is quoted back.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
