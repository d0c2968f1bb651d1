package core

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sharedCall is what a batching target does with core.Batch: items join a
// call that goes out once every item has joined or finished.
type sharedCall struct {
	mu         sync.Mutex
	joined     []int
	registered bool // its flush waits for the batch to settle
	done       chan struct{}
	flushes    atomic.Int32
}

func newSharedCall() *sharedCall { return &sharedCall{done: make(chan struct{})} }

func (c *sharedCall) flush() {
	if c.flushes.Add(1) == 1 {
		close(c.done)
	}
}

// join is an item joining the call and waiting for it.
func (c *sharedCall) join(ctx context.Context, i int) bool {
	c.mu.Lock()
	c.joined = append(c.joined, i)
	if !c.registered {
		c.registered = true
		if !BatchFrom(ctx).OnSettled(c.flush) {
			c.mu.Unlock()
			c.flush()
			return true
		}
	}
	c.mu.Unlock()
	Joined(ctx)
	_, ok := Await(ctx, c.done)
	return ok
}

// With one slot, an item waiting for the shared call must give its slot
// back, or the next item could never start and join: all of them join
// one call, and it goes out exactly once.
func TestBatchWaitingItemsGiveTheirSlotBack(t *testing.T) {
	for _, concurrency := range []int{1, 3} {
		b := NewBatch(concurrency)
		const items = 7
		b.Add(items)
		call := newSharedCall()
		var ok atomic.Int32
		dispatched := make(chan struct{})
		go func() {
			defer close(dispatched)
			for i := range items {
				_ = b.Go(context.Background(), func(ctx context.Context) {
					if call.join(ctx, i) {
						ok.Add(1)
					}
				}, failOnPanic(t))
			}
		}()
		select {
		case <-dispatched:
		case <-time.After(10 * time.Second):
			t.Fatalf("concurrency %d: items could not start: the waiting ones kept their slots", concurrency)
		}
		waitOrFail(t, b)
		if n := call.flushes.Load(); n != 1 {
			t.Errorf("concurrency %d: the call went out %d times, want 1", concurrency, n)
		}
		if len(call.joined) != items || ok.Load() != items {
			t.Errorf("concurrency %d: %d joined, %d answered, want %d", concurrency, len(call.joined), ok.Load(), items)
		}
	}
}

// Items that never join (another profile's) only settle when they finish;
// the call waits for them, then goes out once.
func TestBatchSettlesWhenEveryItemJoinedOrFinished(t *testing.T) {
	b := NewBatch(2)
	b.Add(4)
	call := newSharedCall()
	release := make(chan struct{})
	var flushedEarly atomic.Bool
	for i := range 4 {
		_ = b.Go(context.Background(), func(ctx context.Context) {
			if i%2 == 0 {
				call.join(ctx, i)
				return
			}
			<-release // a slow item that does not join
			if call.flushes.Load() > 0 {
				flushedEarly.Store(true)
			}
		}, failOnPanic(t))
	}
	time.Sleep(20 * time.Millisecond) // let the joiners wait; the call must not go out meanwhile
	if call.flushes.Load() != 0 {
		t.Fatal("the call went out while items that had not finished could still join")
	}
	close(release)
	waitOrFail(t, b)
	if flushedEarly.Load() || call.flushes.Load() != 1 {
		t.Errorf("flushes = %d (early: %v), want one after the non-joining items finished", call.flushes.Load(), flushedEarly.Load())
	}
}

// At most concurrency items work at once, however many wait.
func TestBatchBoundsConcurrency(t *testing.T) {
	b := NewBatch(3)
	b.Add(30)
	var now, peak atomic.Int32
	for range 30 {
		_ = b.Go(context.Background(), func(context.Context) {
			n := now.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			now.Add(-1)
		}, failOnPanic(t))
	}
	waitOrFail(t, b)
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}
}

// An item whose other work (another target) still runs keeps its slot
// while one of its parts waits: the bound holds for the work that runs.
func TestBatchItemKeepsItsSlotWhileAnyPartWorks(t *testing.T) {
	b := NewBatch(1)
	b.Add(2)
	call := newSharedCall()
	partWorking := make(chan struct{})
	finishPart := make(chan struct{})
	var secondStarted atomic.Bool
	_ = b.Go(context.Background(), func(ctx context.Context) {
		parallel(ctx, 2, func(i int) {
			if i == 0 {
				call.join(ctx, 0)
				return
			}
			close(partWorking)
			<-finishPart
		})
	}, failOnPanic(t))
	<-partWorking
	go func() {
		_ = b.Go(context.Background(), func(ctx context.Context) {
			secondStarted.Store(true)
			call.join(ctx, 1)
		}, failOnPanic(t))
	}()
	time.Sleep(20 * time.Millisecond)
	if secondStarted.Load() {
		t.Fatal("a second item started while the first still had a part working, with one slot")
	}
	close(finishPart)
	for !secondStarted.Load() {
		time.Sleep(time.Millisecond)
	}
	waitOrFail(t, b)
	if call.flushes.Load() != 1 || len(call.joined) != 2 {
		t.Errorf("flushes %d, joined %v: want one call for both", call.flushes.Load(), call.joined)
	}
}

// An item announced by the one before it (a FIFO group's next record)
// keeps the batch open for itself without making the batch wait on it
// before its predecessor ran.
func TestBatchItemAnnouncedByItsPredecessor(t *testing.T) {
	b := NewBatch(2)
	b.Add(2) // two groups: [a1, a2] and [b1]
	call := newSharedCall()
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = b.Do(context.Background(), func(context.Context) { b.Add(1) }) // a1 does not join
		_ = b.Do(context.Background(), func(ctx context.Context) { call.join(ctx, 2) })
	})
	wg.Go(func() {
		_ = b.Do(context.Background(), func(ctx context.Context) { call.join(ctx, 1) })
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch never settled")
	}
	if call.flushes.Load() != 1 || len(call.joined) != 2 {
		t.Errorf("flushes %d, joined %v: want b1 and a2 in one call", call.flushes.Load(), call.joined)
	}
}

// A batch whose context ends before an item gets a slot does not run it,
// and says so; a batch already settled refuses new OnSettled callbacks.
func TestBatchEndsAndSettled(t *testing.T) {
	b := NewBatch(1)
	b.Add(2)
	hold := make(chan struct{})
	_ = b.Go(context.Background(), func(context.Context) { <-hold }, failOnPanic(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := b.Do(ctx, func(context.Context) { ran = true }); err == nil || ran {
		t.Fatalf("Do on an ended context: err %v, ran %v", err, ran)
	}
	close(hold)
	b.Wait()
	if b.OnSettled(func() {}) {
		t.Error("OnSettled accepted a callback on a settled batch")
	}
}

func waitOrFail(t *testing.T, b *Batch) {
	t.Helper()
	done := make(chan struct{})
	go func() { b.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch's items did not finish: deadlocked")
	}
}

// failOnPanic is Batch.Go's onPanic for items that must not panic.
func failOnPanic(t *testing.T) func(error) {
	return func(e error) { t.Errorf("an item panicked: %v", errors.Unwrap(e)) }
}
