package aac

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
)

// Store keys. A chain's value is JSON (chainState); its lease is an
// idempotency-style claim that is only ever released, never completed.
// Keys carry the AAC host: tokens are issued per region, and a sandbox's
// fake (on localhost) can never overwrite a real chain kept in the same store.
const (
	chainKeys = "aac/chain/"
	leaseKeys = "aac/lease/"
)

// WorkspaceChainKey is where the chain of a workspace's tokens lives.
func WorkspaceChainKey(baseURL, workspace string) string {
	return chainKeys + hostOf(baseURL) + "/workspace/" + workspace
}

// AccountChainKey is where the account-level chain lives.
func AccountChainKey(baseURL string) string { return chainKeys + hostOf(baseURL) + "/account" }

func hostOf(baseURL string) string {
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		return u.Host
	}
	return baseURL
}

func leaseKey(key string) string { return leaseKeys + strings.TrimPrefix(key, "aac/") }

// Where a chain's stored head came from.
const (
	SourceSecret    = "secret"     // AAC_REFRESH_TOKENS or AAC_ACCOUNT_REFRESH_TOKEN, on first use
	SourceSeedToken = "seed-token" // `onboard aac seed-token`
	SourceRefresh   = "refresh"    // a rotation by onboard
)

const (
	// earlyRefresh is how long before expiry an access token is replaced.
	// Shorter lifetimes (tests) refresh at three quarters of their life.
	earlyRefresh = 60 * time.Second
	// assumedLifetime is used when neither expires_in nor exp says: the
	// shortest lifetime AAC documents.
	assumedLifetime = 5 * time.Minute
	// adminRetryAfter is the Retry-After of answers that wait for an admin
	// (seed a token): long enough not to hammer, short enough to notice.
	adminRetryAfter = 5 * time.Minute
	// maxRounds bounds how often one caller re-reads after losing a race.
	maxRounds     = 10
	persistTries  = 3
	leaseFinger   = "aac-lease"
	tokenEndpoint = "token endpoint"
)

