package aac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/plugin"
)

// Config holds the settings of one AAC account.
type Config struct {
	// BaseURL is the region's API host, e.g. https://us1.alteryxcloud.com.
	BaseURL string
	// AccountID scopes account-level calls (list and create workspaces);
	// needed only with an account chain.
	AccountID string
	// TokenURL and ClientID override what the access token's claims say
	// (iss + "/token", client_id). Before the first access token is seen
	// there are no claims to read, so a chain seeded with a bare refresh
	// token needs them, or a seed that includes the access token. An
	// issuer from the claims is used only on a trusted host (see
	// trustsTokenURL); any other token endpoint needs TokenURL.
	TokenURL string
	ClientID string

	// Seeds returns AAC_REFRESH_TOKENS: workspace name to the first refresh
	// token of its chain. It is asked each time a chain is missing from the
	// store, so a secret added later is picked up without a restart.
	Seeds func(ctx context.Context) (map[string]string, error)
	// AccountSeed returns AAC_ACCOUNT_REFRESH_TOKEN ("" when unset).
	AccountSeed func(ctx context.Context) (string, error)
	// Redactor learns every token this package reads or receives, so the
	// logger masks it should an upstream error ever echo it. Optional.
	Redactor Redactor

	// Timeout bounds each HTTP call, the token refresh included.
	Timeout time.Duration
	// MaxRPS caps the calls a second to the host, whichever request makes
	// them; the pace under it is learned from refusals (0: no cap).
	MaxRPS float64
	// Retry policy for API calls; zero fields take httpretry's defaults.
	Retry httpretry.Policy

	// Lease is how long one instance may hold the right to rotate a chain
	// (or to create a workspace) before another may take over; it must
	// comfortably exceed one refresh plus one store write.
	Lease time.Duration
	// Poll is how often an instance waiting for another's rotation looks at
	// the store.
	Poll time.Duration
	// BatchWindow is how long an open invite batch waits for one more
	// invite to share its call; each arrival restarts it, up to BatchMaxWait
	// after the first (0: the defaults; a negative window: no batching).
	// BatchMax flushes earlier when reached.
	BatchWindow  time.Duration
	BatchMaxWait time.Duration
	BatchMax     int
	// BatchSettleMaxWait bounds how long the invites of one event batch
	// (core.Batch) wait for the rest of it to join, in case an item is
	// stuck; they normally go out as soon as every item has joined or
	// finished.
	BatchSettleMaxWait time.Duration
}

// Defaults for the zero values of Config.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultLease       = 30 * time.Second
	DefaultPoll        = 100 * time.Millisecond
	DefaultBatchWindow = 25 * time.Millisecond
	// DefaultBatchMaxWait bounds how long a steady trickle can hold a batch.
	DefaultBatchMaxWait = 250 * time.Millisecond
	DefaultBatchMax     = 50
	// DefaultBatchSettleMaxWait stays well inside the engine's idempotency
	// lease (core.DefaultLease), so a waiting invite never outlives its claim.
	DefaultBatchSettleMaxWait = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	c.Retry = c.Retry.WithDefaults()
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.BatchWindow == 0 {
		c.BatchWindow = DefaultBatchWindow
	}
	if c.BatchMaxWait <= 0 {
		c.BatchMaxWait = max(DefaultBatchMaxWait, c.BatchWindow)
	}
	if c.BatchMax <= 0 {
		c.BatchMax = DefaultBatchMax
	}
	if c.BatchSettleMaxWait <= 0 {
		c.BatchSettleMaxWait = DefaultBatchSettleMaxWait
	}
	if c.Seeds == nil {
		c.Seeds = func(context.Context) (map[string]string, error) { return nil, nil }
	}
	if c.AccountSeed == nil {
		c.AccountSeed = func(context.Context) (string, error) { return "", nil }
	}
	if c.Redactor == nil {
		c.Redactor = noRedactor{}
	}
}

// Redactor is the log masker (logging.Redactor): Add for secrets that
// stay, Rotate for a chain's pair, which replaces itself at every refresh.
type Redactor interface {
	Add(values ...string)
	Rotate(slot string, values ...string)
}

type noRedactor struct{}

func (noRedactor) Add(...string)            {}
func (noRedactor) Rotate(string, ...string) {}

