package httpretry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

var policy = Policy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Second}

type failure struct{ f Failure }

func (e failure) Error() string { return fmt.Sprintf("failure %+v", e.f) }

func classify(err error) (Failure, bool) {
	var f failure
	if errors.As(err, &f) {
		return f.f, true
	}
	return Failure{}, false
}

// run counts attempts and records every wait instead of sleeping it.
func run(t *testing.T, idempotent bool, errs ...error) (attempts int, waits []time.Duration, err error) {
	t.Helper()
	sleep := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	err = Do(context.Background(), policy, idempotent, sleep, func() error {
		attempts++
		if attempts <= len(errs) {
			return errs[attempts-1]
		}
		return nil
	}, classify)
	return attempts, waits, err
}

func TestDo(t *testing.T) {
	status := func(code int, ra time.Duration) error { return failure{Failure{Status: code, RetryAfter: ra}} }
	transport := failure{Failure{Transport: true}}
	refused := fmt.Errorf("dial: %w", errors.Join(syscall.ECONNREFUSED, transport))
	cases := []struct {
		name       string
		idempotent bool
		errs       []error
		attempts   int
		ok         bool
	}{
		{"503 then ok, idempotent", true, []error{status(503, 0)}, 2, true},
		{"429 honoured for a create", false, []error{status(429, 0)}, 2, true},
		{"503 not retried for a create", false, []error{status(503, 0)}, 1, false},
		{"400 never retried", true, []error{status(400, 0)}, 1, false},
		{"transport retried when idempotent", true, []error{transport}, 2, true},
		{"transport not retried for a create", false, []error{transport}, 1, false},
		{"refused connection retried for a create", false, []error{refused}, 2, true},
		{"unknown errors not retried", true, []error{errors.New("boom")}, 1, false},
		{"gives up after MaxAttempts", true, []error{status(503, 0), status(503, 0), status(503, 0), status(503, 0)}, 4, false},
		{"Retry-After over the cap returned, not slept", true, []error{status(429, time.Minute)}, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, _, err := run(t, tc.idempotent, tc.errs...)
			if n != tc.attempts || (err == nil) != tc.ok {
				t.Errorf("attempts %d err %v, want %d ok=%v", n, err, tc.attempts, tc.ok)
			}
		})
	}
}

func TestRetryAfterIsSleptExactly(t *testing.T) {
	_, waits, err := run(t, true, failure{Failure{Status: 429, RetryAfter: 7 * time.Second}})
	if err != nil || len(waits) != 1 || waits[0] != 7*time.Second {
		t.Errorf("waits %v err %v, want exactly the 7s Retry-After", waits, err)
	}
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	p := Policy{MaxAttempts: 10, BaseDelay: time.Second, MaxDelay: 4 * time.Second}
	for attempt := 1; attempt < 10; attempt++ {
		d, ok := p.delay(context.Background(), attempt, true, failure{Failure{Status: 503}}, classify)
		limit := min(time.Second<<(attempt-1), 4*time.Second)
		if !ok || d <= 0 || d > limit {
			t.Errorf("attempt %d: wait %s, want within (0, %s]", attempt, d, limit)
		}
	}
}

func TestDeadlineShorterThanWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, ok := policy.delay(ctx, 1, true, failure{Failure{Status: 429, RetryAfter: 5 * time.Second}}, classify); ok {
		t.Error("a wait past the context's deadline must not be attempted")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		" 5 ":                           5 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Sun, 22 Nov 2026 09:01:00 GMT": time.Minute,
		"Sun, 22 Nov 2026 08:00:00 GMT": 0,
	} {
		if got := ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestStripURL(t *testing.T) {
	err := &url.Error{Op: "Get", URL: "https://x/users/credential/email/ada@example.com", Err: errors.New("refused")}
	if got := StripURL(err); got.Error() != "refused" {
		t.Errorf("StripURL kept %q", got)
	}
}

func TestExchange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(`{"id":"7"}`))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	addr := srv.URL
	apiErr := errors.New("decoded api error")
	decode := func(resp *http.Response) error {
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("decodeError got %d", resp.StatusCode)
		}
		return apiErr
	}
	get := func(path string, out any) error {
		req, _ := http.NewRequest(http.MethodGet, addr+path, nil)
		return Exchange(http.DefaultClient, req, "svc", "GET /thing/{id}", decode, out)
	}
	var got struct{ ID string }
	if err := get("/ok", &got); err != nil || got.ID != "7" {
		t.Errorf("2xx: %+v %v", got, err)
	}
	if err := get("/empty", &got); err != nil {
		t.Errorf("204: %v", err)
	}
	if err := get("/teapot", nil); !errors.Is(err, apiErr) {
		t.Errorf("non-2xx: %v", err)
	}
	srv.Close()
	err := get("/secret-path/ada@example.com", nil)
	var te *TransportError
	if !errors.As(err, &te) || strings.Contains(err.Error(), "ada@example.com") || !strings.HasPrefix(err.Error(), "svc: GET /thing/{id}: ") {
		t.Errorf("no answer: %v", err)
	}
	if f, ok := Classify(err); !ok || !f.Transport {
		t.Errorf("Classify(%v) = %+v %v", err, f, ok)
	}
	if _, ok := Classify(apiErr); ok {
		t.Error("an error that is neither a StatusError nor a TransportError must not be retried")
	}
	if f, ok := Classify(fmt.Errorf("wrapped: %w", statusErr{429, 3 * time.Second})); !ok || f.Status != 429 || f.RetryAfter != 3*time.Second {
		t.Errorf("Classify(StatusError) = %+v %v", f, ok)
	}
}

type statusErr struct {
	status int
	after  time.Duration
}

func (e statusErr) Error() string                     { return "status" }
func (e statusErr) RetryStatus() (int, time.Duration) { return e.status, e.after }

// Every client's calls carry the same headers; a request that cannot be
// built names the operation, never the URL (it may hold an email).
func TestNewRequest(t *testing.T) {
	req, err := NewRequest(context.Background(), "aac", "POST /v4/x", http.MethodPost, "https://h.example/v4/x",
		url.Values{"accountId": {"7"}}, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.String() != "https://h.example/v4/x?accountId=7" || req.Header.Get("Content-Type") != "application/json" ||
		req.Header.Get("Accept") != "application/json" || req.Header.Get("User-Agent") != "onboard" {
		t.Errorf("request %s %v", req.URL, req.Header)
	}
	if req, _ := NewRequest(context.Background(), "aac", "GET /v4/x", http.MethodGet, "https://h.example/v4/x", nil, nil); req.Header.Get("Content-Type") != "" || req.Body != nil {
		t.Errorf("a bodiless request has Content-Type %q", req.Header.Get("Content-Type"))
	}
	_, err = NewRequest(context.Background(), "looker", "GET /users/{id}", http.MethodGet, "https://h.example/users/ada@example.com\x7f", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "looker: GET /users/{id}") || strings.Contains(err.Error(), "ada@example.com") {
		t.Errorf("error %v: want the operation named and the URL left out", err)
	}
}

type apiError struct{ status int }

func (e *apiError) Error() string                     { return "api error" }
func (e *apiError) RetryStatus() (int, time.Duration) { return e.status, 0 }

// StatusOf reads the status through wrapping; no answer has none.
func TestStatusOf(t *testing.T) {
	if got := StatusOf(fmt.Errorf("creating: %w", &apiError{404})); got != 404 {
		t.Errorf("wrapped 404: %d", got)
	}
	if got := StatusOf(&TransportError{Service: "aac", Operation: "GET /x", Err: errors.New("reset")}); got != 0 {
		t.Errorf("no answer: %d, want 0", got)
	}
}