// chainState is the head of a chain as stored: the live refresh token and
// the access token issued with it, shared by every instance until it is
// due for refresh. It never leaves the store except to the token endpoint.
type chainState struct {
	RefreshToken string    `json:"refresh_token"`
	AccessToken  string    `json:"access_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	RefreshAfter time.Time `json:"refresh_after,omitzero"`
	// TokenURL and ClientID as learned from the last access token's claims,
	// so a later refresh needs no access token in hand.
	TokenURL  string    `json:"token_url,omitempty"`
	ClientID  string    `json:"client_id,omitempty"`
	Source    string    `json:"source"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// snapshot is a chain head with the version it was read at.
type snapshot struct {
	state   chainState
	version int64
}

// Tokens holds an instance's chains, one per workspace plus the account's.
type Tokens struct {
	cfg      *Config
	store    state.Store
	http     *http.Client
	log      *slog.Logger
	instance string

	mu     sync.Mutex
	chains map[string]*Chain

	// Test hooks around the token exchange. afterExchange returning true
	// makes the rotation stop as a process that died right after the token
	// endpoint answered would: nothing stored, the lease left to expire.
	beforeExchange func()
	afterExchange  func() (crash bool)
}

func newTokens(cfg *Config, store state.Store, hc *http.Client, log *slog.Logger) *Tokens {
	return &Tokens{cfg: cfg, store: store, http: hc, log: log, instance: randomID(), chains: map[string]*Chain{}}
}

// Workspace returns the chain of a workspace's tokens.
func (ts *Tokens) Workspace(name string) *Chain {
	return ts.chain(WorkspaceChainKey(ts.cfg.BaseURL, name), func() *Chain {
		return &Chain{label: fmt.Sprintf("AAC workspace %q", name), workspace: name, fix: "onboard aac seed-token --workspace " + shellQuote(name),
			seed: func(ctx context.Context) (string, error) {
				m, err := ts.cfg.Seeds(ctx)
				return m[name], err
			}}
	})
}

// Account returns the account-level chain.
func (ts *Tokens) Account() *Chain {
	return ts.chain(AccountChainKey(ts.cfg.BaseURL), func() *Chain {
		return &Chain{label: "the AAC account", fix: "onboard aac seed-token --account", seed: ts.cfg.AccountSeed}
	})
}

func (ts *Tokens) chain(key string, make func() *Chain) *Chain {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if c, ok := ts.chains[key]; ok {
		return c
	}
	c := make()
	c.ts, c.key, c.leaseKey = ts, key, leaseKey(key)
	ts.chains[key] = c
	return c
}

// Chain is one rotating token chain. Its protocol, the same in every
// instance: read the head and its version; use the stored access token
// while it is fresh; otherwise take the chain's lease, re-read (someone may
// just have rotated), refresh, and store the new pair with compare-and-swap
// before using it. Losing the swap, or the token endpoint answering
// invalid_grant, means another writer rotated: re-read and use theirs. An
// invalid_grant on a head nobody replaced is a broken chain: it is logged
// at CRITICAL with the fix, answered retryably, and left as it is.
type Chain struct {
	ts            *Tokens
	key, leaseKey string
	label, fix    string
	workspace     string // empty for the account chain
	seed          func(context.Context) (string, error)

	mu           sync.Mutex
	access       string    // cached access token
	refreshAfter time.Time // when the cached token is due
	rejected     string    // an access token AAC answered 401 to
	broken       int64     // the stored version found broken; 0: none
	pending      *snapshot // a rotated head not stored yet, and the version it replaces

	flight singleflight.Group
}

// Token returns a usable access token. Callers of one instance share one
// rotation; a caller whose context ends stops waiting, the rotation goes on.
func (c *Chain) Token(ctx context.Context) (string, error) {
	if tok, ok := c.cached(); ok {
		return tok, nil
	}
	ch := c.flight.DoChan("", func() (tok any, err error) {
		// Detached: a rotation abandoned halfway would waste the token it got.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*(c.ts.cfg.Lease+c.ts.cfg.Timeout))
		defer cancel()
		// Safely: DoChan's function runs in a goroutine of its own, and
		// singleflight re-raises its panic where nothing can recover it.
		err = core.Safely(func() (err error) {
			tok, err = c.obtain(fctx)
			return err
		})
		return tok, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", core.Unavailable(TargetName, 0, context.Cause(ctx))
	}
}

// Reject forgets an access token AAC refused, so the next Token refreshes
// even though the store still calls it fresh.
func (c *Chain) Reject(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rejected = token
	if c.access == token {
		c.access = ""
	}
}

// Available reports whether the chain exists in the store or has a seed.
func (c *Chain) Available(ctx context.Context) (bool, error) {
	_, err := c.ts.store.Get(ctx, c.key)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, state.ErrNotFound) {
		return false, c.storeError(err)
	}
	seed, err := c.seed(ctx)
	if err != nil {
		return false, core.Unavailable(TargetName, 0, fmt.Errorf("aac: reading the seed of %s: %w", c.label, err))
	}
	return seed != "", nil
}

func (c *Chain) cached() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.access != "" && time.Now().Before(c.refreshAfter) {
		return c.access, true
	}
	return "", false
}

