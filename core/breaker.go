package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// The deprovision breaker counts deprovisions per rolling hour in the state
// store, so it holds across every trigger and instance: a feed gone wrong
// (a bad sheet, an IdP group emptied) must not lock the company out one
// request at a time. Past max_deprovision it opens, and stays open until an
// operator releases it: the next hour being quieter says nothing about
// whether the feed was fixed.
const (
	breakerKey    = "breaker/deprovision"
	BreakerWindow = time.Hour
	// BreakerRetryAfter is the Retry-After of a deprovision refused by an
	// open breaker: queues keep the message until an operator decides.
	BreakerRetryAfter = 10 * time.Minute
)

// BreakerState is the stored breaker.
type BreakerState struct {
	// Recent are the deprovisions admitted in the last BreakerWindow, by
	// idempotency key, so a redelivery is not counted twice.
	Recent []BreakerEntry `json:"recent,omitempty"`
	// OpenSince is when the breaker opened; zero while it is closed.
	OpenSince time.Time `json:"open_since,omitzero"`
	// OpenedBy is the request id of the deprovision that opened it.
	OpenedBy string `json:"opened_by,omitempty"`
}

// BreakerEntry is one admitted deprovision.
type BreakerEntry struct {
	Key string    `json:"key"`
	At  time.Time `json:"at"`
}

// Open says whether deprovisions are refused.
func (b BreakerState) Open() bool { return !b.OpenSince.IsZero() }

// ReadBreaker returns the breaker as stored, with entries older than the
// window dropped.
func ReadBreaker(ctx context.Context, store state.Store) (BreakerState, int64, error) {
	var b BreakerState
	v, err := store.Get(ctx, breakerKey)
	if errors.Is(err, state.ErrNotFound) {
		return b, 0, nil
	}
	if err != nil {
		return b, 0, err
	}
	if len(v.Data) > 0 {
		if err := json.Unmarshal(v.Data, &b); err != nil {
			return b, 0, fmt.Errorf("the deprovision breaker's record is unreadable: %w", err)
		}
	}
	cutoff := time.Now().Add(-BreakerWindow)
	kept := b.Recent[:0]
	for _, e := range b.Recent {
		if e.At.After(cutoff) {
			kept = append(kept, e)
		}
	}
	b.Recent = kept
	return b, v.Version, nil
}

func writeBreaker(ctx context.Context, store state.Store, b BreakerState, version int64) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	_, err = store.Put(ctx, breakerKey, data, version, 0)
	return err
}

// errBreakerOpen is the answer to a deprovision while the breaker is open.
func errBreakerOpen(limit int) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Field: "action", RetryAfter: BreakerRetryAfter,
		Message: fmt.Sprintf("deprovisioning is paused: more than max_deprovision (%d) people were deprovisioned within an hour. "+
			"Nothing was done; an operator checks the audit log and runs onboard breaker release", limit)}
}

// admitDeprovision counts one deprovision, keyed by its idempotency key,
// or refuses it when the breaker is open or this one would pass the
// limit, which opens it. opened is true for the one request that opened
// it, so the CRITICAL line is logged once. force (the CLI's --force) is
// counted but never refused.
func admitDeprovision(ctx context.Context, store state.Store, limit int, key, requestID string, force bool) (opened bool, _ error) {
	for range 10 {
		b, version, err := ReadBreaker(ctx, store)
		if err != nil {
			return false, Unavailable("state", 0, err)
		}
		counted := false
		for _, e := range b.Recent {
			counted = counted || e.Key == key
		}
		switch {
		case counted && !b.Open(), counted && force:
			return false, nil
		case b.Open() && !force:
			return false, errBreakerOpen(limit)
		case len(b.Recent) >= limit && !force:
			b.OpenSince, b.OpenedBy = time.Now().UTC(), requestID
		default:
			b.Recent = append(b.Recent, BreakerEntry{Key: key, At: time.Now().UTC()})
		}
		err = writeBreaker(ctx, store, b, version)
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return false, Unavailable("state", 0, err)
		}
		if b.Open() && !force {
			return true, errBreakerOpen(limit)
		}
		return false, nil
	}
	return false, Unavailable("state", 0, errors.New("the deprovision breaker is too contended; retry"))
}

// ReleaseBreaker closes the breaker and starts a new window, recording who
// did it in the audit log. It returns the state it released.
func ReleaseBreaker(ctx context.Context, store state.Store, operator string) (BreakerState, error) {
	for range 10 {
		b, version, err := ReadBreaker(ctx, store)
		if err != nil {
			return b, err
		}
		err = writeBreaker(ctx, store, BreakerState{}, version)
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return b, err
		}
		outcome := "ok"
		if !b.Open() {
			outcome = "was closed"
		}
		return b, store.Append(ctx, state.AuditRecord{
			Time: time.Now().UTC(), RequestID: NewRequestID(), Trigger: "cli", Target: "onboard",
			Operation: "release deprovision breaker", Person: operator, Outcome: outcome,
		})
	}
	return BreakerState{}, state.ErrConflict
}
