package core

import (
	"context"
	"errors"
	"sync"
)

// Batch is one event batch: the items of a bulk HTTP body, the records of
// an SQS batch, the rows of an import. Its items run concurrently, at most
// a fixed number at a time, and it knows when every item has either joined
// a shared call or finished ("settled"). A target that serves several
// people in one call (AAC's batch invite) waits for that moment, so the
// call goes out once for the whole batch rather than once per wave of
// items that happened to run together.
//
// An item waiting for a shared call gives its slot back (see Await):
// otherwise the items that hold every slot would wait for items that
// cannot start, and the batch would never settle.
type Batch struct {
	slots chan struct{}

	mu        sync.Mutex
	unsettled int
	onSettled []func()
	wg        sync.WaitGroup
}

// NewBatch returns a batch that runs at most concurrency items at once.
func NewBatch(concurrency int) *Batch {
	return &Batch{slots: make(chan struct{}, max(concurrency, 1))}
}

// Add announces n more items. Announce every item before the first one
// runs, or the batch may settle without the late ones. An item that can
// start only after another finished (the next record of a FIFO message
// group) is announced by that one before it returns: announcing it earlier
// would make the batch wait for an item that waits for the batch.
func (b *Batch) Add(n int) {
	b.mu.Lock()
	b.unsettled += n
	b.mu.Unlock()
}

// Do runs fn as one announced item, in this goroutine, once a slot is
// free. When ctx ends first, fn does not run, the item is settled and
// ctx's error is returned.
func (b *Batch) Do(ctx context.Context, fn func(context.Context)) error {
	it, err := b.start(ctx)
	if err != nil {
		return err
	}
	it.run(ctx, fn)
	return nil
}

// Go is Do in a new goroutine: it returns once a slot is free and fn has
// been started, so items start in the order Go is called. Wait waits for
// them. A panic in fn is handed to onPanic, in fn's goroutine, as the
// item's failure (see Go): the item is settled and its slot given back, and
// the other items and the process go on.
func (b *Batch) Go(ctx context.Context, fn func(context.Context), onPanic func(error)) error {
	it, err := b.start(ctx)
	if err != nil {
		return err
	}
	b.wg.Go(func() {
		if e := recovered(func() { it.run(ctx, fn) }); e != nil {
			onPanic(e)
		}
	})
	return nil
}

// Wait waits for every item started with Go.
func (b *Batch) Wait() { b.wg.Wait() }

// OnSettled registers f to run once every announced item has joined a
// shared call or finished. It reports false, and does not register f, when
// that is the case already: an item joining now (a retry within its run)
// has nobody left to share a call with.
func (b *Batch) OnSettled(f func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unsettled <= 0 {
		return false
	}
	b.onSettled = append(b.onSettled, f)
	return true
}

func (b *Batch) start(ctx context.Context) (*batchItem, error) {
	it := &batchItem{batch: b}
	select {
	case b.slots <- struct{}{}:
		it.hasSlot, it.running = true, 1
		return it, nil
	case <-ctx.Done():
		it.settle()
		return nil, context.Cause(ctx)
	}
}

func (b *Batch) settleOne() {
	b.mu.Lock()
	b.unsettled--
	var run []func()
	if b.unsettled == 0 {
		run, b.onSettled = b.onSettled, nil
	}
	b.mu.Unlock()
	for _, f := range run {
		f()
	}
}

// batchItem is one item's share of its batch: whether it settled, and
// whether it holds a slot. running counts the item's goroutines that are
// doing work; parked those waiting in Await. The slot is given back when
// nothing runs but something waits, and taken again on waking.
type batchItem struct {
	batch *Batch

	mu      sync.Mutex
	settled bool
	hasSlot bool
	running int
	parked  int
}

type batchItemKey struct{}

// BatchFrom returns the batch the request is an item of, or nil.
func BatchFrom(ctx context.Context) *Batch {
	if it := itemFrom(ctx); it != nil {
		return it.batch
	}
	return nil
}