func (c *Chain) obtain(ctx context.Context) (string, error) {
	if err := c.storePending(ctx); err != nil {
		return "", err
	}
	for range maxRounds {
		cur, err := c.load(ctx)
		if err != nil {
			return "", err
		}
		if tok, ok := c.adopt(cur); ok {
			return tok, nil
		}
		if c.isBroken(cur.version) {
			return "", c.brokenError()
		}
		owner, won, err := acquire(ctx, c.ts.store, c.leaseKey, c.ts.cfg.Lease, c.ts.cfg.Poll, func(ctx context.Context) (bool, error) {
			v, err := c.ts.store.Get(ctx, c.key)
			if errors.Is(err, state.ErrNotFound) {
				return true, nil
			}
			return err == nil && v.Version != cur.version, err
		})
		if err != nil {
			return "", c.storeError(err)
		}
		if !won {
			continue // the head moved while we waited: adopt the winner's
		}
		tok, again, err := c.rotate(ctx)
		if errors.Is(err, errCrashed) {
			return "", err
		}
		if c.hasPending() {
			// The live pair is only in this instance's memory: keep the lease
			// to its end, so no other instance spends the old token meanwhile.
			return tok, err
		}
		c.release(ctx, owner)
		if again {
			continue
		}
		return tok, err
	}
	return "", core.Unavailable(TargetName, 0, fmt.Errorf("aac: %s kept changing while this instance tried to use it", c.label))
}

var errCrashed = errors.New("aac: simulated crash after the token exchange")

// rotate runs under the lease. again means another writer moved the head:
// the caller re-reads and uses theirs.
func (c *Chain) rotate(ctx context.Context) (tok string, again bool, err error) {
	cur, err := c.load(ctx)
	if err != nil {
		return "", false, err
	}
	if tok, ok := c.adopt(cur); ok {
		return tok, false, nil
	}
	if c.isBroken(cur.version) {
		return "", false, c.brokenError()
	}
	ep, err := c.endpoint(cur.state)
	if err != nil {
		return "", false, err
	}
	if c.ts.beforeExchange != nil {
		c.ts.beforeExchange()
	}
	fresh, err := c.ts.exchange(ctx, ep, cur.state.RefreshToken)
	if err == nil {
		c.ts.cfg.Redactor.Rotate(c.key, fresh.RefreshToken, fresh.AccessToken)
	}
	if c.ts.afterExchange != nil && c.ts.afterExchange() {
		return "", false, errCrashed
	}
	if err != nil {
		if !isInvalidGrant(err) {
			return "", false, c.tokenError(err)
		}
		now, rerr := c.read(ctx)
		if rerr != nil {
			return "", false, rerr // a store blip is not a broken chain
		}
		if now.version != cur.version {
			return "", true, nil
		}
		c.markBroken(ctx, cur.version, err)
		return "", false, c.brokenError()
	}
	// The old refresh token is spent: this pair is the only live one, and
	// storing it is the very next step, before anything uses it.
	next := c.ts.headFrom(fresh, ep)
	version, err := c.persist(ctx, next, cur.version)
	switch {
	case errors.Is(err, state.ErrConflict):
		c.ts.log.Warn("another writer replaced an AAC token chain while this instance rotated it; using the stored head", "chain", c.label)
		return "", true, nil
	case err != nil:
		c.mu.Lock()
		c.pending = &snapshot{state: next, version: cur.version}
		c.mu.Unlock()
		c.ts.log.Log(ctx, logging.LevelCritical, "a rotated AAC token could not be stored: it is kept in this instance's memory and stored at its next use; if this instance stops first, the chain is lost and must be reseeded",
			"chain", c.label, "store_key", c.key, "fix", c.fix, "error", err.Error())
		return "", false, c.storeError(err)
	}
	c.remember(next)
	c.ts.log.Info("rotated an AAC token chain", "chain", c.label, "version", version, "access_expires", next.Expiry.UTC().Format(time.RFC3339))
	return next.AccessToken, false, nil
}

// persist writes the new head with compare-and-swap, retrying a store that
// failed for another reason: the rotated pair must not be lost.
func (c *Chain) persist(ctx context.Context, st chainState, expect int64) (int64, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	for try := 1; ; try++ {
		v, err := c.ts.store.Put(ctx, c.key, data, expect, 0)
		if err == nil || errors.Is(err, state.ErrConflict) || try == persistTries {
			return v, err
		}
		if httpretry.Sleep(ctx, time.Duration(try)*200*time.Millisecond) != nil {
			return 0, err
		}
	}
}

