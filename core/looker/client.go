// Package looker is a thin, typed client for the parts of the Looker API 4.0
// that provisioning needs, and the Looker provisioning target built on it.
// Request shapes follow Looker.4.0.json (Swagger 2); the official Go SDK is
// not used because it has no context, no typed errors, no retries and no
// re-login on 401 (sdk-codegen #1185, #1606).
package looker

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

const (
	apiPrefix         = "/api/4.0"
	tokenEarlyRefresh = 60 * time.Second
	maxErrorBody      = 64 << 10
)

// Client talks to one Looker instance. It is safe for concurrent use and
// meant to live as long as the process, so its token is shared by every request.
type Client struct {
	cfg     Config
	http    *http.Client
	limiter *httpretry.Limiter

	mu       sync.Mutex
	tokens   oauth2.TokenSource
	tokenGen int   // bumped when a 401 proves the cached token dead
	me       *User // the API user, once asked
}

// New returns a client for cfg. It does not log in: call Login to warm the
// token, or let the first call do it.
func New(cfg Config, transport http.RoundTripper) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	policy := httpretry.Policy{MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseDelay, MaxDelay: cfg.MaxDelay}.WithDefaults()
	cfg.MaxAttempts, cfg.BaseDelay, cfg.MaxDelay = policy.MaxAttempts, policy.BaseDelay, policy.MaxDelay
	if transport == nil {
		t := httpretry.NewTransport()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: !cfg.VerifySSL} //nolint:gosec // the admin's explicit LOOKERSDK_VERIFY_SSL=false
		transport = t
	}
	limiter := httpretry.NewLimiter(cfg.MaxRPS)
	c := &Client{cfg: cfg, limiter: limiter, http: &http.Client{Transport: httpretry.Observing{Base: transport}, Timeout: cfg.Timeout}}
	c.tokens = c.newTokenSource()
	return c
}

// newTokenSource caches one login until 60 s before it expires.
// ReuseTokenSource serialises Token calls, so concurrent requests share one login.
func (c *Client) newTokenSource() oauth2.TokenSource {
	return oauth2.ReuseTokenSourceWithExpiry(nil, loginSource{c}, tokenEarlyRefresh)
}

// Login fetches a token now, so the first request of an instance does not pay for it.
func (c *Client) Login(ctx context.Context) error {
	_, _, err := c.token(ctx)
	return err
}

type loginSource struct{ c *Client }

