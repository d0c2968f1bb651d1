package aac

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/state"
)

// DefaultKeepAliveIdle is how long a chain may go unrotated before a
// keep-alive rotates it. AAC refresh tokens expire at the lifetime chosen
// when they were generated (1 to 365 days) even if unused, so a workspace
// nobody joins for a while would otherwise lose its chain. A week leaves
// room for missed runs under any lifetime of a month or more.
const DefaultKeepAliveIdle = 7 * 24 * time.Hour

// What a keep-alive did for one chain.
const (
	KeepAliveRotated = "rotated"  // refreshed now; the store holds the new head
	KeepAliveRecent  = "recent"   // rotated within the idle limit: left alone
	KeepAliveNoToken = "no token" // neither stored nor seeded: nothing to keep alive
	KeepAliveFailed  = "failed"   // see Err: broken (logged at CRITICAL), or AAC or the store down
)

// ChainReport is what the store says of one token chain, never its tokens,
// and, from a keep-alive, what was done to it.
type ChainReport struct {
	Chain     string // `AAC workspace "Sales Analytics"` or `the AAC account`
	Workspace string // empty for the account chain
	StoreKey  string
	Stored    bool
	Seeded    bool // a seed secret exists (used only while nothing is stored)
	// ChainInfo is the stored head's, when Stored. Its AccessExpiry shows
	// whether the chain is in use: a chain in use has a current one.
	ChainInfo
	Fix string // the command that reseeds this chain

	Outcome string // set by KeepAlive
	Err     error  // set by KeepAlive with KeepAliveFailed
}

// Status reports every chain this deployment may use: the workspaces named
// (from the profiles) or seeded, and the account chain when it is seeded or
// stored. It reads the store and the seed secrets and calls nothing else.
func (t *Target) Status(ctx context.Context, workspaces []string) ([]ChainReport, error) {
	chains, err := t.chains(ctx, workspaces)
	if err != nil {
		return nil, err
	}
	var out []ChainReport
	for _, c := range chains {
		r, err := c.report(ctx)
		if err != nil {
			return nil, err
		}
		if r.Stored || r.Seeded || r.Workspace != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// KeepAlive rotates every chain not rotated within maxIdle, through the
// same protocol as any request (lease, compare-and-swap before use), so it
// is safe while requests run. A chain only seeded is started from its seed.
// A broken chain is logged at CRITICAL as a request would find it, but
// before anyone is waiting on it.
func (t *Target) KeepAlive(ctx context.Context, workspaces []string, maxIdle time.Duration) ([]ChainReport, error) {
	reports, err := t.Status(ctx, workspaces)
	if err != nil {
		return nil, err
	}
	for i := range reports {
		r := &reports[i]
		switch {
		case !r.Stored && !r.Seeded:
			r.Outcome = KeepAliveNoToken
			continue
		case r.Stored && time.Since(r.UpdatedAt) < maxIdle:
			r.Outcome = KeepAliveRecent
			continue
		}
		c := t.chainFor(r.Workspace)
		if err := c.rotateNow(ctx); err != nil {
			r.Outcome, r.Err = KeepAliveFailed, err
			t.log.Error("AAC keep-alive could not rotate a token chain", "chain", r.Chain, "fix", r.Fix, "error", err.Error())
			continue
		}
		if *r, err = c.report(ctx); err != nil {
			return nil, err
		}
		r.Outcome = KeepAliveRotated
		t.log.Info("AAC keep-alive rotated a token chain", "chain", r.Chain, "store_key", r.StoreKey)
	}
	return reports, nil
}

func (t *Target) chainFor(workspace string) *Chain {
	if workspace == "" {
		return t.client.tokens.Account()
	}
	return t.client.tokens.Workspace(workspace)
}

// chains are the named and seeded workspaces' chains, sorted, then the account's.
func (t *Target) chains(ctx context.Context, workspaces []string) ([]*Chain, error) {
	seeds, err := t.client.cfg.Seeds(ctx)
	if err != nil {
		return nil, core.Unavailable(TargetName, 0, errors.New("aac: reading AAC_REFRESH_TOKENS failed"))
	}
	names := slices.Clone(workspaces)
	for name := range seeds {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []*Chain
	for _, name := range slices.Compact(names) {
		out = append(out, t.client.tokens.Workspace(name))
	}
	return append(out, t.client.tokens.Account()), nil
}

// report reads the chain's stored head and seed, keeping the tokens out.
func (c *Chain) report(ctx context.Context) (ChainReport, error) {
	r := ChainReport{Chain: c.label, Workspace: c.workspace, StoreKey: c.key, Fix: c.fix}
	v, err := c.ts.store.Get(ctx, c.key)
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return r, c.storeError(err)
	default:
		r.Stored, r.ChainInfo = true, infoOf(v.Data)
	}
	seed, err := c.seed(ctx)
	if err != nil {
		return r, core.Unavailable(TargetName, 0, errors.New("aac: reading the seed of "+c.label+" failed"))
	}
	r.Seeded = seed != ""
	return r, nil
}

// rotateNow refreshes the chain even if its access token is still fresh:
// rejecting that token makes Token rotate, through the usual protocol.
func (c *Chain) rotateNow(ctx context.Context) error {
	cur, err := c.read(ctx)
	if err == nil {
		c.Reject(cur.state.AccessToken)
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	_, err = c.Token(ctx)
	return err
}
