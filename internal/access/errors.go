package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// Class says what kind of failure an error is, so that callers choose what
// to do (an HTTP status, a retry, a message) with errors.As and ClassOf,
// never by matching text. The values are stable: the service's API sends
// them as error codes.
type Class string

// Error classes.
const (
	// Invalid: the request itself is wrong; Field names the input.
	Invalid Class = "invalid"
	// Denied: policy, or the grant's owner, does not allow it.
	Denied Class = "denied"
	// NotFound: no such grant.
	NotFound Class = "not_found"
	// Conflict: the grant's state does not allow it (its window has
	// ended, it is closed, another writer moved it).
	Conflict Class = "conflict"
	// HostFailure: one or more targets did not do what was asked; the
	// error names each one and what is left there.
	HostFailure Class = "host_failure"
	// Unavailable: something Passport depends on (SSM, KMS, the ledger,
	// the policy source) could not be reached; trying again may work.
	Unavailable Class = "unavailable"
	// Internal: a bug in Passport.
	Internal Class = "internal"
)

// Error is an error of the access core with its class. Its message is
// written for the person who asked, and never holds a secret.
type Error struct {
	Class Class
	// Field is the input at fault, as the request names it ("reason",
	// "targets", "duration"...), when Class is Invalid; else empty.
	Field string
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// invalid is an Invalid error about field.
func invalid(field, format string, args ...any) error {
	return &Error{Class: Invalid, Field: field, Err: fmt.Errorf(format, args...)}
}

// classed gives err a class, unless it is nil.
func classed(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Class: c, Err: err}
}

// ClassOf is the class of err: that of the first *Error it wraps, else what
// the errors of the packages below say (a policy denial, a missing or
// closed ledger record, a deadline), else Internal. A nil error has no
// class.
func ClassOf(err error) Class {
	var e *Error
	var denied *policy.DeniedError
	var approval *policy.ApprovalError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Class
	case errors.As(err, &denied), errors.As(err, &approval):
		return Denied
	case errors.Is(err, ledger.ErrNotFound):
		return NotFound
	case errors.Is(err, ledger.ErrClosed), errors.Is(err, ledger.ErrConflict), errors.Is(err, ledger.ErrExists):
		return Conflict
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Unavailable
	}
	return Internal
}

// FieldOf is the input an Invalid error names, or "".
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
