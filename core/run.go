package core

import (
	"context"
	"net/http"
	"strconv"
	"sync"
)

// BatchItem is one request an event source hands to RunBatch: decoded,
// or the reason it could not be.
type BatchItem struct {
	Request Request
	// Err is why the source could not decode the item; it is answered as
	// is and never run.
	Err  *Error
	Meta Meta
	// Plan, when set, makes the item a dry run that records its writes
	// there instead of sending them.
	Plan *Plan
	// Group orders items: those of one group run one after another, and
	// once one of them is to be delivered again, so is the rest of the
	// group (an SQS FIFO message group). Empty: the item runs on its own.
	Group string
}

// BatchOutcome is what became of one item.
type BatchOutcome struct {
	Result Result
	Err    *Error
	// Redeliver says the source should deliver the item again: it failed
	// in a way a retry may fix, or it never ran. A request that can never
	// succeed as sent is not redelivered, so a poison message cannot loop.
	Redeliver bool
}

// RunBatch runs items as one event batch (see Batch): at most concurrency
// at a time, each request's outcome its own, a panic failing only its item.
// Every source (an HTTP bulk body, an SQS batch, the rows of an import)
// runs its requests here, so they behave alike. onDone, when set, hears
// each outcome as it comes (a progress bar), from the item's goroutine.
func (e *Engine) RunBatch(ctx context.Context, items []BatchItem, concurrency int, onDone func(i int, o BatchOutcome)) []BatchOutcome {
	if onDone == nil {
		onDone = func(int, BatchOutcome) {}
	}
	out := make([]BatchOutcome, len(items))
	if len(items) == 1 {
		// Alone, an item has no one to share a call with inside a batch,
		// but may share one with requests arriving beside it (a target's
		// micro-batch window), which only works outside a batch.
		out[0] = e.runItem(ctx, items[0])
		onDone(0, out[0])
		return out
	}
	groups := batchGroups(items)
	batch := NewBatch(concurrency)
	batch.Add(len(groups))
	var wg sync.WaitGroup
	for _, group := range groups {
		wg.Go(func() {
			for n, i := range group {
				ran := false
				err := batch.Do(ctx, func(ctx context.Context) {
					ran = true
					out[i] = e.runItem(ctx, items[i])
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

func (e *Engine) runItem(ctx context.Context, item BatchItem) (o BatchOutcome) {
	if item.Err != nil {
		return BatchOutcome{Err: item.Err}
	}
	if item.Plan != nil {
		ctx = WithPlan(ctx, item.Plan)
	}
	if p := recovered(func() {
		res, err := e.Handle(ctx, item.Request, item.Meta)
		o = BatchOutcome{Result: res, Err: err, Redeliver: err != nil && err.Retryable()}
	}); p != nil {
		e.logger().Error("panic while running a batch item; it fails alone", "request_id", item.Meta.RequestID, "error", p.Err.Error())
		return BatchOutcome{Err: p, Redeliver: true}
	}
	return o
}

func notRun(item BatchItem, cause error) BatchOutcome {
	return BatchOutcome{Redeliver: true, Err: &Error{Status: http.StatusServiceUnavailable, RetryAfter: DefaultRetryAfterUnavailable,
		Message: "not run: the batch ended, or an earlier item of its group failed, before it started", Err: cause}}
}

// batchGroups lists item indexes by Group, in order; an item without a
// group is a group of its own.
func batchGroups(items []BatchItem) [][]int {
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
