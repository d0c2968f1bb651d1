// Package aac provisions people into Alteryx Analytics Cloud (API v4): it
// ensures a profile's workspace exists, invites people to it with roles in
// batch calls, and removes them on deprovision.
//
// AAC authenticates with OAuth 2.0 access tokens that live minutes and
// refresh tokens that rotate and are single-use, one chain per workspace
// (plus an optional account chain to create workspaces). The live head of
// every chain is kept in the state store and rotated under a lease with
// compare-and-swap, so any number of instances share it safely; see Chain.
package aac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/state"
)

// TargetName is how results, errors and the audit log name AAC.
const TargetName = "aac"

const maxErrorBody = 64 << 10

// Client talks to one AAC region for one account. It is safe for
// concurrent use and meant to live as long as the process.
type Client struct {
	cfg     Config
	http    *http.Client
	limiter *httpretry.Limiter
	tokens  *Tokens
	log     *slog.Logger
}

// New returns a client whose token chains live in store.
func New(cfg Config, store state.Store, log *slog.Logger, transport http.RoundTripper) (*Client, error) {
	if store == nil {
		return nil, errors.New("aac: a state store is required: it holds the live refresh tokens")
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("AAC_BASE_URL is not set")
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	if transport == nil {
		transport = httpretry.NewTransport()
	}
	limiter := httpretry.NewLimiter(cfg.MaxRPS)
	hc := &http.Client{Transport: httpretry.Observing{Base: transport}, Timeout: cfg.Timeout}
	c := &Client{cfg: cfg, http: hc, limiter: limiter, log: log}
	c.tokens = newTokens(&c.cfg, store, hc, log)
	return c, nil
}

// request is one API call. op is "METHOD /path/{template}": errors and the
// audit log name the template, never ids or emails.
type request struct {
	method, op, path string
	query            url.Values
	body             []byte
	chain            *Chain
	workspaceID      ID   // sent as x-trifacta-workspace-id on workspace calls
	account          bool // sent with x-alteryx-account-id
	// idempotent calls are retried on 429, 5xx and transport errors; the
	// others only when AAC cannot have acted (429, connection refused).
	idempotent bool
	// unaudited writes are recorded by the caller, per person (the batch invite).
	unaudited bool
}

// dryRunAnswers are what a dry run pretends AAC answered to writes whose
// answer the flow reads on. A workspace "created" in a dry run has no token
// chain, so the flow stops where a real run would: waiting for a seed.
var dryRunAnswers = map[string]string{
	"POST /v4/workspaces": `{"id":"","name":"(dry run)"}`,
}

// call sends an authenticated JSON request and decodes the answer into out,
// through the shared caller: a write in a plan is recorded, not sent; a
// per-request write (the batch invite) is planned and audited by the
// target for each request it serves.
func (c *Client) call(ctx context.Context, r request, in, out any) error {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("aac: %s: encoding body: %w", r.op, err)
		}
		r.body = b
	}
	rejected := false
	for {
		var used string
		call := httpretry.Call{
			Target: TargetName, Op: r.op, Write: r.method != http.MethodGet, PerRequest: r.unaudited,
			Resource: r.path, Detail: strings.TrimSpace(r.path + " " + string(r.body)), Idempotent: r.idempotent,
			Attempt: func(ctx context.Context, out any) error {
				tok, err := r.chain.Token(ctx)
				if err != nil {
					return err
				}
				used = tok
				return c.sendOnce(ctx, r, tok, out)
			},
		}
		if answer, ok := dryRunAnswers[r.op]; ok {
			call.PlanAnswer = []byte(answer)
		}
		err := httpretry.Caller{Policy: c.cfg.Retry, Limiter: c.limiter}.Do(ctx, call, out)
		if httpretry.StatusOf(err) == http.StatusUnauthorized && !rejected {
			// Revoked early or the clocks disagree: refresh once and retry.
			rejected = true
			r.chain.Reject(used)
			continue
		}
		return err
	}
}

func (c *Client) sendOnce(ctx context.Context, r request, token string, out any) error {
	req, err := httpretry.NewRequest(ctx, TargetName, r.op, r.method, c.cfg.BaseURL+r.path, r.query, r.body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	// The headers Alteryx's own examples send, alongside the query parameters.
	if r.workspaceID != "" {
		req.Header.Set("x-trifacta-workspace-id", string(r.workspaceID))
	}
	if r.account && c.cfg.AccountID != "" {
		req.Header.Set("x-alteryx-account-id", c.cfg.AccountID)
	}
	return httpretry.Exchange(c.http, req, TargetName, r.op, func(resp *http.Response) error { return decodeAPIError(resp, r.op) }, out)
}

// APIError is a non-2xx answer from AAC, decoded from its
// {"exception":{"name","message","details"}} body.
type APIError struct {
	StatusCode int
	Operation  string // "METHOD /path/{template}"
	Name       string // e.g. ValidationFailed, TooManyRequestsException
	Message    string
	Details    string
	RequestID  string // x-trifacta-request-id, for AAC support
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "aac: %s: %d", e.Operation, e.StatusCode)
	for _, s := range []string{e.Name, e.Message, e.Details} {
		if s != "" {
			b.WriteString(" " + s)
		}
	}
	if e.Name == "" && e.Message == "" {
		b.WriteString(" " + http.StatusText(e.StatusCode))
	}
	if e.RequestID != "" {
		b.WriteString(" (x-trifacta-request-id " + e.RequestID + ")")
	}
	return b.String()
}

// Text is AAC's own explanation, for callers.
func (e *APIError) Text() string {
	parts := make([]string, 0, 2)
	for _, s := range []string{e.Message, e.Details} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return http.StatusText(e.StatusCode)
	}
	return strings.Join(parts, ": ")
}

func decodeAPIError(resp *http.Response, op string) error {
	e := &APIError{StatusCode: resp.StatusCode, Operation: op, RequestID: resp.Header.Get("x-trifacta-request-id"),
		RetryAfter: retryAfter(resp.Header, time.Now())}
	var body struct {
		Exception struct {
			Name    string          `json:"name"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"exception"`
		// The API gateway answers in its own shape.
		Fault struct {
			FaultString string `json:"faultstring"`
		} `json:"fault"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(raw, &body) == nil {
		e.Name, e.Message = body.Exception.Name, body.Exception.Message
		e.Details = detailsText(body.Exception.Details)
		if e.Message == "" {
			e.Message = body.Fault.FaultString
		}
	}
	return e
}

// detailsText keeps details readable whether AAC sends a string or an
// object, and short: it ends up in answers and the audit log.
func detailsText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	if s == "null" {
		return ""
	}
	const limit = 500
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}

// retryAfter reads x-retry-after (AAC's rate-limit header), else the
// standard Retry-After.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d := httpretry.ParseRetryAfter(h.Get("x-retry-after"), now); d > 0 {
		return d
	}
	return httpretry.ParseRetryAfter(h.Get("Retry-After"), now)
}

// RetryStatus tells the shared retry loop what this answer means.
func (e *APIError) RetryStatus() (int, time.Duration) { return e.StatusCode, e.RetryAfter }

// IsNotFound reports a 404.
func IsNotFound(err error) bool { return httpretry.StatusOf(err) == http.StatusNotFound }
