package gsheets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/sheets"
)

// Settings the client reads (ConfigFromEnv).
const (
	CredentialsSetting = sheets.CredentialsSetting
	BaseURLSetting     = sheets.BaseURLSetting
)

// Defaults applied by New when the corresponding Config field is zero.
const (
	DefaultBaseURL = "https://sheets.googleapis.com"
	// DefaultTimeout bounds one attempt of one call, token exchange included.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAttempts, DefaultBaseDelay and DefaultMaxDelay are the
	// retries of one call. MaxDelay is over a minute so that a 429 from
	// the per-minute quota is waited out, as Google advises, rather than
	// failing the poll.
	DefaultMaxAttempts = 4
	DefaultBaseDelay   = time.Second
	DefaultMaxDelay    = 65 * time.Second
)

// Config configures a Client. Its String, GoString, LogValue and
// MarshalJSON leave the key out, so a Config can be logged or dumped.
type Config struct {
	// CredentialsJSON is a service account's key file
	// (GOOGLE_SHEETS_CREDENTIALS); empty: application-default credentials
	// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, or the metadata server's).
	CredentialsJSON []byte
	// BaseURL is the Sheets API's origin (SHEETS_BASE_URL); empty: Google's.
	// Anywhere but *.googleapis.com, the key's token_uri must be on the
	// same origin: a token from Google is never sent elsewhere.
	BaseURL string
	// Account is the email to share spreadsheets with, for credentials that
	// do not name one (the metadata server's); errors name it.
	Account string
	// Timeout bounds one attempt of one call (0: DefaultTimeout).
	Timeout time.Duration
	// HTTPClient's transport carries every call, the token exchange's too.
	HTTPClient *http.Client
	// MaxAttempts, BaseDelay and MaxDelay bound the retries of one call
	// (0: the defaults above).
	MaxAttempts         int
	BaseDelay, MaxDelay time.Duration
	// Sleep waits between attempts; nil: a timer. Tests move a clock.
	Sleep func(context.Context, time.Duration) error
	// TokenIssued, when set, is told each access token before any call
	// carries it, so a log redactor knows it first.
	TokenIssued func(accessToken string)
}

// ConfigFromEnv reads GOOGLE_SHEETS_CREDENTIALS and SHEETS_BASE_URL.
// Errors name the setting and never quote its value.
func ConfigFromEnv(get func(string) string) (Config, error) {
	var cfg Config
	if raw := strings.TrimSpace(get(CredentialsSetting)); raw != "" {
		if !strings.HasPrefix(raw, "{") || !json.Valid([]byte(raw)) {
			return Config{}, fmt.Errorf("%s must hold a service account's key file itself, as JSON (for a path to the file, set GOOGLE_APPLICATION_CREDENTIALS)", CredentialsSetting)
		}
		cfg.CredentialsJSON = []byte(raw)
	}
	if raw := strings.TrimSpace(get(BaseURLSetting)); raw != "" {
		if _, err := parseBaseURL(raw); err != nil {
			return Config{}, fmt.Errorf("%s: %w", BaseURLSetting, err)
		}
		cfg.BaseURL = raw
	}
	return cfg, nil
}

// Connect opens a Client from a deployment's settings, its credentials
// read through the secret backends, each access token told to the log
// redactor before use: the sheets source's client (app.Options.SourceClients).
func Connect(ctx context.Context, env plugin.Env) (any, error) {
	cfg, err := ConfigFromEnv(env.Get)
	if err != nil {
		return nil, err
	}
	if env.Redactor != nil {
		// One client per instance (see app's openClients): its tokens
		// follow one another, so the redactor keeps the live one and the
		// one before rather than every token of the instance's life.
		cfg.TokenIssued = func(token string) { env.Redactor.Rotate("google-sheets-access-token", token) }
	}
	return New(ctx, cfg)
}

// parseBaseURL accepts an http(s) origin, with or without a trailing slash.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // its text repeats the input
		}
		return nil, fmt.Errorf("not a URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s: scheme must be http or https", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("%s: no host", u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("%s: credentials do not belong in the URL", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "":
		return nil, fmt.Errorf("%s: want an origin such as %s, without a path", u.Redacted(), DefaultBaseURL)
	}
	u.Path = ""
	return u, nil
}

// String implements fmt.Stringer without the key.
func (c Config) String() string {
	return fmt.Sprintf("sheets.Config{Credentials:%s, BaseURL:%s, Account:%q, Timeout:%s}",
		c.credentialsShown(), shownURL(c.BaseURL), c.Account, c.Timeout)
}

// GoString keeps %#v from printing CredentialsJSON.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer; slog's JSON handler would otherwise
// print the key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("credentials", c.credentialsShown()),
		slog.String("base_url", shownURL(c.BaseURL)),
		slog.String("account", c.Account),
		slog.Duration("timeout", c.Timeout),
	)
}

// MarshalJSON leaves the key out for dumps that reach for encoding/json.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"credentials": c.credentialsShown(), "base_url": shownURL(c.BaseURL),
		"account": c.Account, "timeout": c.Timeout.String(),
	})
}

func (c Config) credentialsShown() string {
	if len(c.CredentialsJSON) == 0 {
		return "application-default"
	}
	return "[REDACTED]"
}

func shownURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable]"
	}
	return u.Redacted()
}
