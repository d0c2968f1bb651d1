// Package httpretry is the retry discipline every target client shares:
// exponential backoff with full jitter, a server's Retry-After honoured
// exactly, and no retry of a write the server may have acted on.
package httpretry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onboard-dev/onboard/core"
)

// Policy bounds the retries of one call.
type Policy struct {
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration // also the longest Retry-After that is slept rather than returned
}

// Defaults for the zero fields of a Policy: a few quick retries, and waits
// long enough for a rate limit to clear but short enough to answer a webhook.
const (
	DefaultMaxAttempts = 4
	DefaultBaseDelay   = 250 * time.Millisecond
	DefaultMaxDelay    = 10 * time.Second
)

// WithDefaults fills the zero (or negative) fields of p.
func (p Policy) WithDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	return p
}

// Failure describes one failed attempt, as the client classified it.
type Failure struct {
	Status     int           // the HTTP status; 0 when no answer came
	RetryAfter time.Duration // what the server asked for, 0 if nothing
	Transport  bool          // no answer: refused, reset, timed out
}

// RetryableStatus is what a server answers when it is overloaded or
// restarting. A 500 is included because only idempotent calls retry it (a
// create is retried on 429 alone), and Looker is known to answer a passing 500.
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Do calls try until it succeeds, classify says its error is not worth
// retrying, or the policy says stop. Idempotent calls are retried on
// 429/502/503/504 and transport failures; others only when the server
// cannot have acted: a 429 or a refused connection. A wait longer than
// MaxDelay or the context's deadline is not slept: the last error (with its
// Retry-After) goes back, so the caller can answer 429/503 with Retry-After
// instead of holding a function open.
func Do(ctx context.Context, p Policy, idempotent bool, sleep func(context.Context, time.Duration) error,
	try func() error, classify func(error) (Failure, bool)) error {
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil {
			return nil
		}
		wait, again := p.delay(ctx, attempt, idempotent, err, classify)
		if !again || sleep(ctx, wait) != nil {
			return err
		}
	}
}

func (p Policy) delay(ctx context.Context, attempt int, idempotent bool, err error, classify func(error) (Failure, bool)) (time.Duration, bool) {
	if attempt >= p.MaxAttempts || ctx.Err() != nil {
		return 0, false
	}
	f, ok := classify(err)
	if !ok {
		return 0, false
	}
	switch {
	case f.Status != 0:
		if !RetryableStatus(f.Status) || (!idempotent && f.Status != http.StatusTooManyRequests) {
			return 0, false
		}
	case errors.Is(err, syscall.ECONNREFUSED):
	case !f.Transport || !idempotent:
		return 0, false
	}
	wait := p.BaseDelay << (attempt - 1)
	if wait <= 0 || wait > p.MaxDelay {
		wait = p.MaxDelay
	}
	wait = rand.N(wait) + 1
	if f.RetryAfter > 0 {
		wait = f.RetryAfter
	}
	if wait > p.MaxDelay {
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return 0, false
	}
	return wait, true
}

// Sleep waits d, or less if ctx ends first (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ParseRetryAfter reads a Retry-After value: delta-seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// StripURL drops the URL net/http puts in its errors: it can carry an
// email (a path) or a secret (a query), and errors reach logs and answers.
func StripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// TransportError is a call that got no HTTP answer: refused, reset, timed
// out. Its text names the service and the operation template, never the URL.
type TransportError struct {
	Service   string // "looker", "aac"
	Operation string // "METHOD /path/{template}"
	Err       error
}

