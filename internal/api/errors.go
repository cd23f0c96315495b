package api

import (
	"fmt"
	"net/http"
)

// Error is the body of every failed call, under "error". Code is stable
// and decides what a client does; Field names the input at fault; Message
// says in words what happened and what to do, and never holds a secret.
type Error struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Status is the HTTP status the error came with; not sent.
	Status int `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// ErrorBody is how an Error travels.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error codes. The first seven are the access core's classes (access.Class)
// and keep their names.
const (
	CodeInvalid     = "invalid"
	CodeDenied      = "denied"
	CodeNotFound    = "not_found"
	CodeConflict    = "conflict"
	CodeHostFailure = "host_failure"
	CodeUnavailable = "unavailable"
	CodeInternal    = "internal"
	// CodeUnauthenticated: no valid sign-in came with the call.
	CodeUnauthenticated = "unauthenticated"
	// CodeTooLarge: the body is larger than the service accepts.
	CodeTooLarge = "too_large"
	// CodeRateLimited: the caller made too many calls; wait and retry.
	CodeRateLimited = "rate_limited"
	// CodeMethodNotAllowed and CodeNoRoute: the call names no route.
	CodeMethodNotAllowed = "method_not_allowed"
	CodeNoRoute          = "no_route"
)

// StatusOf is the HTTP status that goes with a code.
func StatusOf(code string) int {
	switch code {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeDenied:
		return http.StatusForbidden
	case CodeNotFound, CodeNoRoute:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeHostFailure:
		return http.StatusBadGateway
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Errorf is an Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: StatusOf(code)}
}
