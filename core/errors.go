package core

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error is a failure with the answer it deserves. Its Status uses HTTP's
// vocabulary because the product contract is written in it; event triggers map
// it to "retry" or "drop" through Retryable.
type Error struct {
	Status     int           // an HTTP status from PRODUCT.md's answer table
	Message    string        // safe to show the caller: never a secret
	Field      string        // the request field at fault, for 400s
	Target     string        // the outside system at fault, for 429/502/503
	RetryAfter time.Duration // for 409/429/503
	Err        error         // the cause, for logs and errors.Is; its text must be secret-free too
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = fmt.Sprintf("%s: %s", e.Field, msg)
	}
	if e.Target != "" {
		msg = e.Target + ": " + msg
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable says whether sending the same request again may succeed. Unknown
// failures count as retryable: every trigger is idempotent, so a redelivery is
// cheap and a dropped request is not.
func (e *Error) Retryable() bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusBadGateway:
		return false
	}
	return true
}

// Invalid is the answer to a malformed request.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Forbidden is the answer to a well-formed request that policy refuses.
func Forbidden(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Default waits when a target gives no Retry-After, so every retryable answer carries one.
const (
	DefaultRetryAfterUnavailable = 5 * time.Second
	DefaultRetryAfterRateLimited = 30 * time.Second
)

// Unavailable marks a target as down or overloaded: the request is safe to resend.
func Unavailable(target string, retryAfter time.Duration, cause error) *Error {
	if retryAfter <= 0 {
		retryAfter = DefaultRetryAfterUnavailable
	}
	return &Error{Status: http.StatusServiceUnavailable, Target: target, RetryAfter: retryAfter,
		Message: "temporarily unavailable, retry later", Err: cause}
}

// RateLimited marks a target as throttling us: the request is safe to resend.
func RateLimited(target string, retryAfter time.Duration, cause error) *Error {
	if retryAfter <= 0 {
		retryAfter = DefaultRetryAfterRateLimited
	}
	return &Error{Status: http.StatusTooManyRequests, Target: target, RetryAfter: retryAfter,
		Message: "rate limited, retry later", Err: cause}
}

// Refused marks a target's permanent refusal: resending will not help.
func Refused(target, message string, cause error) *Error {
	return &Error{Status: http.StatusBadGateway, Target: target, Message: message, Err: cause}
}

// AsError returns err as an *Error, classifying anything unknown as an
// internal, retryable failure whose text is not shown to callers.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Message: "internal error", Err: err}
}
