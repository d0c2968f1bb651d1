// Package periscope provisions people into Periscope Data, now Sisense for
// Cloud Data Teams, through its Users & Groups API v1: one client for every
// site (each site has its own API key) and one core.Target per site.
//
// The API is known from the vendor's documentation index and community
// examples, which show requests but no status codes, error bodies or rate
// limits. Where they are silent this package says what it assumes, accepts
// the answer shapes a Rails API plausibly sends, and keeps unknown error
// bodies (trimmed, without the key) so a surprise explains itself.
package periscope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

// DefaultBaseURL is where the official documentation serves the API; the
// community examples use https://api.periscopedata.com, hence PERISCOPE_BASE_URL.
const DefaultBaseURL = "https://app.periscopedata.com"

const (
	apiPrefix      = "/api/v1"
	defaultTimeout = 30 * time.Second
	maxErrorBody   = 64 << 10
	maxBody        = 8 << 20 // a list of every user of a large site
)

// Header names as the API's examples spell them. Go sends them in canonical
// case (Http-X-Partner-Auth), which the official documentation also uses.
const (
	headerAuth  = "HTTP-X-PARTNER-AUTH"
	headerEmail = "HTTP-X-EMAIL"
)

// KeyFunc returns a site's API key. It is called for every request, so a
// rotated key is used as soon as the secret source serves it.
type KeyFunc func(ctx context.Context, site string) (string, error)

// Config configures a Client.
type Config struct {
	// BaseURL is the API host, DefaultBaseURL when empty. A pasted /api/v1
	// suffix is removed.
	BaseURL string
	Keys    KeyFunc
	// TestMode adds test_mode=true to every write: the API's own switch for
	// trying a script out (what Periscope does then, validate without
	// writing, is not documented).
	TestMode bool
	// Timeout bounds each HTTP attempt (default 30 s).
	Timeout time.Duration
	// MaxRPS caps the calls a second to the host, whichever request makes
	// them; the pace under it is learned from refusals (0: no cap).
	MaxRPS float64
	// MaxAttempts, BaseDelay and MaxDelay shape retries: exponential backoff
	// with full jitter from BaseDelay, or Retry-After when the server sends
	// one; a wait longer than MaxDelay is not slept but returned to the
	// caller (defaults 4, 250 ms, 10 s).
	MaxAttempts         int
	BaseDelay, MaxDelay time.Duration
}

// Client talks to the Users & Groups API of any number of sites. It holds
// no key: each request asks Config.Keys. Safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	http *http.Client
	// limiters pace each site on its own: every site has its own API key,
	// and a key is what a rate limit counts.
	limitersMu sync.Mutex
	limiters   map[string]*httpretry.Limiter
	sleep      func(context.Context, time.Duration) error // replaced by tests to observe waits
}

// New returns a client; transport nil means httpretry.NewTransport().
func New(cfg Config, transport http.RoundTripper) (*Client, error) {
	base, err := NormalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Keys == nil {
		return nil, errors.New("periscope: no key source configured")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	policy := httpretry.Policy{MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseDelay, MaxDelay: cfg.MaxDelay}.WithDefaults()
	cfg.MaxAttempts, cfg.BaseDelay, cfg.MaxDelay = policy.MaxAttempts, policy.BaseDelay, policy.MaxDelay
	if transport == nil {
		transport = httpretry.NewTransport()
	}
	return &Client{cfg: cfg, base: base, limiters: map[string]*httpretry.Limiter{}, sleep: httpretry.Sleep,
		http: &http.Client{Transport: httpretry.Observing{Base: transport}, Timeout: cfg.Timeout}}, nil
}

// NormalizeBaseURL checks PERISCOPE_BASE_URL and returns it without a
// trailing slash or /api/v1. The value is not repeated in the error: a URL
// pasted with credentials in it would otherwise reach the log.
func NormalizeBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return DefaultBaseURL, nil
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("PERISCOPE_BASE_URL must be an http(s) URL without credentials or query, like " + DefaultBaseURL)
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), apiPrefix)
	return strings.TrimRight(u.String(), "/"), nil
}

// TestMode reports whether writes carry test_mode=true.
func (c *Client) TestMode() bool { return c.cfg.TestMode }

// call is one API request. path is below /api/v1 and never holds a
// variable part, so operation names in errors and the audit log are fixed.
type call struct {
	method, path string
	email        string // sent as HTTP-X-EMAIL, the API's user selector
	body         any
	// idempotent calls are retried on 429, 5xx and transport failures;
	// others only when the server cannot have acted: 429 or a refused connection.
	idempotent bool
}

func (r call) op() string { return r.method + " " + apiPrefix + r.path }

func (r call) write() bool { return r.method != http.MethodGet }

// do sends r to site through the shared caller and returns the answer's
// body: a write in a plan is recorded, not sent (the flow tolerates the
// undocumented answer bodies being absent anyway), and every real write is
// in the audit log, whatever its outcome.
func (c *Client) do(ctx context.Context, site string, r call) ([]byte, error) {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("periscope: %s: encoding body: %w", r.op(), err)
		}
	}
	var raw []byte
	caller := httpretry.Caller{
		Policy: httpretry.Policy{MaxAttempts: c.cfg.MaxAttempts, BaseDelay: c.cfg.BaseDelay, MaxDelay: c.cfg.MaxDelay},
		Sleep:  c.sleep, Classify: classifyFailure, Limiter: c.limiter(site),
	}
	err := caller.Do(ctx, httpretry.Call{
		Target: TargetName(site), Op: r.op(), Write: r.write(), Idempotent: r.idempotent,
		Resource: strings.TrimSpace(apiPrefix + r.path + " " + r.email),
		Detail:   strings.TrimSpace(r.email + " " + string(body)),
		Attempt: func(ctx context.Context, _ any) error {
			var err error
			raw, err = c.sendOnce(ctx, site, r, body)
			return err
		},
	}, nil)
	if err != nil {
		return nil, err
	}
	return raw, nil
}

// classifyFailure tells the retry loop what an error of this client means;
// its transport errors are its own (they scrub the site key).
// limiter is the site's, made on its first call.
func (c *Client) limiter(site string) *httpretry.Limiter {
	c.limitersMu.Lock()
	defer c.limitersMu.Unlock()
	l, ok := c.limiters[site]
	if !ok {
		l = httpretry.NewLimiter(c.cfg.MaxRPS)
		c.limiters[site] = l
	}
	return l
}

func classifyFailure(err error) (httpretry.Failure, bool) {
	if _, ok := errors.AsType[*TransportError](err); ok {
		return httpretry.Failure{Transport: true}, true
	}
	return httpretry.Classify(err)
}

func (c *Client) sendOnce(ctx context.Context, site string, r call, body []byte) ([]byte, error) {
	key, err := c.cfg.Keys(ctx, site)
	if err != nil {
		return nil, err
	}
	var query url.Values
	if r.write() && c.cfg.TestMode {
		query = url.Values{"test_mode": {"true"}}
	}
	req, err := httpretry.NewRequest(ctx, "periscope: site "+site, r.op(), r.method, c.base+apiPrefix+r.path, query, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerAuth, site+":"+key)
	if r.email != "" {
		req.Header.Set(headerEmail, r.email)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, newTransportError(r.op(), site, key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, &APIError{
			StatusCode: resp.StatusCode, Operation: r.op(), Site: site,
			Message:    errorMessage(raw, key),
			RetryAfter: httpretry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, newTransportError(r.op(), site, key, err)
	}
	return raw, nil
}
