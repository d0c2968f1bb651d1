package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	// fetchTimeout bounds one shared fetch. It is detached from the caller
	// that happened to start it, so that caller's cancellation cannot fail
	// the other callers waiting on the same fetch.
	fetchTimeout = 30 * time.Second

	// maxRetryDelay caps how long a stale value is served after a failed
	// refresh before the next attempt, so an outage is not re-hit by every
	// request yet recovery is noticed quickly.
	maxRetryDelay = 10 * time.Second
)

// Cache serves secrets from memory and re-reads each one after its TTL, so a
// rotated secret is picked up without a redeploy.
//
// Refresh failures: when re-reading a secret fails for a reason other than
// *NotFoundError and a previous answer is cached, Get keeps serving that
// previous answer and reports the failure to the refresh-error handler (see
// WithRefreshErrorHandler; by default a slog warning naming the secret). A
// transient secret-manager blip must not take the service down. The next
// attempt happens after min(TTL, 10s). A *NotFoundError is an answer, not a
// failure: a secret deleted from the store disappears from the cache at the
// next refresh.
//
// Concurrent Gets of the same expired name share one Source.Fetch.
//
// A Cache formats and logs as a fixed placeholder so a stray %v or slog
// attribute cannot print the values it holds.
type Cache struct {
	src            Source
	ttl            time.Duration
	now            func() time.Time
	onRefreshError func(name string, err error)

	flight singleflight.Group

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	value   string
	found   bool
	expires time.Time // zero: never
}

func (e entry) result(name string) (string, error) {
	if !e.found {
		return "", &NotFoundError{Name: name}
	}
	return e.value, nil
}

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// WithClock replaces time.Now, for tests of TTL expiry.
func WithClock(now func() time.Time) CacheOption {
	return func(c *Cache) { c.now = now }
}

// WithRefreshErrorHandler is called (synchronously, once per failed refresh)
// when a stale value is served because re-reading it failed. err is a
// *FetchError and never contains the value.
func WithRefreshErrorHandler(f func(name string, err error)) CacheOption {
	return func(c *Cache) { c.onRefreshError = f }
}

// NewCache returns a Cache over src. ttl <= 0 means values are read once per
// instance and never re-read.
func NewCache(src Source, ttl time.Duration, opts ...CacheOption) *Cache {
	c := &Cache{
		src:     src,
		ttl:     ttl,
		now:     time.Now,
		entries: make(map[string]entry),
		onRefreshError: func(name string, err error) {
			slog.Warn("secret refresh failed; serving the previously read value", "secret", name, "error", err)
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Prefetch reads all names concurrently, bounded by ctx, and fills the cache.
// Call it at cold start so a missing secret fails start-up instead of the
// first request. The error is a *PrefetchError listing every missing or
// unreadable name.
func (c *Cache) Prefetch(ctx context.Context, names []string) error {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)

	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { _, errs[i] = c.Get(ctx, name) })
	}
	wg.Wait()

	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return &PrefetchError{Errs: failed}
	}
	return nil
}

// Get returns the secret's value: from memory while fresh, else re-read from
// the Source. It returns a *NotFoundError when the secret does not exist and
// a *FetchError when it could not be read and nothing was cached before.
func (c *Cache) Get(ctx context.Context, name string) (string, error) {
	c.mu.Lock()
	e, ok := c.entries[name]
	c.mu.Unlock()
	if ok && (e.expires.IsZero() || c.now().Before(e.expires)) {
		return e.result(name)
	}

	ch := c.flight.DoChan(name, func() (any, error) { return c.load(ctx, name) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(entry).result(name)
	case <-ctx.Done():
		return "", &FetchError{Name: name, Err: context.Cause(ctx)}
	}
}

// Lookup is Get for optional secrets: an absent secret is ("", false, nil).
// A store failure is still an error, so an outage cannot silently look like
// "feature not configured".
func (c *Cache) Lookup(ctx context.Context, name string) (string, bool, error) {
	v, err := c.Get(ctx, name)
	switch {
	case err == nil:
		return v, true, nil
	case IsNotFound(err):
		return "", false, nil
	default:
		return "", false, err
	}
}

func (c *Cache) load(ctx context.Context, name string) (entry, error) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	v, err := c.src.Fetch(fctx, name)

	now := c.now()
	fresh := entry{value: v, found: err == nil}
	if c.ttl > 0 {
		fresh.expires = now.Add(c.ttl)
	}
	if err == nil || IsNotFound(err) {
		c.store(name, fresh)
		return fresh, nil
	}

	var ferr *FetchError
	if !errors.As(err, &ferr) {
		ferr = &FetchError{Name: name, Err: err}
	}
	c.mu.Lock()
	stale, had := c.entries[name]
	if had {
		stale.expires = now.Add(min(c.ttl, maxRetryDelay))
		c.entries[name] = stale
	}
	c.mu.Unlock()
	if !had {
		return entry{}, ferr
	}
	c.onRefreshError(name, ferr)
	return stale, nil
}

func (c *Cache) store(name string, e entry) {
	c.mu.Lock()
	c.entries[name] = e
	c.mu.Unlock()
}

const redactedCache = "secrets.Cache{<redacted>}"

// Format prints a placeholder for every verb (%v, %+v, %#v, %s, %q).
func (c *Cache) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedCache) }

// LogValue keeps slog from reflecting over the cached values.
func (c *Cache) LogValue() slog.Value { return slog.StringValue(redactedCache) }
