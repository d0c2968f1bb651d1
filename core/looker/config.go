package looker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

// Config holds a Looker instance's connection settings, read the way the
// official Looker SDKs read LOOKERSDK_* so an admin's existing settings work.
type Config struct {
	BaseURL      string
	ClientID     string
	ClientSecret string
	VerifySSL    bool
	Timeout      time.Duration // bounds every HTTP call, login included
	// MaxRPS caps the calls a second to the host, whichever request makes
	// them; the pace under it is learned from refusals (0: no cap).
	MaxRPS float64
	// Credentials, when set, is asked at every login instead of ClientID and
	// ClientSecret, so rotated API credentials are used without a restart.
	Credentials func(ctx context.Context) (clientID, clientSecret string, err error)
	// LoggedIn, when set, is given each access token as soon as a login
	// returns it, before anything uses it: the log redactor learns it there,
	// so an upstream error that echoes it is masked.
	LoggedIn func(accessToken string)

	// Retry policy; zero values take the defaults.
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
}

// String keeps the secret out of anything that formats a Config.
func (c Config) String() string {
	return fmt.Sprintf("looker.Config{BaseURL:%s ClientID:%s ClientSecret:[redacted] VerifySSL:%t Timeout:%s}",
		c.BaseURL, c.ClientID, c.VerifySSL, c.Timeout)
}

// LogValue keeps the secret out of structured logs, which would otherwise
// marshal every field.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

const defaultTimeout = 120 * time.Second // the SDKs' default

// ConfigFromEnv reads LOOKERSDK_BASE_URL, LOOKERSDK_CLIENT_ID,
// LOOKERSDK_CLIENT_SECRET, LOOKERSDK_VERIFY_SSL and LOOKERSDK_TIMEOUT through
// get, which the caller backs with the environment or a secret manager.
// Unlike the SDKs it refuses values it does not understand: an unparsable
// VERIFY_SSL silently turning TLS verification off is how credentials leak.
func ConfigFromEnv(get func(string) string) (Config, error) {
	cfg := Config{
		ClientID:     get(SettingClientID),
		ClientSecret: get(SettingClientSecret),
		VerifySSL:    true,
		Timeout:      defaultTimeout,
	}
	base, err := normaliseBaseURL(get(SettingBaseURL))
	if err != nil {
		return Config{}, err
	}
	cfg.BaseURL = base
	if v := strings.TrimSpace(get(SettingVerifySSL)); v != "" {
		b, ok := parseBool(v)
		if !ok {
			return Config{}, fmt.Errorf("LOOKERSDK_VERIFY_SSL: %q is not a boolean (use true or false)", v)
		}
		cfg.VerifySSL = b
	}
	if v := strings.TrimSpace(get(SettingTimeout)); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs <= 0 {
			return Config{}, fmt.Errorf("LOOKERSDK_TIMEOUT: %q is not a positive number of seconds", v)
		}
		cfg.Timeout = time.Duration(secs) * time.Second
	}
	if cfg.MaxRPS, err = httpretry.MaxRateSetting(get, SettingMaxRPS, DefaultMaxRPS); err != nil {
		return Config{}, err
	}
	if cfg.ClientID == "" {
		return Config{}, errors.New("LOOKERSDK_CLIENT_ID is not set")
	}
	if cfg.ClientSecret == "" {
		return Config{}, errors.New("LOOKERSDK_CLIENT_SECRET is not set")
	}
	return cfg, nil
}

func normaliseBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("LOOKERSDK_BASE_URL is not set")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("LOOKERSDK_BASE_URL: %q is not an http(s) URL like https://example.cloud.looker.com", raw)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", errors.New("LOOKERSDK_BASE_URL: must not carry credentials or a query")
	}
	// The SDKs append /api/4.0 themselves; people often paste the API URL.
	path := strings.TrimRight(u.Path, "/")
	path = strings.TrimSuffix(path, "/api/4.0")
	path = strings.TrimSuffix(path, "/api")
	u.Path = path
	return strings.TrimRight(u.String(), "/"), nil
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "t", "1", "y", "yes":
		return true, true
	case "false", "f", "0", "n", "no":
		return false, true
	}
	return false, false
}
