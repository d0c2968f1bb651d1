// Package testproc runs a program for the length of one test: killed when
// the test ends, or when the test binary dies without running its
// clean-ups (Linux), with its output in the log of a failed test.
package testproc

import (
	"fmt"
	"os/exec"
	"testing"
)

// Start starts cmd, which writes its output to output, and stops it when
// the test ends; name says what it is in the failure log. The returned
// channel closes when the program exits, for tests to notice a crash.
func Start(tb testing.TB, cmd *exec.Cmd, name string, output fmt.Stringer) <-chan struct{} {
	tb.Helper()
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if tb.Failed() {
			tb.Logf("%s output:\n%s", name, output)
		}
	})
	return exited
}
