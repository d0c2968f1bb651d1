package core

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"

	"golang.org/x/sync/errgroup"
)

// A panic ends the whole process, with every request in it, unless
// recovered in the goroutine it happened in; a recover in the request's
// own goroutine (runTarget's, net/http's) misses one in a goroutine the
// request started. Targets and batches therefore start goroutines only
// through Go, Group or Batch.Go, and run singleflight's DoChan functions
// (which run in goroutines of their own) under Safely. Each turns a panic
// into the request's failure: 500 "internal error", retryable (the bug may
// be a moment's), with the panic and its stack in Err, for the log only.

// recovered runs fn and returns the panic it raised, as the answer it
// deserves, or nil.
func recovered(fn func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &Error{Status: http.StatusInternalServerError, Message: "internal error",
				Err: fmt.Errorf("panic: %v\n%s", v, debug.Stack())}
		}
	}()
	fn()
	return nil
}

// Safely runs fn and returns its error, or the panic it raised as an *Error.
func Safely(fn func() error) error {
	var err error
	if panicked := recovered(func() { err = fn() }); panicked != nil {
		return panicked
	}
	return err
}

// Go runs fn in a new goroutine. A panic in fn is handed to onPanic, in
// that goroutine, instead of ending the process.
func Go(fn func(), onPanic func(error)) {
	go func() {
		if e := recovered(fn); e != nil {
			onPanic(e)
		}
	}()
}

// Group is errgroup.Group whose goroutines return a panic as an *Error:
// the first error or panic cancels the group's context and is what Wait
// returns.
type Group struct{ g *errgroup.Group }

// NewGroup returns a group and the context its functions should use.
func NewGroup(ctx context.Context) (*Group, context.Context) {
	g, ctx := errgroup.WithContext(ctx)
	return &Group{g: g}, ctx
}

// Go runs fn in a new goroutine of the group.
func (g *Group) Go(fn func() error) { g.g.Go(func() error { return Safely(fn) }) }

// Wait waits for every function and returns the first error or panic.
func (g *Group) Wait() error { return g.g.Wait() }
