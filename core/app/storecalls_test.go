package app

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/statetest"
)

// maxStoreCallsPerNewUser is the budget one new user has with the state
// store: every call is a round trip from a function, and a billed request.
// The claim, the person lease, the note before creating, the welcome
// hand-over, the person's record, the audit batch and the completion.
const maxStoreCallsPerNewUser = 8

func TestStoreCallsPerNewUser(t *testing.T) {
	w := newWorld(t, lookertest.Options{})
	store := &statetest.Counting{Store: openFileStore(t, t.TempDir())}
	e := w.instance(t, store, nil)
	e.Lease = time.Minute // no renewal however slow the run (-race)
	res, err := e.Handle(context.Background(), request(t, "count@example.com"), core.Meta{Trigger: "test"})
	if err != nil || res.Status != core.StatusCreated || res.Email != "sent" {
		t.Fatalf("%+v %v", res, err)
	}
	if byMethod, total := store.Calls(); total > maxStoreCallsPerNewUser || byMethod["Append"] != 1 {
		t.Errorf("%d store calls (%v), want at most %d with the audit records in one Append", total, byMethod, maxStoreCallsPerNewUser)
	}
	if recs, _ := store.Audit(context.Background(), state.AuditQuery{Person: "count@example.com"}); len(recs) < 5 {
		t.Errorf("%d audit records, want one per Looker write and the welcome", len(recs))
	}
}

// storeDelay is added to every state-store call in the benchmark, as the
// round trip to a cloud store would take; the targets answer at once.
const storeDelay = 10 * time.Millisecond

// BenchmarkStoreRoundTripsNewUser provisions a new user per iteration
// with every store call delayed: store calls per user, and the sequential
// store round trips on its critical path (wall time ÷ the delay), for a
// request keyed by its content (a form's webhook) and one keyed by its
// caller (a key in the body, a queue's message id).
func BenchmarkStoreRoundTripsNewUser(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		name := "content-key"
		if keyed {
			name = "caller-key"
		}
		b.Run(name, func(b *testing.B) {
			w := newWorld(b, lookertest.Options{})
			store := &statetest.Counting{Store: openFileStore(b, b.TempDir()), Delay: storeDelay}
			e := w.instance(b, store, nil)
			e.Lease = time.Minute
			provision := func(i int) {
				req := core.Request{Email: fmt.Sprintf("store-%d@example.com", i), Name: "Store Bench"}
				if keyed {
					req.IdempotencyKey = fmt.Sprintf("bench-%d", i)
				}
				req, _ = req.Normalize()
				if res, err := e.Handle(context.Background(), req, core.Meta{Trigger: "bench"}); err != nil || res.Status != core.StatusCreated {
					b.Fatalf("provision: %+v %v", res, err)
				}
			}
			provision(-1) // warm: the Looker login and catalogues
			store.Reset()
			start := time.Now()
			n := 0
			for b.Loop() {
				provision(n)
				n++
			}
			_, calls := store.Calls()
			b.ReportMetric(float64(calls)/float64(n), "store-calls/op")
			b.ReportMetric(math.Round(float64(time.Since(start))/float64(n)/float64(storeDelay)*10)/10, "store-round-trips/op")
		})
	}
}
