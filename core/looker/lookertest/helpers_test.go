package lookertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for token and reset-link expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// violations collects spec violations for tests that send bad requests on
// purpose; other tests let NewTestServer fail on them.
type violations struct {
	mu   sync.Mutex
	errs []error
}

func (v *violations) record(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err)
}

func (v *violations) all() []error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]error{}, v.errs...)
}

// client is a bare net/http caller; it deliberately does not use core/looker.
type client struct {
	t     *testing.T
	s     *Server
	token string
	// checkResponses validates the fake's own answers against the spec;
	// off for numeric ids and injected faults, which break it on purpose.
	checkResponses bool
}

// newFake starts a validating fake and logs in.
func newFake(t *testing.T, opts Options) (*Server, *client) {
	t.Helper()
	s := NewTestServer(t, opts)
	c := &client{t: t, s: s, checkResponses: !opts.NumericIDs}
	c.token = c.login()
	return s, c
}

// newRecordingFake is newFake for tests that break the spec on purpose.
func newRecordingFake(t *testing.T, opts Options) (*Server, *client, *violations) {
	t.Helper()
	v := &violations{}
	opts.SpecViolation = v.record
	s, c := newFake(t, opts)
	return s, c, v
}

func (c *client) login() string {
	c.t.Helper()
	form := url.Values{"client_id": {c.s.opts.ClientID}, "client_secret": {c.s.opts.ClientSecret}}
	var tok accessToken
	c.call("POST", "/login", nil, form, http.StatusOK, &tok)
	return tok.AccessToken
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// do sends body as a form (url.Values), raw bytes (string), or JSON.
func (c *client) do(method, path string, query url.Values, body any) result {
	c.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(raw), "application/json"
	}
	u := c.s.URL + APIPrefix + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "token "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if c.checkResponses && c.s.opts.Spec != nil {
		if err := c.s.opts.Spec.validateResponse(method, escapedPath(u), resp.StatusCode, raw); err != nil {
			c.t.Errorf("the fake's answer breaks the spec: %v\nbody: %s", err, raw)
		}
	}
	return result{resp.StatusCode, resp.Header, raw}
}

func escapedPath(rawURL string) string {
	u, _ := url.Parse(rawURL)
	return strings.TrimPrefix(u.EscapedPath(), APIPrefix)
}

// call is do plus a status assertion and JSON decoding into out (if non-nil).
func (c *client) call(method, path string, query url.Values, body any, want int, out any) result {
	c.t.Helper()
	r := c.do(method, path, query, body)
	if r.status != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// errorBody asserts a Looker Error/ValidationError body and returns it.
func (c *client) errorBody(r result) validationError {
	c.t.Helper()
	var e validationError
	if err := json.Unmarshal(r.body, &e); err != nil || e.Message == "" || e.DocumentationURL == "" {
		c.t.Fatalf("not a Looker error body (message and documentation_url required): %s", r.body)
	}
	return e
}

// newUser creates a user through the API, with email credentials if email != "".
func (c *client) newUser(first, last, email string) User {
	c.t.Helper()
	var u User
	c.call("POST", "/users", nil, map[string]any{"first_name": first, "last_name": last}, http.StatusOK, &u)
	if email != "" {
		c.call("POST", "/users/"+u.ID+"/credentials_email", nil, map[string]any{"email": email}, http.StatusOK, nil)
	}
	return u
}

// spec loads the spec for validator tests, skipping only where
// NewTestServer would skip validation (spec absent outside CI).
func mustSpec(t *testing.T) *Spec {
	t.Helper()
	sp := testSpec(t)
	if sp == nil {
		t.Skip("Looker spec not found; validation tests need it (see NewTestServer)")
	}
	return sp
}
