//go:build !linux

package testproc

import "os/exec"

// Only Linux can tie a child's life to its parent's.
func setParentDeathSignal(*exec.Cmd) {}
