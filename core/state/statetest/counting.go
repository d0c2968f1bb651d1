package statetest

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// Counting is a store that counts the calls made to the one it wraps, by
// method, and can make each call take Delay longer, as a network round
// trip to a cloud store would: what the store-round-trip tests and
// benchmarks measure with.
type Counting struct {
	state.Store
	Delay time.Duration

	mu    sync.Mutex
	calls map[string]int
}

// Calls returns the calls so far by method, and their total.
func (c *Counting) Calls() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, n := range c.calls {
		total += n
	}
	return maps.Clone(c.calls), total
}

// Reset forgets the calls counted so far.
func (c *Counting) Reset() {
	c.mu.Lock()
	c.calls = nil
	c.mu.Unlock()
}

func (c *Counting) call(method string) {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[method]++
	c.mu.Unlock()
	if c.Delay > 0 {
		time.Sleep(c.Delay)
	}
}

func (c *Counting) Claim(ctx context.Context, key, fingerprint, owner string, lease, ttl time.Duration) (state.ClaimOutcome, state.Record, error) {
	c.call("Claim")
	return c.Store.Claim(ctx, key, fingerprint, owner, lease, ttl)
}

func (c *Counting) Complete(ctx context.Context, key, owner string, result []byte, ttl time.Duration) error {
	c.call("Complete")
	return c.Store.Complete(ctx, key, owner, result, ttl)
}

func (c *Counting) Renew(ctx context.Context, key, owner string, lease time.Duration) error {
	c.call("Renew")
	return c.Store.Renew(ctx, key, owner, lease)
}

func (c *Counting) Release(ctx context.Context, key, owner string) error {
	c.call("Release")
	return c.Store.Release(ctx, key, owner)
}

func (c *Counting) Get(ctx context.Context, key string) (state.Value, error) {
	c.call("Get")
	return c.Store.Get(ctx, key)
}

func (c *Counting) Put(ctx context.Context, key string, data []byte, expectVersion int64, ttl time.Duration) (int64, error) {
	c.call("Put")
	return c.Store.Put(ctx, key, data, expectVersion, ttl)
}

func (c *Counting) Append(ctx context.Context, recs ...state.AuditRecord) error {
	c.call("Append")
	return c.Store.Append(ctx, recs...)
}
