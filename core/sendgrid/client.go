// Package sendgrid sends onboard's welcome email through the SendGrid v3
// Mail Send API, using sendgrid-go for the request and payload shapes.
//
// Unlike sendgrid-go it treats non-2xx answers as errors, enforces a timeout,
// and keeps the API key out of every error and log line.
package sendgrid

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sendgrid/rest"
	sg "github.com/sendgrid/sendgrid-go"
)

const mailSendPath = "/v3/mail/send"

// Client sends mail. It is safe for concurrent use.
type Client struct {
	apiKey  string
	baseURL string
	timeout time.Duration
	rest    *rest.Client
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
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	// Our own rest.Client rather than sendgrid.DefaultClient: that one is a
	// process-wide global with no timeout, and mutating it would affect
	// every other user of sendgrid-go in the binary.
	return &Client{apiKey: cfg.APIKey, baseURL: base, timeout: timeout, rest: &rest.Client{HTTPClient: hc}}, nil
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
	req := sg.GetRequest(c.apiKey, mailSendPath, c.baseURL)
	req.Method = rest.Post
	req.Body = body

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// Whether the request left whole decides between "not sent" (the welcome
	// may be tried again) and "outcome unknown" (it may not).
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			written.Store(true)
		}
	}})
	resp, err := c.rest.SendWithContext(ctx, req)
	if resp == nil {
		return "", newTransportError(err, c.apiKey, !written.Load())
	}
	// rest returns the response together with a body-read error; the
	// status is what matters (202 has an empty body anyway).
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return http.Header(resp.Headers).Get("X-Message-Id"), nil
	}
	return "", newAPIError(resp.StatusCode, resp.Headers, resp.Body, c.apiKey, time.Now())
}
