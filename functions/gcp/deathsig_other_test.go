//go:build !linux

package gcp_test

import "os/exec"

// setParentDeathSignal has no portable equivalent outside Linux; t.Cleanup
// still stops the function when the test ends normally.
func setParentDeathSignal(*exec.Cmd) {}