func (e *TransportError) Error() string { return e.Service + ": " + e.Operation + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// StatusError is an API error that knows what it means for a retry.
type StatusError interface {
	error
	RetryStatus() (status int, retryAfter time.Duration)
}

// StatusOf is the HTTP status of the API error in err's chain; 0 when the
// call got no answer or err is not an API error.
func StatusOf(err error) int {
	var se StatusError
	if errors.As(err, &se) {
		status, _ := se.RetryStatus()
		return status
	}
	return 0
}

// MayHaveActed reports whether a write that failed may still have been
// carried out: the server answered 5xx, or no answer came (a reset, a
// timeout). A 4xx, a 429 included, and a refused connection mean it was
// not. What it may have granted belongs on record: taking back a grant
// that never arrived costs a no-op, one made and unrecorded is never taken.
func MayHaveActed(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	status := StatusOf(err)
	return status == 0 || status >= 500
}

// Classify is the classification Do needs for clients whose API errors are
// StatusErrors and whose no-answer errors are *TransportErrors.
func Classify(err error) (Failure, bool) {
	var se StatusError
	if errors.As(err, &se) {
		status, retryAfter := se.RetryStatus()
		return Failure{Status: status, RetryAfter: retryAfter}, true
	}
	var te *TransportError
	if errors.As(err, &te) {
		return Failure{Transport: true}, true
	}
	return Failure{}, false
}

// NewRequest builds a call to a JSON API the way every target client sends
// it: query encoded, Accept and User-Agent set, and a body, when there is
// one, marked as JSON (a caller sending a form overrides Content-Type).
// Errors name the service and operation, never the URL, which may carry
// an id or an email.
func NewRequest(ctx context.Context, service, op, method, rawURL string, query url.Values, body []byte) (*http.Request, error) {
	if len(query) > 0 {
		rawURL += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", service, op, StripURL(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "onboard")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Exchange sends req and reads the answer: a 2xx JSON body is decoded into
// out (nil discards it), any other status becomes decodeError's error, and
// no answer at all a *TransportError.
func Exchange(client *http.Client, req *http.Request, service, op string, decodeError func(*http.Response) error, out any) error {
	resp, err := client.Do(req)
	if err != nil {
		return &TransportError{Service: service, Operation: op, Err: StripURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: %s: decoding answer: %w", service, op, err)
	}
	return nil
}

// Caller is the one call path of every target client. The client says how
// to make one attempt (its URL, headers, error decoding); the caller owns
// what no client may forget: in a plan (core.PlanFrom) a write is recorded
// and never sent, a real write is retried by the shared discipline and
// lands in the audit log whatever its outcome, and reads and sign-ins are
// retried the same way.
type Caller struct {
	Policy Policy
	// Sleep waits between attempts; nil: Sleep.
	Sleep func(context.Context, time.Duration) error
	// Classify says what a failed attempt means for a retry; nil: Classify.
	Classify func(error) (Failure, bool)
	// Limiter paces every attempt, shared by the whole client; nil: none.
	Limiter *Limiter
}

// Call is one request through a Caller.
type Call struct {
	// Target names the write in plans and the audit log ("looker",
	// "periscope:acme").
	Target string
	// Op is "METHOD /path/{template}".
	Op string
	// Write marks a call that changes the tool's state; reads and sign-ins
	// are not writes.
	Write bool
	// PerRequest marks a write that serves several requests at once (a
	// batch invite): its client plans and audits it for each of them.
	PerRequest bool
	// Resource is what the write acts on, concretely: its path with the
	// ids filled in ("/users/42/roles"), for the audit log.
	Resource string
	// Detail is what a plan shows of the write: its concrete path and body,
	// never a secret.
	Detail string
	// PlanAnswer is what a plan pretends the write answered, for flows that
	// read on (a new user's id); nil answers nothing.
	PlanAnswer []byte
	// Idempotent calls are retried on 429, 5xx and transport failures;
	// others only when the server cannot have acted.
	Idempotent bool
	// Attempt makes one attempt, decoding a success into out.
	Attempt func(ctx context.Context, out any) error
}

// Do runs call, decoding its answer into out (nil discards it).
func (c Caller) Do(ctx context.Context, call Call, out any) error {
	if call.Write {
		if plan := core.PlanFrom(ctx); plan != nil {
			if !call.PerRequest {
				plan.Add(call.Target, call.Op, call.Detail)
			}
			if call.PlanAnswer != nil && out != nil {
				return json.Unmarshal(call.PlanAnswer, out)
			}
			return nil
		}
	}
	sleep, classify := c.Sleep, c.Classify
	if sleep == nil {
		sleep = Sleep
	}
	if classify == nil {
		classify = Classify
	}
	policy := c.Policy.WithDefaults()
	var refused bool
	attempt := func() error {
		if c.Limiter != nil {
			// A call refused with 429 has just waited its Retry-After in
			// Do: the pause the refusal set is served.
			wait := c.Limiter.Wait
			if refused {
				wait = c.Limiter.Turn
			}
			if err := wait(ctx, policy.MaxDelay, sleep); err != nil {
				return err
			}
		}
		actx := ctx
		if c.Limiter != nil {
			actx = context.WithValue(ctx, limiterKey{}, c.Limiter)
		}
		err := call.Attempt(actx, out)
		f, _ := classify(err)
		refused = f.Status == http.StatusTooManyRequests
		return err
	}
	err := Do(ctx, policy, call.Idempotent, sleep, attempt, classify)
	if call.Write && !call.PerRequest {
		core.RecordWrite(ctx, call.Target, call.Op, call.Resource, err)
	}
	return err
}

// Answer is the one mapping from a client's error to the engine's, for
// every target: an error already classified passes through; 429 is rate
// limited and 5xx unavailable, both with the server's Retry-After; any
// other answer is a refusal, worded by refusal; no answer at all is
// unavailable, since a moment may fix it. Clients handle their special
// cases (a missing role, a stale cache) before calling it.
func Answer(target string, err error, refusal func(status int) string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*core.Error](err); ok {
		return err
	}
	se, ok := errors.AsType[StatusError](err)
	if !ok {
		return core.Unavailable(target, 0, err)
	}
	status, retryAfter := se.RetryStatus()
	switch {
	case status == http.StatusTooManyRequests:
		return core.RateLimited(target, retryAfter, err)
	case status >= 500:
		return core.Unavailable(target, retryAfter, err)
	}
	return core.Refused(target, refusal(status), err)
}