func (c *Chain) hasPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending != nil
}

// storePending retries storing a head whose first store failed. A head
// replaced meanwhile (reseeded) wins over it.
func (c *Chain) storePending(ctx context.Context) error {
	c.mu.Lock()
	p := c.pending
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	_, err := c.persist(ctx, p.state, p.version)
	if err != nil && !errors.Is(err, state.ErrConflict) {
		return c.storeError(err)
	}
	c.mu.Lock()
	c.pending = nil
	c.mu.Unlock()
	if err == nil {
		c.ts.log.Info("stored an AAC token head kept in memory since a failed write", "chain", c.label)
		c.remember(p.state)
	}
	return nil
}

// load reads the head, seeding it from the secret when the store has none.
func (c *Chain) load(ctx context.Context) (snapshot, error) {
	for range 3 {
		s, err := c.read(ctx)
		if !errors.Is(err, state.ErrNotFound) {
			return s, err
		}
		seed, err := c.seed(ctx)
		if err != nil {
			return snapshot{}, core.Unavailable(TargetName, 0, fmt.Errorf("aac: reading the seed of %s: %w", c.label, err))
		}
		if seed == "" {
			return snapshot{}, c.noTokenError()
		}
		c.ts.cfg.Redactor.Add(seed)
		st := chainState{RefreshToken: seed, Source: SourceSecret, UpdatedAt: time.Now().UTC(), UpdatedBy: c.ts.instance}
		data, err := json.Marshal(st)
		if err != nil {
			return snapshot{}, err
		}
		v, err := c.ts.store.Put(ctx, c.key, data, 0, 0)
		if errors.Is(err, state.ErrConflict) {
			continue // another instance seeded it first
		}
		if err != nil {
			return snapshot{}, c.storeError(err)
		}
		c.ts.log.Info("seeded an AAC token chain from its secret; from now on the store holds its live token", "chain", c.label)
		return snapshot{state: st, version: v}, nil
	}
	return snapshot{}, core.Unavailable(TargetName, 0, fmt.Errorf("aac: %s: seeding kept conflicting", c.label))
}

// read returns the stored head; state.ErrNotFound when there is none.
func (c *Chain) read(ctx context.Context) (snapshot, error) {
	v, err := c.ts.store.Get(ctx, c.key)
	if errors.Is(err, state.ErrNotFound) {
		return snapshot{}, err
	}
	if err != nil {
		return snapshot{}, c.storeError(err)
	}
	var st chainState
	if err := json.Unmarshal(v.Data, &st); err != nil || st.RefreshToken == "" {
		e := core.Unavailable(TargetName, adminRetryAfter, fmt.Errorf("aac: stored head of %s is unreadable", c.label))
		e.Message = fmt.Sprintf("the stored token chain of %s is unreadable; reseed it: %s", c.label, c.fix)
		return snapshot{}, e
	}
	c.ts.cfg.Redactor.Rotate(c.key, st.RefreshToken, st.AccessToken)
	return snapshot{state: st, version: v.Version}, nil
}

