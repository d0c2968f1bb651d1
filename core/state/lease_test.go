package state_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
)

// Real time: KeepLease runs on a ticker. The lease is short for a quick
// test but long enough (renewed every 200ms, lost after 600ms) that a busy
// machine does not miss a renewal.
const lease = 600 * time.Millisecond

func openStore(t *testing.T) state.Store {
	t.Helper()
	s, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// losses records onLost calls.
type losses struct {
	mu   sync.Mutex
	errs []error
	got  chan struct{}
}

func newLosses() *losses { return &losses{got: make(chan struct{}, 10)} }

func (l *losses) onLost(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
	l.got <- struct{}{}
}

func (l *losses) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

func claim(t *testing.T, s state.Store, owner string, want state.ClaimOutcome) state.Record {
	t.Helper()
	got, rec, err := s.Claim(t.Context(), "k", "fp", owner, lease, time.Hour)
	if err != nil || got != want {
		t.Fatalf("Claim by %s = %v, %v (record %+v); want %v", owner, got, err, rec, want)
	}
	return rec
}

func TestKeepLeaseKeepsOthersOutUntilStopped(t *testing.T) {
	s := openStore(t)
	claim(t, s, "a", state.Claimed)
	lost := newLosses()
	stop := state.KeepLease(t.Context(), s, "k", "a", lease, lost.onLost)

	time.Sleep(3 * lease) // a run three leases long
	claim(t, s, "b", state.InProgress)
	stop()
	if errs := lost.all(); len(errs) != 0 {
		t.Fatalf("onLost called while the lease was kept: %v", errs)
	}

	// Stopped means stopped: the lease is left to run out.
	last := claim(t, s, "b", state.InProgress).LeaseUntil
	time.Sleep(lease / 2)
	if now := claim(t, s, "b", state.InProgress).LeaseUntil; !now.Equal(last) {
		t.Fatalf("renewed after stop: lease until %v, then %v", last, now)
	}
	time.Sleep(time.Until(last) + 10*time.Millisecond)
	claim(t, s, "b", state.Claimed)
}

func TestKeepLeaseReportsATakeoverOnce(t *testing.T) {
	s := openStore(t)
	claim(t, s, "a", state.Claimed)
	lost := newLosses()
	stop := state.KeepLease(t.Context(), s, "k", "a", lease, lost.onLost)
	defer stop()

	// Another owner takes over (as after a stall longer than the lease).
	if err := s.Release(t.Context(), "k", "a"); err != nil {
		t.Fatal(err)
	}
	claim(t, s, "b", state.Claimed)

	select {
	case <-lost.got:
	case <-time.After(5 * lease):
		t.Fatal("the lost lease was never reported")
	}
	time.Sleep(lease) // three more ticks, were it still renewing
	errs := lost.all()
	if len(errs) != 1 || !errors.Is(errs[0], state.ErrConflict) {
		t.Fatalf("onLost calls: %v; want one, with ErrConflict", errs)
	}
}

// failingRenews fails as many renewals as asked, and reports every call.
type failingRenews struct {
	state.Store
	fail  atomic.Int32
	calls chan error
}

func (s *failingRenews) Renew(ctx context.Context, key, owner string, lease time.Duration) error {
	err := errors.New("store unavailable")
	if s.fail.Add(-1) < 0 {
		s.fail.Store(0)
		err = s.Store.Renew(ctx, key, owner, lease)
	}
	s.calls <- err
	return err
}

func TestKeepLeaseRidesOutOneFailureButNotTwo(t *testing.T) {
	s := &failingRenews{Store: openStore(t), calls: make(chan error, 100)}
	claim(t, s, "a", state.Claimed)
	lost := newLosses()
	stop := state.KeepLease(t.Context(), s, "k", "a", lease, lost.onLost)
	defer stop()
	next := func() error {
		t.Helper()
		select {
		case err := <-s.calls:
			return err
		case <-time.After(5 * lease):
			t.Fatal("no renewal")
			return nil
		}
	}

	s.fail.Store(1)
	if next() == nil || next() != nil {
		t.Fatal("want one failed renewal, then one that works")
	}
	if errs := lost.all(); len(errs) != 0 {
		t.Fatalf("one failed renewal reported the lease lost: %v", errs)
	}

	s.fail.Store(2)
	next()
	next()
	select {
	case <-lost.got:
	case <-time.After(5 * lease):
		t.Fatal("two failed renewals in a row were not reported")
	}
	if errs := lost.all(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "store unavailable") {
		t.Fatalf("onLost calls: %v; want one, with the store's error", errs)
	}
}

func TestKeepLeaseRefusesALeaseTooShortToRenew(t *testing.T) {
	lost := newLosses()
	state.KeepLease(t.Context(), openStore(t), "k", "a", 0, lost.onLost)()
	if len(lost.all()) != 1 {
		t.Fatal("a lease of 0 was not reported lost")
	}
}
