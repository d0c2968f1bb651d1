package periscope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/logging"
)

// maxMessage bounds how much of an error body is kept: enough to read
// Periscope's reason, not enough to flood a log line or an HTTP answer.
const maxMessage = 300

// APIError is a non-2xx answer from Periscope. The API's error bodies are
// not documented, so Message is whatever the body said, reduced to one
// trimmed, secret-free line.
type APIError struct {
	StatusCode int
	// Operation is "METHOD /api/v1/path": the route, never a URL, so no
	// email or key can reach an error string through it.
	Operation  string
	Site       string
	Message    string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("periscope: site %s: %s: %d %s", e.Site, e.Operation, e.StatusCode, msg)
}

// AnswerError is a 2xx answer onboard cannot read: the API's answer shapes
// are not documented, and this one matched none of those accepted.
type AnswerError struct {
	Operation, Site, Want string
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("periscope: site %s: %s: the answer is not %s", e.Site, e.Operation, e.Want)
}

// TransportError is a call that got no HTTP answer: refused, reset, timed out.
type TransportError struct {
	Operation string
	Site      string
	msg       string
	err       error // nil when its text carried the key and had to be dropped
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("periscope: site %s: %s: %s", e.Site, e.Operation, e.msg)
}

func (e *TransportError) Unwrap() error { return e.err }

// newTransportError keeps err's text without the URL (net/http puts it in
// every error) and without the key. net/http does not put headers in its
// errors, but should the key ever appear, the original chain is dropped
// rather than kept for errors.Is, so no %+v can print it.
func newTransportError(op, site, key string, err error) *TransportError {
	err = httpretry.StripURL(err)
	msg := err.Error()
	if clean := scrub(msg, key); clean != msg {
		return &TransportError{Operation: op, Site: site, msg: clean}
	}
	return &TransportError{Operation: op, Site: site, msg: msg, err: err}
}

// RetryStatus tells the shared retry loop what this answer means.
func (e *APIError) RetryStatus() (int, time.Duration) { return e.StatusCode, e.RetryAfter }

func statusOf(err error) int {
	if e, ok := errors.AsType[*APIError](err); ok {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports a 404: the user (selected by HTTP-X-EMAIL) or group is absent.
func IsNotFound(err error) bool { return httpretry.StatusOf(err) == http.StatusNotFound }

// MayAlreadyExist reports a refusal that may mean "this email or group
// name is taken". The API documents no status or body for duplicates: a
// 409, or a 400/422 whose text says "already", "taken" or "exist", is read
// as maybe-taken, and callers confirm with a lookup before acting on it.
func MayAlreadyExist(err error) bool {
	e, ok := errors.AsType[*APIError](err)
	if !ok {
		return false
	}
	switch e.StatusCode {
	case http.StatusConflict:
		return true
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		m := strings.ToLower(e.Message)
		return strings.Contains(m, "already") || strings.Contains(m, "taken") || strings.Contains(m, "exist")
	}
	return false
}

// errorMessage reduces an error body of unknown shape to one line. Common
// JSON shapes ({"error"}, {"message"}, {"errors":[…]}) give their text;
// anything else (an HTML proxy page, plain text) is kept as it came. The key
// is removed first, in case a server echoes request headers, then the line
// is trimmed to maxMessage.
func errorMessage(body []byte, key string) string {
	msg := jsonMessage(body)
	if msg == "" {
		msg = string(body)
	}
	return truncate(oneLine(scrub(msg, key)), maxMessage)
}

func jsonMessage(body []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&v) != nil {
		return ""
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	for _, k := range []string{"error", "message", "errors", "detail"} {
		if s := textOf(obj[k]); s != "" {
			return s
		}
	}
	return ""
}

// textOf flattens a string, a list of strings or objects, or an object of
// field → messages (Rails' shape) into "a; b; field c".
func textOf(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []any:
		parts := make([]string, 0, len(t))
		for _, x := range t {
			if s := textOf(x); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		if s := textOf(t["message"]); s != "" {
			return s
		}
		parts := make([]string, 0, len(t))
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if s := textOf(t[k]); s != "" {
				parts = append(parts, k+" "+s)
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

// scrub removes key from s, in any encoding (a proxy may echo it URL- or
// base64-encoded), before the text is cut short. Keys shorter than 4
// characters are not searched for: they would shred ordinary text and
// protect nothing.
func scrub(s, key string) string { return logging.Scrub(s, key) }

func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
