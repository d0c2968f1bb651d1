// Package sendgrid sends onboard's welcome email through the SendGrid v3
// Mail Send API: sendgrid-go's mail helpers shape the payload, and the
// shared caller of every target client sends it, once, with a timeout,
// keeping the API key out of every error and log line.
package sendgrid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

const mailSendPath = "/v3/mail/send"

// maxErrorBody bounds what is read of an answer: errors are short.
const maxErrorBody = 64 << 10

// Client sends mail. It is safe for concurrent use.
type Client struct {
	apiKey  string
	baseURL string
	timeout time.Duration
	http    *http.Client
	limiter *httpretry.Limiter
}

// New validates cfg and returns a Client. Errors never contain the key.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("sendgrid: APIKey is required")
	}
	// A control character or space would corrupt the Authorization header;
	// net/http would reject it only at send time.
	if strings.ContainsFunc(cfg.APIKey, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, errors.New("sendgrid: APIKey contains whitespace or control characters")
	}
	base, err := normalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("sendgrid: Timeout must not be negative, got %s", cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	// A copy: the caller's client may serve others, who are not paced here.
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	}
	transport := hc.Transport
	if transport == nil {
		transport = httpretry.NewTransport()
	}
	limiter := httpretry.NewLimiter(cfg.MaxRPS)
	hc.Transport = httpretry.Observing{Base: transport}
	return &Client{apiKey: cfg.APIKey, baseURL: base, timeout: timeout, http: hc, limiter: limiter}, nil
}

func normalizeBaseURL(raw string) (string, error) {
	if raw == "" {
		return DefaultBaseURL, nil
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// The *url.Error text repeats the raw input; keep only the reason.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", fmt.Errorf("sendgrid: invalid BaseURL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("sendgrid: invalid BaseURL %s: scheme must be http or https", u.Redacted())
	case u.Host == "":
		return "", fmt.Errorf("sendgrid: invalid BaseURL %s: missing host", u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("sendgrid: invalid BaseURL %s: credentials belong in APIKey, not the URL", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("sendgrid: invalid BaseURL %s: query and fragment are not allowed", u.Redacted())
	}
	// People paste the full endpoint from the docs; accept it rather than
	// posting to /v3/mail/send/v3/mail/send.
	base := strings.TrimRight(u.String(), "/")
	return strings.TrimSuffix(base, mailSendPath), nil
}

// String describes the client without its key.
func (c Client) String() string {
	return fmt.Sprintf("sendgrid.Client{BaseURL:%s, Timeout:%s}", c.baseURL, c.timeout)
}

// GoString keeps %#v from printing the unexported key field.
func (c Client) GoString() string { return c.String() }

// Send validates m, posts it once, and returns SendGrid's X-Message-Id
// (the id of the request; per-recipient event ids start with it).
//
// Send never retries. SendGrid has no idempotency key, so after a timeout
// or 5xx the mail may already be queued and a blind retry can deliver it
// twice. The caller's engine owns retries, guarded by its exactly-once
// record; IsTemporary and APIError.RetryAfter tell it when to try again.
func (c *Client) Send(ctx context.Context, m Message) (messageID string, err error) {
	body, err := m.requestBody()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// One attempt through the shared caller. The engine plans and audits
	// the welcome for the request it serves (PerRequest).
	caller := httpretry.Caller{Policy: httpretry.Policy{MaxAttempts: 1}, Limiter: c.limiter}
	err = caller.Do(ctx, httpretry.Call{
		Target: Name, Op: "POST " + mailSendPath, Write: true, PerRequest: true,
		Attempt: func(ctx context.Context, _ any) error {
			messageID, err = c.sendOnce(ctx, body)
			return err
		},
	}, nil)
	return messageID, err
}

func (c *Client) sendOnce(ctx context.Context, body []byte) (string, error) {
	// Whether the request left whole decides between "not sent" (the welcome
	// may be tried again) and "outcome unknown" (it may not).
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			written.Store(true)
		}
	}})
	req, err := httpretry.NewRequest(ctx, Name, "POST "+mailSendPath, http.MethodPost, c.baseURL+mailSendPath, nil, body)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", newTransportError(err, c.apiKey, !written.Load())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.Header.Get("X-Message-Id"), nil
	}
	return "", newAPIError(resp.StatusCode, resp.Header, string(raw), c.apiKey, time.Now())
}
