// Package secrets reads configuration secrets (API keys, client secrets,
// webhook secrets) from a pluggable Source and caches them for the life of a
// function instance.
//
// The package imports no cloud SDK so that the core and the local runner do
// not pull in GCP or AWS clients; gcpsecrets and awssecrets implement Source.
//
// Secret values never appear in an error, a String/Format result or slog
// output produced by this package or its sources: errors carry secret names
// only. A Source implementation must keep that promise for its own errors.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Source reads the current value of one secret. A secret that does not exist
// yields a *NotFoundError so that callers can tell "not configured" from
// "secret store unreachable".
type Source interface {
	Fetch(ctx context.Context, name string) (string, error)
}

// NotFoundError reports that a secret does not exist in its Source.
type NotFoundError struct {
	Name string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("secret %q not found", e.Name)
}

// IsNotFound reports whether err is or wraps a *NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// FetchError reports that a secret could not be read for a reason other than
// its absence (network, permissions, malformed payload). Err must not contain
// the value; every Source in this module guarantees that.
type FetchError struct {
	Name string
	Err  error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("reading secret %q: %v", e.Name, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// PrefetchError lists every secret that Cache.Prefetch could not provide, in
// name order. Each element is a *NotFoundError or a *FetchError.
type PrefetchError struct {
	Errs []error
}

func (e *PrefetchError) Error() string {
	var missing, failed []string
	for _, err := range e.Errs {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			missing = append(missing, nf.Name)
		} else {
			failed = append(failed, err.Error())
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing: "+strings.Join(missing, ", "))
	}
	if len(failed) > 0 {
		parts = append(parts, "failed: "+strings.Join(failed, "; "))
	}
	return "secrets: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.As find the individual *NotFoundError / *FetchError.
func (e *PrefetchError) Unwrap() []error { return e.Errs }

// Missing returns the names of the secrets that do not exist.
func (e *PrefetchError) Missing() []string {
	var names []string
	for _, err := range e.Errs {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			names = append(names, nf.Name)
		}
	}
	return names
}

// Env reads secrets from process environment variables, the default
// ONBOARD_SECRETS=env mode and the way `make run` is configured.
type Env struct {
	// Lookup replaces os.LookupEnv, so tests need not mutate the process
	// environment.
	Lookup func(string) (string, bool)
}

// Fetch returns the variable's value. An empty variable counts as absent:
// `FOO=` in a .env file or a deploy template means "not configured", and
// treating it as an empty credential would only fail later, less clearly.
func (e Env) Fetch(_ context.Context, name string) (string, error) {
	lookup := e.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(name)
	if !ok || v == "" {
		return "", &NotFoundError{Name: name}
	}
	return v, nil
}