// Token logs in with a form body: credentials in the query are deprecated and
// end up in access logs.
func (s loginSource) Token() (*oauth2.Token, error) {
	// oauth2 gives no context here; the shared login is bounded by the
	// configured timeout, and each waiting caller by its own context (see token).
	ctx, cancel := context.WithTimeout(context.Background(), s.c.cfg.Timeout)
	defer cancel()
	id, secret := s.c.cfg.ClientID, s.c.cfg.ClientSecret
	if s.c.cfg.Credentials != nil {
		var err error
		if id, secret, err = s.c.cfg.Credentials(ctx); err != nil {
			return nil, fmt.Errorf("looker: reading API credentials: %w", err)
		}
	}
	form := url.Values{"client_id": {id}, "client_secret": {secret}}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	login := request{
		method: http.MethodPost, op: "POST /login", path: "/login", idempotent: true,
		contentType: "application/x-www-form-urlencoded", body: []byte(form.Encode()),
	}
	err := s.c.caller().Do(ctx, s.c.call1(login, func(context.Context) (string, error) { return "", nil }), &tok)
	if err != nil {
		return nil, loginRefused(err)
	}
	if tok.AccessToken == "" {
		return nil, errors.New("looker: POST /login: answer carried no access token")
	}
	if s.c.cfg.LoggedIn != nil {
		s.c.cfg.LoggedIn(tok.AccessToken)
	}
	t := &oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer"}
	if tok.ExpiresIn > 0 {
		t.Expiry = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return t, nil
}

// loginRefused replaces Looker's answer to a failed login with a fixed one
// naming the settings to check. The login's answer is never shown: what
// answered may be a proxy or a look-alike that echoes the form it was sent,
// client secret included.
func loginRefused(err error) error {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	fixed := &APIError{StatusCode: apiErr.StatusCode, Operation: apiErr.Operation, RetryAfter: apiErr.RetryAfter}
	switch status := apiErr.StatusCode; {
	case status == http.StatusNotFound || status == http.StatusUnauthorized || status == http.StatusForbidden:
		fixed.Message = "Looker refused the API credentials: check LOOKERSDK_CLIENT_ID and LOOKERSDK_CLIENT_SECRET (an API key pair of onboard's Looker user)"
	case status == http.StatusTooManyRequests || status >= 500:
		fixed.Message = "the Looker login is unavailable; if this lasts, check that LOOKERSDK_BASE_URL is the Looker API host (e.g. https://acme.cloud.looker.com) and that no proxy in between is failing"
	default:
		fixed.Message = "Looker refused the login request: check that LOOKERSDK_BASE_URL is the Looker API host (e.g. https://acme.cloud.looker.com), then LOOKERSDK_CLIENT_ID and LOOKERSDK_CLIENT_SECRET"
	}
	return fixed
}

// token returns a valid token and the generation it belongs to. A caller whose
// context ends stops waiting; the login itself carries on for the others.
func (c *Client) token(ctx context.Context) (*oauth2.Token, int, error) {
	c.mu.Lock()
	ts, gen := c.tokens, c.tokenGen
	c.mu.Unlock()
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	core.Go(func() {
		t, err := ts.Token()
		done <- result{t, err}
	}, func(e error) { done <- result{nil, e} })
	select {
	case r := <-done:
		return r.tok, gen, r.err
	case <-ctx.Done():
		return nil, gen, ctx.Err()
	}
}

// dropToken forgets the token of generation gen after Looker rejected it,
// unless another caller already did.
func (c *Client) dropToken(gen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokenGen == gen {
		c.tokenGen++
		c.tokens = c.newTokenSource()
	}
}

// request is one API call. op is "METHOD /path/{template}" for errors and
// spec checks; path is the escaped path below /api/4.0.
type request struct {
	method, op, path string
	query            url.Values
	contentType      string
	body             []byte
	// idempotent calls are retried on 429/502/503/504 and transport errors.
	// Others only when Looker cannot have acted: 429 and refused connections.
	idempotent bool
}

// dryRunAnswers are what a dry run pretends Looker answered to writes whose
// answer the flow reads on: a new user needs an id to be granted things.
var dryRunAnswers = map[string]string{
	"POST /users":            `{"id":"new"}`,
	"POST /users/embed_user": `{"id":"new"}`,
	"POST /users/{user_id}/credentials_email/password_reset": `{"password_reset_url":"(dry run: a setup link)"}`,
}

// call sends an authenticated JSON request and decodes the answer into out,
// through the shared caller (a write in a plan is recorded, not sent).
func (c *Client) call(ctx context.Context, r request, in, out any) error {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("looker: %s: encoding body: %w", r.op, err)
		}
		r.body, r.contentType = b, "application/json"
	}
	relogged := false
	for {
		var gen int
		call := c.call1(r, func(ctx context.Context) (string, error) {
			tok, g, err := c.token(ctx)
			if err != nil {
				return "", err
			}
			gen = g
			return tok.AccessToken, nil
		})
		err := c.caller().Do(ctx, call, out)
		if IsUnauthorized(err) && !relogged {
			// A revoked token or clock skew: log in again once, then give up.
			relogged = true
			c.dropToken(gen)
			continue
		}
		return err
	}
}

// call1 is r as one call through the shared caller; token gives the
// bearer token of an attempt ("" for the login itself).
func (c *Client) call1(r request, token func(context.Context) (string, error)) httpretry.Call {
	call := httpretry.Call{
		Target: TargetName, Op: r.op, Idempotent: r.idempotent,
		// The login changes nothing in Looker (and its body is a secret).
		Write: r.method != http.MethodGet && r.path != "/login",
		Attempt: func(ctx context.Context, out any) error {
			tok, err := token(ctx)
			if err != nil {
				return err
			}
			return c.sendOnce(ctx, r, tok, out)
		},
	}
	if call.Write {
		call.Resource = r.path
		call.Detail = strings.TrimSpace(r.path + " " + string(r.body))
		if a, ok := dryRunAnswers[r.op]; ok {
			call.PlanAnswer = []byte(a)
		}
	}
	return call
}

func (c *Client) caller() httpretry.Caller {
	return httpretry.Caller{Policy: httpretry.Policy{MaxAttempts: c.cfg.MaxAttempts, BaseDelay: c.cfg.BaseDelay, MaxDelay: c.cfg.MaxDelay}, Limiter: c.limiter}
}

func (c *Client) sendOnce(ctx context.Context, r request, token string, out any) error {
	req, err := httpretry.NewRequest(ctx, TargetName, r.op, r.method, c.cfg.BaseURL+apiPrefix+r.path, r.query, r.body)
	if err != nil {
		return err
	}
	// x-looker-appid mirrors the SDKs so Looker's System Activity can tell callers apart.
	req.Header.Set("X-Looker-Appid", "onboard")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return httpretry.Exchange(c.http, req, TargetName, r.op, func(resp *http.Response) error { return decodeAPIError(resp, r.op) }, out)
}

func decodeAPIError(resp *http.Response, op string) error {
	e := &APIError{StatusCode: resp.StatusCode, Operation: op, RetryAfter: httpretry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var body struct {
		Message          *string                 `json:"message"`
		DocumentationURL *string                 `json:"documentation_url"`
		Errors           []ValidationErrorDetail `json:"errors"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(raw, &body) == nil {
		if body.Message != nil {
			e.Message = *body.Message
		}
		if body.DocumentationURL != nil {
			e.DocumentationURL = *body.DocumentationURL
		}
		e.Errors = body.Errors
	}
	return e
}
