package sendgrid

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Defaults applied by New when the corresponding Config field is zero.
const (
	DefaultBaseURL = "https://api.sendgrid.com"
	DefaultTimeout = 10 * time.Second
)

const redacted = "[REDACTED]"

// Config configures a Client. Its String, GoString, LogValue and MarshalJSON
// methods all redact APIKey, so a Config can be logged or dumped safely.
type Config struct {
	APIKey string
	// BaseURL is the API origin (SENDGRID_BASE_URL), e.g. the EU host
	// https://api.eu.sendgrid.com or a fake. A trailing slash is tolerated.
	BaseURL string
	// Timeout bounds one Send, connection set-up included. sendgrid-go's
	// default HTTP client has no timeout at all, so a hung connection would
	// otherwise hold a provisioning worker forever.
	Timeout time.Duration
	// HTTPClient is optional; Timeout still applies on top of its own limits.
	HTTPClient *http.Client
	// MaxRPS caps the calls a second to the host, whichever request makes
	// them; the pace under it is learned from refusals (0: no cap).
	MaxRPS float64
}

func (c Config) redactedKey() string {
	if c.APIKey == "" {
		return "[EMPTY]"
	}
	return redacted
}

// displayURL never echoes userinfo: a URL like https://user:secret@host is
// exactly the kind of value people paste into an env var by mistake.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable]"
	}
	return u.Redacted()
}

// String implements fmt.Stringer (used by %v, %+v and %s).
func (c Config) String() string {
	return fmt.Sprintf("sendgrid.Config{APIKey:%s, BaseURL:%s, Timeout:%s, HTTPClient:%t}",
		c.redactedKey(), displayURL(c.BaseURL), c.Timeout, c.HTTPClient != nil)
}

// GoString implements fmt.GoStringer so %#v cannot bypass String.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer; without it slog's JSON handler would
// marshal the exported APIKey field verbatim.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("api_key", c.redactedKey()),
		slog.String("base_url", displayURL(c.BaseURL)),
		slog.Duration("timeout", c.Timeout),
	)
}

// MarshalJSON redacts the key for configs dumped by debug endpoints or
// error reporters that reach for encoding/json rather than fmt.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		APIKey  string `json:"api_key"`
		BaseURL string `json:"base_url"`
		Timeout string `json:"timeout"`
	}{c.redactedKey(), displayURL(c.BaseURL), c.Timeout.String()})
}
