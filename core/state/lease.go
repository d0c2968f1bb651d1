package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// KeepLease renews owner's lease on key every lease/3 until stop is
// called or ctx ends, so that a run slower than one lease keeps every
// other owner out for as long as it works. Call it right after a Claim
// that returned Claimed, and call stop before Complete or Release: once
// stop returns, no renewal is in flight and onLost will not be called.
//
// onLost is called once, in KeepLease's goroutine, when the lease is lost:
// Renew answered ErrConflict (another owner took the record over, or it
// is gone), or two renewals in a row failed, after which the lease may
// run out before the next try. The holder should then stop writing, since
// another owner may be running the same work.
func KeepLease(ctx context.Context, s Store, key, owner string, lease time.Duration, onLost func(error)) (stop func()) {
	every := lease / 3
	if every <= 0 {
		onLost(fmt.Errorf("state: keeping the lease on %q: lease %v is too short to renew", key, lease))
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		failedBefore := false // the previous renewal failed
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := s.Renew(ctx, key, owner, lease)
			switch {
			case ctx.Err() != nil:
				return // stopped while renewing: the holder is done with the lease
			case err == nil:
				failedBefore = false
				continue
			case errors.Is(err, ErrConflict):
				onLost(fmt.Errorf("state: lease on %q lost: another owner took it over, or it is gone: %w", key, err))
				return
			case failedBefore:
				onLost(fmt.Errorf("state: lease on %q may have run out: two renewals in a row failed: %w", key, err))
				return
			}
			failedBefore = true
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
