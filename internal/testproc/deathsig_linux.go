package testproc

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal kills the program if the test binary dies without
// running its clean-ups (a panic, -timeout), so no server outlives the run.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
