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
// The person's record read, the claim and the person lease taken together,
// the record's write that ends the lease (the welcome's hand-over with
// it) beside the targets' audit records, then the completion beside the
// welcome's outcome and its audit record.
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
	if byMethod, total := store.Calls(); total > maxStoreCallsPerNewUser || byMethod["Append"] != 2 {
		t.Errorf("%d store calls (%v), want at most %d with the audit records in two Appends (the targets', the welcome's)", total, byMethod, maxStoreCallsPerNewUser)
	}
	if recs, _ := store.Audit(context.Background(), state.AuditQuery{Person: "count@example.com"}); len(recs) < 5 {
		t.Errorf("%d audit records, want one per Looker write and the welcome", len(recs))
	}
}

// storeDelay is added to every state-store call in the benchmark, as the
// round trip to a cloud store would take, long enough that the emulators'
// own jitter is small beside it.
const storeDelay = 50 * time.Millisecond

// storePairs is how many users each iteration provisions with the delay,
// and as many without: one pair alone is at the mercy of a slow GC or a
// busy emulator.
const storePairs = 10

// BenchmarkStoreRoundTripsNewUser provisions new users on each backend
// (the file store, DynamoDB on moto_server, Firestore on its emulator):
// store calls per user, and the sequential store round trips on the
// critical path, from new users provisioned in turn with and without a
// delay on every store call (the difference in wall time ÷ the delay).
// Requests keyed by their content (a form's webhook) and by their caller
// (a key in the body, a queue's message id) alike.
func BenchmarkStoreRoundTripsNewUser(b *testing.B) {
	backends := []struct {
		name string
		open func(testing.TB) state.Store
	}{
		{"file", func(tb testing.TB) state.Store { return openFileStore(tb, tb.TempDir()) }},
		{"dynamodb", statetest.DynamoDB},
		{"firestore", statetest.Firestore},
	}
	for _, backend := range backends {
		for _, keyed := range []bool{false, true} {
			name := backend.name + "/content-key"
			if keyed {
				name = backend.name + "/caller-key"
			}
			b.Run(name, func(b *testing.B) {
				w := newWorld(b, lookertest.Options{})
				store := &statetest.Counting{Store: backend.open(b)}
				e := w.instance(b, store, nil)
				e.Lease = time.Minute
				n := 0
				provision := func(delay time.Duration) time.Duration {
					n++
					req := core.Request{Email: fmt.Sprintf("store-%d@example.com", n), Name: "Store Bench"}
					if keyed {
						req.IdempotencyKey = fmt.Sprintf("bench-%d", n)
					}
					req, _ = req.Normalize()
					store.Delay = delay
					start := time.Now()
					if res, err := e.Handle(context.Background(), req, core.Meta{Trigger: "bench"}); err != nil || res.Status != core.StatusCreated {
						b.Fatalf("provision: %+v %v", res, err)
					}
					return time.Since(start)
				}
				provision(0) // warm: the Looker login and catalogues
				store.Reset()
				var delayed, plain time.Duration
				ops := 0
				for b.Loop() {
					for range storePairs {
						delayed += provision(storeDelay)
						plain += provision(0)
						ops++
					}
				}
				_, calls := store.Calls()
				b.ReportMetric(float64(calls)/float64(2*ops), "store-calls/op")
				b.ReportMetric(math.Round(float64(delayed-plain)/float64(ops)/float64(storeDelay)*10)/10, "store-round-trips/op")
			})
		}
	}
}
