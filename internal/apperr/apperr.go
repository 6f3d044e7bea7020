// Package apperr is the one error type of the domain. Each error carries a
// code the edges map to a status (HTTP, exit code) in one place, and a message
// that is safe to show the caller; anything else is an internal error whose
// details go to the log, never to the client.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error for the caller.
type Code string

// The codes, mirroring the contract's status codes.
const (
	Invalid      Code = "invalid"      // 400: bad input; Field names it
	Unauthorized Code = "unauthorized" // 401: no or bad credentials
	Forbidden    Code = "forbidden"    // 403: authenticated but not allowed
	NotFound     Code = "not_found"    // 404: unknown id
	Conflict     Code = "conflict"     // 409: the state forbids it
	Unavailable  Code = "unavailable"  // 503: the database is away
	Internal     Code = "internal"     // 500: anything else
)

// Error is a domain error with a caller-safe message.
type Error struct {
	Code    Code
	Message string
	// Field is the request field at fault, for Invalid.
	Field string
	// Reason names the error for APIs whose errors carry a name of their
	// own (v2's "name"); empty: the code's usual name.
	Reason string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an error of code with a formatted, caller-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithReason returns an error of code with a name of its own and a
// formatted, caller-safe message.
func WithReason(code Code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns an Invalid error about one request field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// FieldOf returns the request field the first *Error in err's chain
// names, or "".
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// ReasonOf returns the name the first *Error in err's chain has of its
// own (Reason), or "".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// MessageOf returns the caller-safe message of err: its *Error's message, or
// a generic one that reveals nothing.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
