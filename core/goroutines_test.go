package core

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// checkPanicError asserts e is the answer to a recovered panic: a
// retryable 500 "internal error" whose cause, for the log, holds the value
// and the stack.
func checkPanicError(t *testing.T, err error, value string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *Error", err, err)
	}
	if e.Status != http.StatusInternalServerError || e.Message != "internal error" || !e.Retryable() {
		t.Errorf("answer %d %q (retryable %v), want a retryable 500 internal error", e.Status, e.Message, e.Retryable())
	}
	if strings.Contains(e.Error(), value) {
		t.Errorf("the answer %q shows the panic", e.Error())
	}
	if cause := e.Err.Error(); !strings.Contains(cause, value) || !strings.Contains(cause, "goroutines_test.go") {
		t.Errorf("cause %q: want the panic value and its stack", cause)
	}
}

func TestSafely(t *testing.T) {
	plain := errors.New("plain")
	if err := Safely(func() error { return plain }); err != plain {
		t.Errorf("Safely changed fn's own error: %v", err)
	}
	checkPanicError(t, Safely(func() error { panic("safely bug") }), "safely bug")
}

func TestGroupReturnsAPanicAndCancelsTheRest(t *testing.T) {
	g, ctx := NewGroup(context.Background())
	g.Go(func() error { panic("group bug") })
	g.Go(func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("the group's context was not cancelled")
		}
	})
	checkPanicError(t, g.Wait(), "group bug")
}

func TestGoHandsAPanicToOnPanic(t *testing.T) {
	got := make(chan error, 1)
	Go(func() { panic("go bug") }, func(e error) { got <- e })
	select {
	case e := <-got:
		checkPanicError(t, e, "go bug")
	case <-time.After(10 * time.Second):
		t.Fatal("onPanic was not called")
	}
}

// A panicking item fails alone: it is settled and gives its slot back, so
// the next item runs and the shared call still goes out for the others.
func TestBatchItemPanicFailsOnlyThatItem(t *testing.T) {
	b := NewBatch(1)
	b.Add(3)
	call := newSharedCall()
	var panics atomic.Int32
	var answered atomic.Int32
	for i := range 3 {
		err := b.Go(context.Background(), func(ctx context.Context) {
			if i == 1 {
				panic("item bug")
			}
			if call.join(ctx, i) {
				answered.Add(1)
			}
		}, func(e error) {
			checkPanicError(t, e, "item bug")
			panics.Add(1)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitOrFail(t, b)
	if panics.Load() != 1 || answered.Load() != 2 || call.flushes.Load() != 1 {
		t.Errorf("panics %d, answered %d, flushes %d: want 1, 2, 1", panics.Load(), answered.Load(), call.flushes.Load())
	}
}

// parallel's goroutines carry a panic over to the caller's goroutine,
// where the request's own recovery handles it, after every part returned.
func TestParallelRaisesAPanicInTheCaller(t *testing.T) {
	var finished atomic.Int32
	err := Safely(func() error {
		parallel(context.Background(), 3, func(i int) {
			if i == 0 {
				panic("part bug")
			}
			time.Sleep(10 * time.Millisecond)
			finished.Add(1)
		})
		return nil
	})
	if err == nil || !strings.Contains(err.(*Error).Err.Error(), "part bug") {
		t.Fatalf("error %v: want the part's panic", err)
	}
	if finished.Load() != 2 {
		t.Errorf("%d other parts finished before the panic was raised, want 2", finished.Load())
	}
}
