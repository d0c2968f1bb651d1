// Package emulators starts local stand-ins for cloud services in tests:
// moto_server (AWS: Secrets Manager, SQS, DynamoDB) and the gcloud Pub/Sub and
// Firestore emulators.
//
// Each emulator is started at most once per test binary, on the first call,
// on 127.0.0.1 and a free port, and is shared by every test of the binary.
// Nothing global is set (no environment variables): callers pass the
// returned address to their clients. Because the state is shared, tests must
// use unique resource names (derive them from t.Name()).
//
// Clean-up: a package that uses an emulator must stop it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }
//
// Run stops every emulator the binary started and waits until its whole
// process group is gone, because gcloud starts a Java server that outlives
// a killed gcloud. tb.Cleanup of the first user cannot do this: it would stop
// the emulator while later tests still need it. As a backstop for a binary
// that dies without returning from m.Run (a panic, -timeout, Ctrl-C,
// SIGKILL), each emulator runs under a tiny shell watchdog that removes its
// temporary directory and kills the group as soon as the test binary's end of
// a pipe closes.
//
// When the emulator's executable is missing, the test is skipped, except
// with CI=true, where it fails: CI must never silently skip these tests.
package emulators

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

const (
	// startTimeout is generous because the Java emulators take several
	// seconds to start on a shared two-core machine.
	startTimeout = 2 * time.Minute
	// startAttempts covers the race between picking a free port and the
	// emulator binding it.
	startAttempts = 3
)

var (
	mainRan atomic.Bool

	runningMu sync.Mutex
	running   []*process
)

// Run runs the tests and then stops every emulator they started. Use it as
// os.Exit(emulators.Run(m)) in TestMain. A failure to stop an emulator turns
// a passing run into a failing one, so leaks are noticed.
func Run(m *testing.M) int {
	mainRan.Store(true)
	code := m.Run()

	runningMu.Lock()
	procs := running
	running = nil
	runningMu.Unlock()
	for _, p := range procs {
		if err := p.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "emulators: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Moto returns the endpoint URL (http://127.0.0.1:PORT) of a moto_server
// shared by the test binary. Use it with AWSConfig.
func Moto(tb testing.TB) (endpoint string) {
	tb.Helper()
	addr := moto.get(tb)
	if addr == "" {
		return ""
	}
	return "http://" + addr
}

// AWSConfig returns a config for SDK clients talking to the moto endpoint:
// region us-east-1 and obviously fake static credentials, built without
// LoadDefaultConfig so the developer's AWS profile and environment cannot
// leak in.
func AWSConfig(tb testing.TB, endpoint string) aws.Config {
	tb.Helper()
	if endpoint == "" {
		tb.Fatal("emulators.AWSConfig: empty endpoint")
	}
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("onboard-test-key-id", "onboard-test-secret", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// PubSub returns the host:port of a gcloud Pub/Sub emulator shared by the
// test binary; set PUBSUB_EMULATOR_HOST in a child process or pass it as the
// client endpoint.
func PubSub(tb testing.TB) (hostPort string) {
	tb.Helper()
	return pubsub.get(tb)
}

// Firestore returns the host:port of a gcloud Firestore emulator (native
// mode) shared by the test binary; the FIRESTORE_EMULATOR_HOST value.
func Firestore(tb testing.TB) (hostPort string) {
	tb.Helper()
	return firestore.get(tb)
}

// spec describes how to run one emulator.
type spec struct {
	name    string
	bin     string
	install string
	// component, when set, is the directory under the Cloud SDK's platform/
	// that gcloud needs for this emulator; an apt-installed gcloud may lack it.
	component string
	args      func(hostPort string) []string
	readyPath string // answers 200 once the emulator serves requests
}

type emulator struct {
	spec
	once sync.Once
	addr string
	err  error
}

var (
	moto = &emulator{spec: spec{
		name:      "moto_server",
		bin:       "moto_server",
		install:   "pip install 'moto[server]'",
		args:      func(hp string) []string { h, p, _ := net.SplitHostPort(hp); return []string{"-H", h, "-p", p} },
		readyPath: "/moto-api/",
	}}
	pubsub = &emulator{spec: spec{
		name:      "Pub/Sub emulator",
		bin:       "gcloud",
		install:   "the Google Cloud CLI and its pubsub-emulator component (apt: google-cloud-cli-pubsub-emulator)",
		component: "pubsub-emulator",
		args:      func(hp string) []string { return []string{"beta", "emulators", "pubsub", "start", "--host-port=" + hp} },
		readyPath: "/",
	}}
	firestore = &emulator{spec: spec{
		name:      "Firestore emulator",
		bin:       "gcloud",
		install:   "the Google Cloud CLI and its cloud-firestore-emulator component (apt: google-cloud-cli-firestore-emulator)",
		component: "cloud-firestore-emulator",
		args:      func(hp string) []string { return []string{"emulators", "firestore", "start", "--host-port=" + hp} },
		readyPath: "/",
	}}
)

// get returns the emulator's host:port, starting it on first use. It returns
// "" only after tb.Skip or tb.Fatal, which a fake TB may not stop at.
func (e *emulator) get(tb testing.TB) string {
	tb.Helper()
	if !mainRan.Load() {
		tb.Fatalf("emulators: %s needs TestMain to stop it: add\n\tfunc TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }", e.name)
		return ""
	}
	bin, err := e.locate()
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatalf("%s not found: install %s (%v)", e.bin, e.install, err)
			return ""
		}
		tb.Skipf("%s not found: install %s. Skipped only outside CI; with CI=true this test fails. (%v)", e.bin, e.install, err)
		return ""
	}
	e.once.Do(func() { e.addr, e.err = e.start(bin) })
	if e.err != nil {
		tb.Fatalf("emulators: starting %s: %v", e.name, e.err)
		return ""
	}
	return e.addr
}

// locate finds the executable and, for gcloud, the emulator component.
func (e *emulator) locate() (string, error) {
	bin, err := exec.LookPath(e.bin)
	if err != nil || e.component == "" {
		return bin, err
	}
	resolved, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return "", err
	}
	// The SDK layout is <root>/bin/gcloud with <root>/lib/gcloud.py. If the
	// layout is unknown, let gcloud itself report what is missing.
	root := filepath.Dir(filepath.Dir(resolved))
	if _, err := os.Stat(filepath.Join(root, "lib", "gcloud.py")); err != nil {
		return bin, nil
	}
	if _, err := os.Stat(filepath.Join(root, "platform", e.component)); err != nil {
		return "", fmt.Errorf("gcloud component %s is not installed", e.component)
	}
	return bin, nil
}

var errExited = errors.New("exited before answering")

func (e *emulator) start(bin string) (string, error) {
	var lastErr error
	for range startAttempts {
		hostPort, err := freeHostPort()
		if err != nil {
			return "", err
		}
		p, err := launch(e.name, bin, e.args(hostPort)...)
		if err != nil {
			return "", err
		}
		err = waitReady(p, "http://"+hostPort+e.readyPath)
		if err == nil {
			runningMu.Lock()
			running = append(running, p)
			runningMu.Unlock()
			return hostPort, nil
		}
		if stopErr := p.stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		lastErr = fmt.Errorf("%w\n--- output ---\n%s", err, p.out.String())
		if !errors.Is(err, errExited) {
			break
		}
	}
	return "", lastErr
}

func freeHostPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("emulators: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(p *process, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("no answer from %s within %v", url, startTimeout)
		case <-tick.C:
		}
	}
}

// tail keeps the last bytes of an emulator's output for failure messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
