package looker

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/onboard-dev/onboard/core"
)

// entry is a role, group or user attribute as a profile refers to it.
type entry struct {
	id     ID
	name   string
	system bool
}

// catalog resolves the names (or ids) in profiles to Looker ids. Lists are
// fetched once per instance and fetched again only when a name is missing,
// so a role an admin just created is found without a redeploy.
type catalog struct {
	kind  string // "role", "group", "user attribute": for error messages
	fetch func(context.Context) ([]entry, error)

	mu      sync.Mutex
	entries []entry
	loaded  bool
	flight  singleflight.Group
}

func (k *catalog) resolve(ctx context.Context, refs []string) ([]entry, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	k.mu.Lock()
	entries, loaded := k.entries, k.loaded
	k.mu.Unlock()
	if loaded {
		if found, missing := match(entries, refs); missing == "" {
			return found, nil
		}
	}
	entries, err := k.reload(ctx)
	if err != nil {
		return nil, err
	}
	found, missing := match(entries, refs)
	if missing != "" {
		return nil, &missingError{kind: k.kind, ref: missing}
	}
	return found, nil
}

// reload shares one fetch between concurrent callers. The fetch must not
// die with the request that happened to start it (its other calls may fail
// and cancel it), so it runs detached, bounded by the client's timeouts,
// while each caller waits only as long as its own context allows.
func (k *catalog) reload(ctx context.Context) ([]entry, error) {
	// Safely: DoChan's function runs in a goroutine of its own, and
	// singleflight re-raises its panic where nothing can recover it.
	ch := k.flight.DoChan("", func() (v any, err error) {
		err = core.Safely(func() error {
			entries, err := k.fetch(context.WithoutCancel(ctx))
			if err != nil {
				return err
			}
			k.mu.Lock()
			k.entries, k.loaded = entries, true
			k.mu.Unlock()
			v = entries
			return nil
		})
		return v, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]entry), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// match resolves each ref by exact name, then case-insensitive name, then id,
// so a profile may use either and a name that looks like an id still wins.
func match(entries []entry, refs []string) ([]entry, string) {
	out := make([]entry, 0, len(refs))
	for _, ref := range refs {
		e, ok := lookup(entries, ref)
		if !ok {
			return nil, ref
		}
		out = append(out, e)
	}
	return out, ""
}

func lookup(entries []entry, ref string) (entry, bool) {
	for _, e := range entries {
		if e.name == ref {
			return e, true
		}
	}
	for _, e := range entries {
		if strings.EqualFold(e.name, ref) {
			return e, true
		}
	}
	for _, e := range entries {
		if string(e.id) == ref {
			return e, true
		}
	}
	return entry{}, false
}

// missingError is a profile naming something Looker does not have: a
// configuration mistake that retrying cannot fix.
type missingError struct{ kind, ref string }

func (e *missingError) Error() string {
	return fmt.Sprintf("Looker has no %s named %q: fix the profile in onboard.yaml or create it in Looker", e.kind, e.ref)
}

func newCatalogs(c *Client) (roles, groups, attrs *catalog) {
	roles = catalogOf("role", c.Roles, func(r Role) entry { return entry{id: r.ID, name: r.Name} })
	groups = catalogOf("group", c.Groups, func(g Group) entry { return entry{id: g.ID, name: g.Name} })
	attrs = catalogOf("user attribute", c.UserAttributes, func(a UserAttribute) entry {
		return entry{id: a.ID, name: a.Name, system: a.IsSystem}
	})
	return roles, groups, attrs
}

func catalogOf[T any](kind string, list func(context.Context) ([]T, error), toEntry func(T) entry) *catalog {
	return &catalog{kind: kind, fetch: func(ctx context.Context) ([]entry, error) {
		items, err := list(ctx)
		if err != nil {
			return nil, err
		}
		es := make([]entry, len(items))
		for i, it := range items {
			es[i] = toEntry(it)
		}
		return es, nil
	}}
}
