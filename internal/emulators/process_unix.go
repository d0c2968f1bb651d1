//go:build unix

package emulators

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// watchdog is run by /bin/sh as the leader of a new process group, with the
// private directory as $1 and the emulator command after it. It keeps the
// read end of a pipe from the test binary on fd 3 in a background subshell
// and execs the emulator. When the pipe closes (stop closes it, and so does
// the kernel when the test binary dies in any way), the subshell removes the
// directory and sends SIGTERM to the whole group: gcloud, the Java server it
// spawned, and itself.
const watchdog = `dir=$1; shift
exec 3<&0 </dev/null
(read -r _ <&3; rm -rf "$dir"; kill -TERM 0) &
exec 3<&-
exec "$@"`

const (
	termGrace = 30 * time.Second
	killGrace = 10 * time.Second
)

type process struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.Closer
	exited chan struct{}
	out    *tail
	dir    string
}

// launch starts bin under the watchdog. The private directory becomes the
// working directory and CLOUDSDK_CONFIG, so gcloud's logs and the Pub/Sub
// emulator's data stay out of the developer's ~/.config/gcloud and apart
// from concurrent runs.
func launch(name, bin string, args ...string) (*process, error) {
	dir, err := os.MkdirTemp("", "onboard-emulator-")
	if err != nil {
		return nil, fmt.Errorf("emulators: %w", err)
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdog, "emulator-watchdog", dir, bin}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CLOUDSDK_CONFIG="+dir,
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=1",
	)
	out := &tail{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("emulators: starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, stdin: stdin, exited: make(chan struct{}), out: out, dir: dir}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop returns once no process of the group is left, escalating to SIGKILL
// if SIGTERM is not enough. The directory is removed again in case an
// emulator wrote to it while shutting down.
func (p *process) stop() error {
	defer os.RemoveAll(p.dir)
	_ = p.stdin.Close()
	pgid := p.cmd.Process.Pid
	if !groupGone(pgid, termGrace) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if !groupGone(pgid, killGrace) {
			return fmt.Errorf("%s: process group %d survived SIGKILL", p.name, pgid)
		}
	}
	<-p.exited
	return nil
}

func groupGone(pgid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
