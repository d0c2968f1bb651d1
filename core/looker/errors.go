package looker

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

// APIError is a non-2xx answer from Looker, decoded from its Error or
// ValidationError body.
type APIError struct {
	StatusCode       int
	Message          string
	DocumentationURL string
	Errors           []ValidationErrorDetail
	RetryAfter       time.Duration
	// Operation names the call as "METHOD /path/{template}": the template, not
	// the URL, so that no email or id ends up in an error string.
	Operation string
}

// ValidationErrorDetail is one entry of a 422 ValidationError.
type ValidationErrorDetail struct {
	Field            string `json:"field"`
	Code             string `json:"code"`
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "looker: %s: %d", e.Operation, e.StatusCode)
	if e.Message != "" {
		b.WriteString(" " + e.Message)
	} else {
		b.WriteString(" " + http.StatusText(e.StatusCode))
	}
	for _, d := range e.Errors {
		fmt.Fprintf(&b, "; %s %s", d.Field, firstNonEmpty(d.Message, d.Code))
	}
	return b.String()
}

// RetryStatus tells the shared retry loop what this answer means.
func (e *APIError) RetryStatus() (int, time.Duration) { return e.StatusCode, e.RetryAfter }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool { return httpretry.StatusOf(err) == http.StatusNotFound }

// IsConflict reports a 409 "Resource Already Exists".
func IsConflict(err error) bool { return httpretry.StatusOf(err) == http.StatusConflict }

// IsUnauthorized reports a 401: the token is missing, expired or revoked.
func IsUnauthorized(err error) bool { return httpretry.StatusOf(err) == http.StatusUnauthorized }

// MayBeEmailTaken reports Looker's two ways of refusing an email credential
// that may already belong to someone: 409, or a 422 whose errors name the
// email field. The spec documents no body for the duplicate case, and 422 on
// email also means "invalid", so callers confirm with a lookup before adopting.
func MayBeEmailTaken(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	if e.StatusCode == http.StatusConflict {
		return true
	}
	if e.StatusCode == http.StatusUnprocessableEntity {
		for _, d := range e.Errors {
			if d.Field == "email" {
				return true
			}
		}
	}
	return false
}

// IsUnsupportedOnCore reports Looker (Google Cloud core) refusing a call that
// only original Looker supports, such as email credentials.
func IsUnsupportedOnCore(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusForbidden &&
		strings.Contains(e.Message, "Unsupported in Looker (Google Cloud core)")
}
