package state

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// DefaultSpec is the store used when ONBOARD_STORE is unset: embedded,
// so `make run` and the CLI work without any cloud account.
const DefaultSpec = "file:.onboard"

// Backend opens one kind of store. arg is what follows "scheme:" in the
// spec ("" when there is nothing); getenv gives the plain settings.
type Backend func(ctx context.Context, arg string, getenv func(string) string) (Store, error)

// Open opens the store spec names ("scheme" or "scheme:arg", DefaultSpec
// when empty) with the backend registered for its scheme. Backends are
// passed in rather than imported because each cloud's entry point must link
// only its own cloud's client: a Lambda carrying Google's gRPC stack, or a
// Cloud Function carrying the AWS SDK, pays for it on every cold start.
func Open(ctx context.Context, spec string, getenv func(string) string, backends map[string]Backend) (Store, error) {
	if spec == "" {
		spec = DefaultSpec
	}
	scheme, arg, _ := strings.Cut(spec, ":")
	open, ok := backends[scheme]
	if !ok {
		names := make([]string, 0, len(backends))
		for n := range backends {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("ONBOARD_STORE=%q: %q is not available in this build; use one of: %s", spec, scheme, strings.Join(names, ", "))
	}
	s, err := open(ctx, arg, getenv)
	if err != nil {
		return nil, fmt.Errorf("ONBOARD_STORE=%s: %w", spec, err)
	}
	return s, nil
}
