//go:build !unix

package emulators

import "errors"

// The emulators need process groups to be cleaned up reliably; on other
// systems they report an error instead of leaking processes.
type process struct {
	out    *tail
	exited chan struct{}
}

func launch(name, _ string, _ ...string) (*process, error) {
	return nil, errors.New("emulators: starting " + name + " is only supported on Unix")
}

func (p *process) stop() error { return nil }
