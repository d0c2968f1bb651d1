package sendgrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/logging"
)

// ErrTransport is matched (errors.Is) by every failure where no HTTP status
// came back: connection refused, DNS, TLS, timeout, cancellation. The email
// may or may not have been accepted; the caller's exactly-once ledger decides.
var ErrTransport = errors.New("sendgrid: transport error")

// APIError is a non-2xx answer from SendGrid. sendgrid-go returns those with
// a nil error; Send turns them into this type.
type APIError struct {
	StatusCode int
	// Messages come from {"errors":[{"message","field","help"}]}, rendered
	// as "field: message" when a field is named. For a body that is not in
	// that shape, a short excerpt of it.
	Messages []string
	// RetryAfter is how long SendGrid asked us to wait (Retry-After, else
	// X-RateLimit-Reset); zero when absent or when the status is permanent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("sendgrid: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if len(e.Messages) > 0 {
		s += ": " + strings.Join(e.Messages, "; ")
	}
	return s
}

// Temporary reports whether the same request may succeed later: rate limits
// and server-side failures. 4xx other than 429 need a config or data fix.
func (e *APIError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// RetryStatus is what the shared caller and its classification read.
func (e *APIError) RetryStatus() (int, time.Duration) { return e.StatusCode, e.RetryAfter }

// IsTemporary reports whether err is worth retrying later: a temporary
// *APIError or any transport failure (including timeouts).
func IsTemporary(err error) bool {
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return apiErr.Temporary()
	}
	return errors.Is(err, ErrTransport)
}

// transportError keeps the underlying chain so errors.Is works for
// context.DeadlineExceeded and friends.
type transportError struct {
	msg   string
	cause error
	// neverSent is true when the request was not written whole to the
	// connection, so SendGrid cannot have taken the email.
	neverSent bool
}

func (e *transportError) Error() string        { return e.msg }
func (e *transportError) Unwrap() error        { return e.cause }
func (e *transportError) Is(target error) bool { return target == ErrTransport }

// newTransportError wraps err, scrubbing key from the text. net/http does
// not put headers in its errors today, but if the key ever shows up we also
// drop the original chain, keeping only what callers branch on.
func newTransportError(err error, key string, neverSent bool) error {
	msg := err.Error()
	if key != "" && strings.Contains(msg, key) {
		msg = strings.ReplaceAll(msg, key, redacted)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			err = context.DeadlineExceeded
		case errors.Is(err, context.Canceled):
			err = context.Canceled
		default:
			err = nil
		}
	}
	outcome := "outcome unknown"
	if neverSent {
		outcome = "not sent"
	}
	return &transportError{msg: "sendgrid: send failed, " + outcome + ": " + msg, cause: err, neverSent: neverSent}
}

const maxExcerpt = 256

type errorBody struct {
	Errors []struct {
		Message string  `json:"message"`
		Field   *string `json:"field"`
		// Help is usually null or a URL but has been seen as an object;
		// RawMessage keeps an unexpected shape from failing the decode.
		Help json.RawMessage `json:"help"`
	} `json:"errors"`
}

func newAPIError(status int, header http.Header, body, key string, now time.Time) *APIError {
	e := &APIError{StatusCode: status}
	var eb errorBody
	if json.Unmarshal([]byte(body), &eb) == nil && len(eb.Errors) > 0 {
		for _, item := range eb.Errors {
			m := item.Message
			if item.Field != nil && *item.Field != "" {
				m = *item.Field + ": " + m
			}
			e.Messages = append(e.Messages, scrub(m, key))
		}
	} else if s := strings.TrimSpace(body); s != "" {
		e.Messages = []string{excerpt(scrub(s, key))}
	}
	if e.Temporary() {
		e.RetryAfter = retryAfter(header, now)
	}
	return e
}

// scrub exists because error bodies are outside our control (a proxy or a
// misconfigured gateway may echo the Authorization header back, in any
// encoding); it runs before excerpt cuts the text short.
func scrub(s, key string) string { return logging.Scrub(s, key) }

// excerpt bounds an unexpected body (e.g. an HTML 502 page) to keep logs sane.
func excerpt(s string) string {
	if len(s) <= maxExcerpt {
		return s
	}
	cut := maxExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// retryAfter prefers Retry-After (delta-seconds or HTTP-date) and falls back
// to X-RateLimit-Reset (unix seconds), the header sendgrid-go itself uses.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d := httpretry.ParseRetryAfter(h.Get("Retry-After"), now); d > 0 {
		return d
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if unix, err := strconv.ParseInt(v, 10, 64); err == nil {
			return max(time.Unix(unix, 0).Sub(now), 0)
		}
	}
	return 0
}
