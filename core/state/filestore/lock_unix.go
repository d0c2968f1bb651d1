//go:build unix

package filestore

import (
	"context"
	"errors"
	"os"
	"syscall"
)

// lockFile takes an flock on path (shared for readers, exclusive for
// writers) and returns its release. It waits in the kernel rather than
// polling: a waiting process is then woken as soon as the holder unlocks,
// instead of losing every race against a busy process whose next
// goroutine is already queued behind the in-process mutex.
func lockFile(ctx context.Context, path string, exclusive bool) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	release := func() { _ = f.Close() } // closing the only descriptor unlocks
	if err := flock(f, how|syscall.LOCK_NB); err == nil {
		return release, nil
	} else if !errors.Is(err, syscall.EWOULDBLOCK) {
		release()
		return nil, err
	}
	got := make(chan error, 1)
	go func() { got <- flock(f, how) }()
	select {
	case err := <-got:
		if err != nil {
			release()
			return nil, err
		}
		return release, nil
	case <-ctx.Done():
		// A blocked flock cannot be interrupted; give the lock back as soon
		// as it is granted.
		go func() {
			<-got
			release()
		}()
		return nil, ctx.Err()
	}
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
