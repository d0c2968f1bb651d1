package gcp_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	// The buildpack's generated main imports funcframework, which nothing
	// in the module does: this import keeps it, and what it needs, in
	// go.mod and go.sum through go mod tidy, so the build below can run.
	_ "github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/onboard-dev/onboard/internal/testproc"
)

// The function binary is built once per test binary by scripts/build-gcp.sh,
// exactly as `make build` does, and run as Cloud Functions runs it.
var built struct {
	once sync.Once
	dir  string
	path string
	out  string
	err  error
}

func builtFunction(tb testing.TB) string {
	tb.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "onboard-gcp-fn-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "onboard-gcp")
		built.out, built.err = buildLikeBuildpack(repoPath(tb, "."), built.path)
	})
	if built.err != nil {
		tb.Fatalf("scripts/build-gcp.sh: %v\n%s", built.err, built.out)
	}
	return built.path
}

// buildLikeBuildpack runs the scripts/build-gcp.sh of the module at root,
// which builds that module's root package into out.
func buildLikeBuildpack(root, out string) (string, error) {
	output, err := exec.Command("bash", filepath.Join(root, "scripts", "build-gcp.sh"), out).CombinedOutput()
	return string(output), err
}

func removeBuiltFunction() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

func TestBuildpackStyleBuild(t *testing.T) {
	bin := builtFunction(t)
	if !strings.Contains(built.out, "build-gcp: ok") {
		t.Errorf("build output %q", built.out)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("no executable at %s: %v", bin, err)
	}
}

// TestBuildpackStyleBuildRefuses runs the script on small modules shaped the
// ways that make the real buildpack fail or generate a main that cannot build.
func TestBuildpackStyleBuildRefuses(t *testing.T) {
	cases := []struct {
		name, module, source, want string
	}{
		{"package main at the root", "example.com/fn", "package main\n\nfunc main() {}\n", "must not be package main"},
		{"no dot in the module path", "fn", "package fn\n", "needs a dot in its first element"},
		{"functions package not imported", "example.com/fn", "package fn\n\nimport _ \"net/http\"\n", "must import github.com/GoogleCloudPlatform/functions-framework-go/functions"},
	}
	script := readRepoFile(t, "scripts/build-gcp.sh")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "go.mod"), "module "+tc.module+"\n\ngo 1.26\n")
			writeFile(t, filepath.Join(dir, "fn.go"), tc.source)
			writeFile(t, filepath.Join(dir, "scripts", "build-gcp.sh"), string(script))
			cmd := exec.Command("bash", filepath.Join(dir, "scripts", "build-gcp.sh"))
			cmd.Env = append(os.Environ(), "GOPROXY=off") // these checks must not need the network
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("want a failure saying %q, got %v:\n%s", tc.want, err, out)
			}
		})
	}
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// runningFunction is a built function serving one entry point on loopback.
type runningFunction struct {
	url    string
	logs   *logBuffer
	exited <-chan struct{}
}

// startFunction runs the built onboard function against tg's fakes and
// waits until the framework listens. overrides change the environment; an
// empty value removes the variable.
func startFunction(t *testing.T, tg targets, target string, overrides map[string]string) *runningFunction {
	t.Helper()
	vars := tg.env(t)
	maps.Copy(vars, overrides)
	fn := launchFunction(t, builtFunction(t), target, vars)
	// Any answer means the framework is listening; the instance itself
	// may still be starting, and requests wait for it.
	fn.firstAnswer(t, func() (*http.Response, error) { return http.Get(fn.url + "/") }).Body.Close()
	return fn
}

// launchFunction runs bin the way Cloud Functions does: FUNCTION_TARGET
// selects the entry point, served on every path of PORT, with vars (those
// with a value) in its environment. It does not wait for the function to
// listen, so a caller can time its start.
func launchFunction(tb testing.TB, bin, target string, vars map[string]string) *runningFunction {
	tb.Helper()
	port := freePort(tb)
	dir := tb.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "FUNCTION_TARGET=" + target, "PORT=" + port}
	for k, v := range vars {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	fn := &runningFunction{url: "http://127.0.0.1:" + port, logs: &logBuffer{}}
	cmd := exec.Command(bin)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, fn.logs, fn.logs
	fn.exited = testproc.Start(tb, cmd, "function", fn.logs)
	return fn
}

// firstAnswer sends a request until the function answers it, again and
// again while nothing listens on its port yet: every millisecond, so
// that a timed start is not rounded up to the polling interval.
func (fn *runningFunction) firstAnswer(tb testing.TB, send func() (*http.Response, error)) *http.Response {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := send()
		if err == nil {
			return resp
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			tb.Fatalf("request to the function: %v\n%s", err, fn.logs)
		}
		select {
		case <-fn.exited:
			tb.Fatalf("function exited at start-up:\n%s", fn.logs)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("function not listening on %s after a minute:\n%s", fn.url, fn.logs)
		}
		time.Sleep(time.Millisecond)
	}
}

func freePort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func post(t *testing.T, url, contentType string, body []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// The deployed function ignores ONBOARD_INSECURE_NO_AUTH=1: with no webhook
// secret it refuses every request, and its log says why at ERROR.
func TestDeployedFunctionIgnoresInsecureNoAuth(t *testing.T) {
	tg := newTargets(t)
	fn := startFunction(t, tg, "ProvisionHTTP", map[string]string{"ONBOARD_WEBHOOK_SECRET": "", "ONBOARD_INSECURE_NO_AUTH": "1"})
	resp := post(t, fn.url+"/", "application/json", []byte(`{"email":"ada@example.com","name":"Ada Lovelace"}`), nil)
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"unauthorized"`) {
		t.Fatalf("no credential: %d %s", resp.StatusCode, body)
	}
	if n := len(tg.users("ada@example.com")); n != 0 {
		t.Errorf("%d Looker users made by a refused request", n)
	}
	waitFor(t, 10*time.Second, "the ERROR line saying the setting is ignored", func() bool {
		for _, line := range logLines(fn.logs, map[string]string{"severity": "ERROR"}) {
			if strings.Contains(fmt.Sprint(line["message"]), "ONBOARD_INSECURE_NO_AUTH=1 is ignored") {
				return true
			}
		}
		return false
	})
}

// /_local/pubsub and /_local/lambda exist only under `onboard serve`: the
// deployed HTTP function answers 404 there even to a valid credential, and
// runs nothing.
func TestHTTPFunctionHasNoLocalRoutes(t *testing.T) {
	f := newFixture(t, nil, nil)
	bodies := map[string]string{
		"/_local/pubsub": string(readRepoFile(t, "testdata/events/pubsub-push.json")),
		"/_local/lambda": string(readRepoFile(t, "testdata/events/sqs.json")),
	}
	for path, body := range bodies {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+webhookSecret)
		rec := httptest.NewRecorder()
		f.fns.ProvisionHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("POST %s: %d %s, want 404", path, rec.Code, rec.Body)
		}
	}
	if n := len(f.looker.Users()); n != 0 {
		t.Errorf("%d Looker users after posts to /_local/*", n)
	}
}