// adopt caches the stored access token when it is fresh and not rejected.
func (c *Chain) adopt(s snapshot) (string, bool) {
	st := s.state
	if st.AccessToken == "" || !time.Now().Before(st.RefreshAfter) {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.AccessToken == c.rejected {
		return "", false
	}
	c.access, c.refreshAfter = st.AccessToken, st.RefreshAfter
	return st.AccessToken, true
}

func (c *Chain) remember(st chainState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.access, c.refreshAfter, c.rejected = st.AccessToken, st.RefreshAfter, ""
}

func (c *Chain) isBroken(version int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken != 0 && c.broken == version
}

// markBroken remembers that the head at version is dead, so this instance
// stops spending calls on it until someone stores a new head, and says so
// once, at CRITICAL, with the fix.
func (c *Chain) markBroken(ctx context.Context, version int64, cause error) {
	c.mu.Lock()
	first := c.broken != version
	c.broken = version
	c.mu.Unlock()
	if first {
		c.ts.log.Log(ctx, logging.LevelCritical,
			"AAC token chain broken: the token endpoint refused a stored refresh token that no other instance replaced (it was spent by an instance that died before storing the new one, or it expired). Requests needing it are answered retryably until an admin generates a new OAuth 2.0 API token in AAC and runs the fix",
			"chain", c.label, "store_key", c.key, "version", version, "fix", c.fix, "error", cause.Error())
	}
}

func (c *Chain) release(ctx context.Context, owner string) {
	if err := c.ts.store.Release(context.WithoutCancel(ctx), c.leaseKey, owner); err != nil {
		c.ts.log.Warn("releasing an AAC token lease failed; others wait for it to expire", "chain", c.label, "error", err.Error())
	}
}

func (c *Chain) brokenError() *core.Error {
	e := core.Unavailable(TargetName, adminRetryAfter, errors.New("aac: broken token chain"))
	e.Message = fmt.Sprintf("the API token chain of %s is broken (its refresh token was already used or has expired): an admin must generate a new OAuth 2.0 API token in AAC and run %s", c.label, c.fix)
	return e
}

func (c *Chain) noTokenError() *core.Error {
	e := core.Unavailable(TargetName, adminRetryAfter, errors.New("aac: no token"))
	e.Message = fmt.Sprintf("no API token for %s yet: an admin must generate an OAuth 2.0 API token in it (Profile menu > User Preferences > OAuth 2.0 API Tokens) and run %s", c.label, c.fix)
	return e
}

func (c *Chain) storeError(err error) error {
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	return core.Unavailable("state", 0, err)
}

// endpoint is where and as whom a chain refreshes.
type endpoint struct{ url, clientID string }

// endpoint takes the settings first, then the claims of the access token in
// hand, then what an earlier token taught.
func (c *Chain) endpoint(st chainState) (endpoint, error) {
	cl := readClaims(st.AccessToken)
	ep := endpoint{
		url:      firstOf(c.ts.cfg.TokenURL, tokenURLFromIssuer(cl.Iss), st.TokenURL),
		clientID: firstOf(c.ts.cfg.ClientID, cl.ClientID, st.ClientID),
	}
	if ep.url == "" || ep.clientID == "" {
		e := core.Unavailable(TargetName, adminRetryAfter, errors.New("aac: token endpoint unknown"))
		e.Message = fmt.Sprintf("cannot refresh %s: set AAC_TOKEN_URL and AAC_CLIENT_ID (shown under the Generate button of AAC's OAuth 2.0 API Tokens page), or seed the chain with its access token too (%s, pasting both tokens as JSON), whose claims name them", c.label, c.fix)
		c.ts.log.Error("AAC token endpoint or client id unknown", "chain", c.label)
		return ep, e
	}
	if c.ts.cfg.TokenURL == "" && !c.ts.cfg.trustsTokenURL(ep.url) {
		e := core.Unavailable(TargetName, adminRetryAfter, errors.New("aac: untrusted token endpoint"))
		e.Message = fmt.Sprintf("cannot refresh %s: the token endpoint its access token names is neither an Alteryx identity host (%s) nor AAC_BASE_URL's host, and onboard sends a refresh token to no other host unless told to: set AAC_TOKEN_URL to the Token Endpoint URL AAC's OAuth 2.0 API Tokens page shows", c.label, alteryxIdentityHosts)
		c.ts.log.Error("refused to send an AAC refresh token to the token endpoint an access token's claims name; set AAC_TOKEN_URL if it is genuine", "chain", c.label, "token_url", ep.url)
		return ep, e
	}
	return ep, nil
}

// alteryxIdentityHosts are the hosts of Alteryx's token service
// (PingFederate): pingauth.alteryxcloud.com, and regional ones such as
// pingauth-us1-4.alteryxcloud.com.
const alteryxIdentityHosts = "pingauth.alteryxcloud.com, pingauth-*.alteryxcloud.com"

// isAlteryxIdentityHost matches alteryxIdentityHosts without a regexp,
// whose compilation every cold start would pay.
func isAlteryxIdentityHost(host string) bool {
	name, ok := strings.CutSuffix(host, ".alteryxcloud.com")
	if !ok {
		return false
	}
	region, ok := strings.CutPrefix(name, "pingauth")
	if region == "" || !ok {
		return ok
	}
	region, ok = strings.CutPrefix(region, "-")
	return ok && region != "" && strings.Trim(region, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// trustsTokenURL reports whether a token endpoint read from a token's
// claims may receive a refresh token without AAC_TOKEN_URL naming it. The
// claims are not verified (anyone can mint a JWT naming any issuer), so
// only two kinds of host qualify: Alteryx's identity service over https on
// its default port, and AAC_BASE_URL's own scheme and host, which already
// receives the access tokens (and is where a sandbox's fake issues them).
func (cfg *Config) trustsTokenURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	if base, err := url.Parse(cfg.BaseURL); err == nil && base.Host != "" && u.Scheme == base.Scheme && strings.EqualFold(u.Host, base.Host) {
		return true
	}
	return u.Scheme == "https" && u.Port() == "" && isAlteryxIdentityHost(strings.ToLower(u.Hostname()))
}

// tokenError classifies a failed refresh that did not spend the chain.
func (c *Chain) tokenError(err error) error {
	var te *TokenError
	if !errors.As(err, &te) {
		return core.Unavailable(TargetName, 0, err) // no answer: try again later
	}
	switch {
	case te.StatusCode == http.StatusTooManyRequests:
		return core.RateLimited(TargetName, te.RetryAfter, err)
	case te.StatusCode >= 500:
		return core.Unavailable(TargetName, te.RetryAfter, err)
	}
	// invalid_client and the like: a setting an admin must fix; the chain
	// is intact, so the request can succeed once they have.
	c.ts.log.Error("AAC's token endpoint refused the refresh request: check AAC_CLIENT_ID and AAC_TOKEN_URL", "chain", c.label, "error", te.Error())
	e := core.Unavailable(TargetName, adminRetryAfter, err)
	e.Message = fmt.Sprintf("AAC's token endpoint refused to refresh %s (%s): check AAC_CLIENT_ID and AAC_TOKEN_URL", c.label, firstOf(te.Code, "HTTP "+strconv.Itoa(te.StatusCode)))
	return e
}

// TokenError is a refusal from the token endpoint, without its body.
type TokenError struct {
	StatusCode int
	Code       string // an RFC 6749 error code such as invalid_grant, or empty
	RetryAfter time.Duration
}

// oauthErrorCodes are the error codes RFC 6749 (section 5.2) lets a token
// endpoint answer. Only these are kept from its answer: what answers there
// may be a proxy that echoes the form it was sent, refresh token included.
var oauthErrorCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("aac: %s: %d %s", tokenEndpoint, e.StatusCode, firstOf(e.Code, http.StatusText(e.StatusCode)))
}

func isInvalidGrant(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.Code == "invalid_grant"
}

// exchange spends refresh at the token endpoint: a form POST of
// grant_type, refresh_token and client_id (AAC's is a public client).
func (ts *Tokens) exchange(ctx context.Context, ep endpoint, refresh string) (*oauth2.Token, error) {
	conf := oauth2.Config{ClientID: ep.clientID, Endpoint: oauth2.Endpoint{TokenURL: ep.url, AuthStyle: oauth2.AuthStyleInParams}}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, ts.http), ts.cfg.Timeout)
	defer cancel()
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			// Its text would carry the body; the code is all a log needs.
			te := &TokenError{StatusCode: re.Response.StatusCode, RetryAfter: retryAfter(re.Response.Header, time.Now())}
			if oauthErrorCodes[re.ErrorCode] {
				te.Code = re.ErrorCode
			}
			return nil, te
		}
		return nil, fmt.Errorf("aac: %s: %w", tokenEndpoint, httpretry.StripURL(err))
	}
	return tok, nil
}

