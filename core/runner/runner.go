// Package runner is the one batch runner: every source (an HTTP bulk body,
// an SQS batch, a Pub/Sub message, the rows of an import) hands its decoded
// requests to Run, so concurrency, per-item outcomes, redelivery and event
// batching behave alike whichever way requests arrive.
package runner

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/onboard-dev/onboard/core"
)

// Item is one request an event source hands to Run: decoded, or the
// reason it could not be.
type Item struct {
	Request core.Request
	// Err is why the source could not decode the item; it is answered as
	// is and never run.
	Err  error
	Meta core.Meta
	// Plan, when set, makes the item a dry run that records its writes
	// there instead of sending them.
	Plan *core.Plan
	// Group orders items: those of one group run one after another, and
	// once one of them is to be delivered again, so is the rest of the
	// group (an SQS FIFO message group). Empty: the item runs on its own.
	Group string
}

// Outcome is what became of one item.
type Outcome struct {
	Result core.Result
	Err    error
	// Redeliver says the source should deliver the item again: it failed
	// in a way a retry may fix, or it never ran. A request that can never
	// succeed as sent is not redelivered, so a poison message cannot loop.
	Redeliver bool
}

// Run runs items through e as one event batch (see core.Batch): at most
// concurrency at a time, each request's outcome its own, a panic failing
// only its item.
// Every source (an HTTP bulk body, an SQS batch, the rows of an import)
// runs its requests here, so they behave alike. onDone, when set, hears
// each outcome as it comes (a progress bar), from the item's goroutine.
func Run(ctx context.Context, e *core.Engine, items []Item, concurrency int, onDone func(i int, o Outcome)) []Outcome {
	if onDone == nil {
		onDone = func(int, Outcome) {}
	}
	out := make([]Outcome, len(items))
	if len(items) == 1 {
		// Alone, an item has no one to share a call with inside a batch,
		// but may share one with requests arriving beside it (a target's
		// micro-batch window), which only works outside a batch.
		out[0] = runItem(ctx, e, items[0])
		onDone(0, out[0])
		return out
	}
	groups := groupsOf(items)
	batch := core.NewBatch(concurrency)
	batch.Add(len(groups))
	var wg sync.WaitGroup
	for _, group := range groups {
		wg.Go(func() {
			for n, i := range group {
				ran := false
				err := batch.Do(ctx, func(ctx context.Context) {
					ran = true
					out[i] = runItem(ctx, e, items[i])
					if !out[i].Redeliver && n+1 < len(group) {
						batch.Add(1) // the group's next item, which could not start before this one ended
					}
				})
				if err != nil || !ran {
					out[i] = notRun(items[i], err)
				}
				onDone(i, out[i])
				if out[i].Redeliver {
					for _, j := range group[n+1:] {
						out[j] = notRun(items[j], nil)
						onDone(j, out[j])
					}
					return
				}
			}
		})
	}
	wg.Wait()
	return out
}

func runItem(ctx context.Context, e *core.Engine, item Item) (o Outcome) {
	if item.Err != nil {
		return Outcome{Err: item.Err}
	}
	if item.Plan != nil {
		ctx = core.WithPlan(ctx, item.Plan)
	}
	if p := core.Safely(func() error {
		res, err := e.Handle(ctx, item.Request, item.Meta)
		o = Outcome{Result: res, Err: err, Redeliver: err != nil && core.AsError(err).Retryable()}
		return nil
	}); p != nil {
		e.Logger().Error("panic while running a batch item; it fails alone", "request_id", item.Meta.RequestID, "error", errors.Unwrap(p).Error())
		return Outcome{Err: p, Redeliver: true}
	}
	return o
}

func notRun(item Item, cause error) Outcome {
	return Outcome{Redeliver: true, Err: &core.Error{Status: http.StatusServiceUnavailable, RetryAfter: core.DefaultRetryAfterUnavailable,
		Message: "not run: the batch ended, or an earlier item of its group failed, before it started", Err: cause}}
}

// groupsOf lists item indexes by Group, in order; an item without a
// group is a group of its own.
func groupsOf(items []Item) [][]int {
	var groups [][]int
	byName := map[string]int{}
	for i, it := range items {
		if it.Group == "" {
			groups = append(groups, []int{i})
			continue
		}
		g, seen := byName[it.Group]
		if !seen {
			g = len(groups)
			byName[it.Group] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// ItemRequestID numbers the items of one delivery: its request id, a dash,
// the item's index.
func ItemRequestID(requestID string, i int) string { return requestID + "-" + strconv.Itoa(i) }
