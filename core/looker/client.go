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
	cfg  Config
	http *http.Client

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
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: !cfg.VerifySSL} //nolint:gosec // the admin's explicit LOOKERSDK_VERIFY_SSL=false
		transport = t
	}
	c := &Client{cfg: cfg, http: &http.Client{Transport: transport, Timeout: cfg.Timeout}}
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
	err := s.c.send(ctx, request{
		method: http.MethodPost, op: "POST /login", path: "/login", idempotent: true,
		contentType: "application/x-www-form-urlencoded", body: []byte(form.Encode()),
	}, "", &tok)
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
	}, func(e *core.Error) { done <- result{nil, e} })
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

// call sends an authenticated JSON request and decodes the answer into out.
// In a dry run (core.PlanFrom) writes are recorded instead of sent.
func (c *Client) call(ctx context.Context, r request, in, out any) error {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("looker: %s: encoding body: %w", r.op, err)
		}
		r.body, r.contentType = b, "application/json"
	}
	if plan := core.PlanFrom(ctx); plan != nil && r.method != http.MethodGet {
		plan.Add(TargetName, r.op, strings.TrimSpace(r.path+" "+string(r.body)))
		if answer, ok := dryRunAnswers[r.op]; ok && out != nil {
			return json.Unmarshal([]byte(answer), out)
		}
		return nil
	}
	relogged := false
	for {
		tok, gen, err := c.token(ctx)
		if err != nil {
			return err
		}
		err = c.send(ctx, r, tok.AccessToken, out)
		if IsUnauthorized(err) && !relogged {
			// A revoked token or clock skew: log in again once, then give up.
			relogged = true
			c.dropToken(gen)
			continue
		}
		if r.method != http.MethodGet {
			core.RecordWrite(ctx, TargetName, r.op, err)
		}
		return err
	}
}

// send performs r with the shared retry policy. token is empty for login.
func (c *Client) send(ctx context.Context, r request, token string, out any) error {
	policy := httpretry.Policy{MaxAttempts: c.cfg.MaxAttempts, BaseDelay: c.cfg.BaseDelay, MaxDelay: c.cfg.MaxDelay}
	return httpretry.Do(ctx, policy, r.idempotent, httpretry.Sleep,
		func() error { return c.sendOnce(ctx, r, token, out) }, httpretry.Classify)
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