// headFrom is the chain head a refresh answer makes.
func (ts *Tokens) headFrom(tok *oauth2.Token, ep endpoint) chainState {
	cl := readClaims(tok.AccessToken)
	now := time.Now()
	expiry := tok.Expiry
	if expiry.IsZero() {
		expiry = cl.expiry()
	}
	if expiry.IsZero() {
		expiry = now.Add(assumedLifetime)
	}
	return chainState{
		RefreshToken: tok.RefreshToken,
		AccessToken:  tok.AccessToken,
		Expiry:       expiry.UTC(),
		RefreshAfter: refreshAfter(now, expiry).UTC(),
		TokenURL:     firstOf(tokenURLFromIssuer(cl.Iss), ep.url),
		ClientID:     firstOf(cl.ClientID, ep.clientID),
		Source:       SourceRefresh,
		UpdatedAt:    now.UTC(),
		UpdatedBy:    ts.instance,
	}
}

// refreshAfter is when a token valid until expiry, issued at issued, is
// replaced: a minute early, or at three quarters of a shorter life.
func refreshAfter(issued, expiry time.Time) time.Time {
	return expiry.Add(-min(earlyRefresh, expiry.Sub(issued)/4))
}

// claims are the JWT claims onboard reads from an access token. They are
// hints for reaching the token endpoint, not trust decisions, so the
// signature is not checked (AAC checks it on every call), and an issuer
// they name is only used on a host trustsTokenURL accepts.
type claims struct {
	Iss      string  `json:"iss"`
	ClientID string  `json:"client_id"`
	Exp      float64 `json:"exp"`
	Iat      float64 `json:"iat"`
}