func itemFrom(ctx context.Context) *batchItem {
	it, _ := ctx.Value(batchItemKey{}).(*batchItem)
	return it
}

func (it *batchItem) run(ctx context.Context, fn func(context.Context)) {
	defer func() {
		it.settle()
		it.mu.Lock()
		if it.hasSlot {
			it.hasSlot = false
			<-it.batch.slots
		}
		it.mu.Unlock()
	}()
	fn(context.WithValue(ctx, batchItemKey{}, it))
}

// Joined tells the request's batch, if any, that the request has joined
// a shared call; call it after the call can no longer leave it out, as it
// may settle the batch and so start the call.
func Joined(ctx context.Context) {
	if it := itemFrom(ctx); it != nil {
		it.settle()
	}
}

func (it *batchItem) settle() {
	it.mu.Lock()
	already := it.settled
	it.settled = true
	it.mu.Unlock()
	if !already {
		it.batch.settleOne()
	}
}

// Await waits for a value from ch, or for ctx to end (ok false). Inside a
// batch the item's slot is given back while it waits, if none of its other
// goroutines is working, and taken again before Await returns.
func Await[T any](ctx context.Context, ch <-chan T) (v T, ok bool) {
	it := itemFrom(ctx)
	it.stop(true)
	defer it.unpark(ctx)
	select {
	case v = <-ch:
		return v, true
	case <-ctx.Done():
		return v, false
	}
}

// parallel runs fn(0) … fn(n-1) concurrently as parts of the request's
// batch item, so that the item's slot is given back only when all of them
// are waiting in Await. A panic in one of them is raised again in the
// caller's goroutine once all have returned, where the request's own
// recovery (Batch.Go's, the server's) makes it this request's failure
// rather than the process's end.
func parallel(ctx context.Context, n int, fn func(int)) {
	if n <= 0 {
		return
	}
	it := itemFrom(ctx)
	it.fork(n)
	var wg sync.WaitGroup
	panics := make([]error, n)
	for i := range n {
		wg.Go(func() {
			defer it.stop(false)
			panics[i] = recovered(func() { fn(i) })
		})
	}
	wg.Wait()
	it.unblock(ctx)
	for _, e := range panics {
		if e != nil {
			panic(errors.Unwrap(e))
		}
	}
}

// fork: the calling goroutine stops working (it waits for n new ones).
func (it *batchItem) fork(n int) {
	if it == nil {
		return
	}
	it.mu.Lock()
	it.running += n - 1
	it.mu.Unlock()
}

// stop: one goroutine of the item stops working, done or (waiting) parked
// in Await.
func (it *batchItem) stop(waiting bool) {
	if it == nil {
		return
	}
	it.mu.Lock()
	it.running--
	if waiting {
		it.parked++
	}
	it.releaseIfIdle()
	it.mu.Unlock()
}

func (it *batchItem) unpark(ctx context.Context) {
	if it == nil {
		return
	}
	it.mu.Lock()
	it.parked--
	it.mu.Unlock()
	it.unblock(ctx)
}

// unblock: a goroutine of the item works again, so the item needs its
// slot. The lock is held while waiting for one so that siblings waking at
// the same moment take one slot, not one each; when ctx ends first, the
// item goes on without one (it is finishing up).
func (it *batchItem) unblock(ctx context.Context) {
	if it == nil {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	it.running++
	if it.hasSlot {
		return
	}
	select {
	case it.batch.slots <- struct{}{}:
		it.hasSlot = true
	case <-ctx.Done():
	}
}

// releaseIfIdle gives the slot back when no goroutine of the item works
// and at least one waits in Await (when none waits, the item is about to
// resume and would only take a slot again). Called with mu held.
func (it *batchItem) releaseIfIdle() {
	if it.running == 0 && it.parked > 0 && it.hasSlot {
		it.hasSlot = false
		<-it.batch.slots
	}
}