// FromSettings reads AAC_BASE_URL, AAC_ACCOUNT_ID, AAC_TOKEN_URL,
// AAC_CLIENT_ID, AAC_REFRESH_TOKENS and AAC_ACCOUNT_REFRESH_TOKEN and
// returns the target. Errors name the setting, never its value.
func FromSettings(s plugin.Env) (*Target, error) {
	cfg := Config{AccountID: strings.TrimSpace(s.Get(SettingAccountID)), ClientID: strings.TrimSpace(s.Get(SettingClientID))}
	var err error
	if cfg.BaseURL, err = BaseURL(s.Get(SettingBaseURL)); err != nil {
		return nil, err
	}
	if cfg.MaxRPS, err = httpretry.MaxRateSetting(s.Get, SettingMaxRPS, DefaultMaxRPS); err != nil {
		return nil, err
	}
	if v := s.Get(SettingTokenURL); v != "" {
		if cfg.TokenURL, err = normaliseURL(SettingTokenURL, v, ""); err != nil {
			return nil, err
		}
		cfg.TokenURL = tokenURLFromIssuer(cfg.TokenURL)
	}
	seeds, err := ParseRefreshTokens(s.Get(SettingRefreshTokens))
	if err != nil {
		return nil, err
	}
	account := strings.TrimSpace(s.Get(SettingAccountRefreshToken))
	if account != "" && cfg.AccountID == "" {
		return nil, errors.New("AAC_ACCOUNT_REFRESH_TOKEN is set but AAC_ACCOUNT_ID is not: the account token lists and creates workspaces in that account")
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	if s.Config != nil && account == "" {
		for _, name := range s.Config.ProfileNames() {
			if ap := ProfileOf(s.Config.Profiles[name]); ap != nil && seeds[ap.Workspace] == "" {
				log.Warn("no AAC_REFRESH_TOKENS entry for an AAC workspace a profile names; unless `onboard aac seed-token` stored its chain, invites to it wait for one",
					"profile", name, "workspace", ap.Workspace)
			}
		}
	}
	cfg.Redactor = noRedactor{}
	if s.Redactor != nil {
		cfg.Redactor = s.Redactor
	}
	cfg.Seeds = func(ctx context.Context) (map[string]string, error) {
		v, err := s.Secret(ctx, SettingRefreshTokens)
		if err != nil {
			return nil, err
		}
		m, err := ParseRefreshTokens(v)
		for _, tok := range m {
			cfg.Redactor.Add(tok)
		}
		return m, err
	}
	cfg.AccountSeed = func(ctx context.Context) (string, error) {
		v, err := s.Secret(ctx, SettingAccountRefreshToken)
		return strings.TrimSpace(v), err
	}
	c, err := New(cfg, s.Store, log, nil)
	if err != nil {
		return nil, err
	}
	return NewTarget(c, log), nil
}

// ParseRefreshTokens reads AAC_REFRESH_TOKENS: a JSON object of workspace
// name to refresh token. Empty means none.
func ParseRefreshTokens(v string) (map[string]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return map[string]string{}, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		// The value is a secret: say what shape is wanted, never echo it.
		return nil, errors.New(`AAC_REFRESH_TOKENS: not a JSON object of workspace name to refresh token, like {"Sales Analytics":"<token>"}`)
	}
	for name, tok := range m {
		if strings.TrimSpace(name) == "" || strings.TrimSpace(tok) == "" {
			return nil, errors.New("AAC_REFRESH_TOKENS: empty workspace name or token")
		}
		m[name] = strings.TrimSpace(tok)
	}
	return m, nil
}

// BaseURL checks AAC_BASE_URL as a deployment does, so tools that key
// chains by it (seed-token) find the same chains the deployment uses.
func BaseURL(raw string) (string, error) { return normaliseURL(SettingBaseURL, raw, "/v4") }

// normaliseURL checks an http(s) URL setting and drops a pasted suffix
// (e.g. /v4: the client adds the API version itself).
func normaliseURL(name, raw, dropSuffix string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("%s is not set", name)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%s: %q is not an http(s) URL", name, raw)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("%s: must not carry credentials or a query", name)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if dropSuffix != "" {
		u.Path = strings.TrimSuffix(u.Path, dropSuffix)
	}
	return strings.TrimRight(u.String(), "/"), nil
}