func (c claims) expiry() time.Time {
	if c.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(c.Exp), 0)
}

func (c claims) issued() time.Time {
	if c.Iat <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(c.Iat), 0)
}

func readClaims(token string) claims {
	var c claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err == nil {
		_ = json.Unmarshal(b, &c)
	}
	return c
}

// tokenURLFromIssuer follows Alteryx's examples and guide: the token
// endpoint is the issuer (or the "Token Endpoint URL" AAC's page shows) with
// /token appended, unless its last segment already is one (token,
// token.oauth2).
func tokenURLFromIssuer(iss string) string {
	iss = strings.TrimRight(strings.TrimSpace(iss), "/")
	if iss == "" || strings.HasPrefix(iss[strings.LastIndex(iss, "/")+1:], "token") {
		return iss
	}
	return iss + "/token"
}

// acquire takes a lease on key for a fresh owner. While someone else holds
// it, it waits, checking moot after each wait: when moot says the work was
// done meanwhile, it returns without the lease. Taking over a lease whose
// holder died is Claim's business: an expired lease is free.
func acquire(ctx context.Context, store state.Store, key string, lease, poll time.Duration, moot func(context.Context) (bool, error)) (owner string, won bool, err error) {
	owner = randomID()
	for {
		outcome, rec, err := store.Claim(ctx, key, leaseFinger, owner, lease, lease)
		if err != nil {
			return "", false, err
		}
		switch outcome {
		case state.Claimed:
			return owner, true, nil
		case state.InProgress:
		default:
			return "", false, fmt.Errorf("aac: lease %s: unexpected claim outcome %s", key, outcome)
		}
		// Jittered, so that waiters do not all knock at once.
		wait := poll/2 + mathrand.N(poll)
		if until := time.Until(rec.LeaseUntil); until > 0 && until < wait {
			wait = until
		}
		if err := httpretry.Sleep(ctx, wait); err != nil {
			return "", false, err
		}
		done, err := moot(ctx)
		if err != nil || done {
			return "", false, err
		}
	}
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// shellQuote makes a workspace name safe to paste into a shell command.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r == '/' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
