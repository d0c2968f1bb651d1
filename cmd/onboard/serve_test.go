package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/internal/logbuf"
)

// TestServeSandbox runs the real binary the way `make run` does, with no
// credentials, and follows the banner's instructions: the printed curl line
// must create a user and leave a welcome email with an account/setup link.
func TestServeSandbox(t *testing.T) {
	bin, dir, port := buildCLI(t), t.TempDir(), freePort(t)
	_, banner := startServe(t, bin, dir, port)
	if !strings.Contains(banner, "SANDBOX MODE") {
		t.Fatalf("banner does not say sandbox mode:\n%s", banner)
	}
	secret := webhookCurl.FindStringSubmatch(banner)
	data := regexp.MustCompile(`-d '([^']+)'`).FindStringSubmatch(banner)
	if secret == nil || data == nil {
		t.Fatalf("no curl line in the banner:\n%s", banner)
	}
	url := "http://localhost:" + port + "/"
	answer := post(t, url, secret[1], data[1])
	if answer["status"] != "created" || answer["email"] != "sent" {
		t.Fatalf("answer %v", answer)
	}
	if again := post(t, url, secret[1], data[1]); again["status"] != "created" || again["request_id"] != answer["request_id"] {
		t.Errorf("second paste: %v, want the first answer back", again)
	}
	emails, _ := filepath.Glob(filepath.Join(dir, ".onboard", "outbox", "*"))
	if len(emails) != 1 {
		t.Fatalf("%d emails in the outbox, want 1", len(emails))
	}
	body, _ := os.ReadFile(emails[0])
	if !strings.Contains(string(body), "/account/setup/") {
		t.Errorf("welcome email lacks an account/setup link:\n%s", body)
	}

	// The event entry points, fed the sample events as the banner shows,
	// with the same credential as POST /.
	events := regexp.MustCompile(`curl -sS (\S+/_local/(\w+)) -H "Authorization: Bearer ([^"]+)" --data-binary @(\S+)`).FindAllStringSubmatch(banner, -1)
	if len(events) != 2 || events[0][2] != "pubsub" || events[1][2] != "lambda" {
		t.Fatalf("want a curl line with a credential for /_local/pubsub, then /_local/lambda:\n%s", banner)
	}
	for _, e := range events {
		if e[3] != secret[1] {
			t.Errorf("%s line authenticates with %q, not the run's secret", e[1], e[3])
		}
		event, err := os.ReadFile(filepath.Join("../..", e[4]))
		if err != nil {
			t.Fatal(err)
		}
		got := post(t, e[1], e[3], string(event))
		failures, isBatch := got["batchItemFailures"].([]any)
		if acked := got["pubsub"] == "ack"; e[2] == "pubsub" && !acked || e[2] == "lambda" && (!isBatch || len(failures) != 0) {
			t.Errorf("%s: %v, want an ack (push) or no failures (SQS batch)", e[1], got)
		}
	}
	// Grace (Pub/Sub) is welcomed; the SQS batch re-sends Ada, already
	// welcomed, and deprovisions Grace, which sends nothing.
	if emails, _ := filepath.Glob(filepath.Join(dir, ".onboard", "outbox", "*")); len(emails) != 2 {
		t.Errorf("%d emails after the events, want 2 (Ada, then Grace from Pub/Sub)", len(emails))
	}
}

func TestHelp(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "serve") {
		t.Errorf("help: %d %q", code, out.String())
	}
	if code := run([]string{"serve", "-h"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "Example") {
		t.Errorf("serve -h: %d %q", code, errOut.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut.String())
	}
}

// startServe runs `onboard serve` in sandbox mode in dir, the way make run
// does, and returns its banner and a function that stops it.
func startServe(t *testing.T, bin, dir, port string, env ...string) (stop func(), banner string) {
	t.Helper()
	s := startServeWith(t, bin, dir, nil, append([]string{"PORT=" + port}, env...)...)
	return s.stop, s.banner
}

// servedProcess is a running `onboard serve`.
type servedProcess struct {
	stop   func()
	banner string
	stderr *logbuf.Buffer
}

// startServeWith runs `onboard serve args...` in sandbox mode in dir and
// waits for its banner.
func startServeWith(t *testing.T, bin, dir string, args []string, env ...string) servedProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "ONBOARD_CONFIG="+absPath(t, "../../testdata/onboard.yaml"))
	cmd.Env = append(cmd.Env, env...)
	s := servedProcess{stderr: &logbuf.Buffer{}}
	cmd.Stderr = s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	s.stop = func() { once.Do(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }) }
	t.Cleanup(s.stop)
	s.banner = readBanner(t, stdout)
	return s
}

func buildCLI(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "onboard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cleanEnv drops settings that would take the binary out of sandbox mode.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc([]string{"LOOKERSDK_", "ONBOARD_", "SENDGRID_", "AAC_", "PERISCOPE_"}, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			env = append(env, kv)
		}
	}
	return env
}

func readBanner(t *testing.T, r interface{ Read([]byte) (int, error) }) string {
	t.Helper()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var b strings.Builder
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("server exited; output:\n%s", b.String())
			}
			b.WriteString(line + "\n")
			if strings.Contains(line, "-d '") {
				go func() {
					for range lines { // keep draining so the server never blocks on stdout
					}
				}()
				return b.String()
			}
		case <-timeout:
			t.Fatalf("no banner within a minute; got:\n%s", b.String())
		}
	}
}

func post(t *testing.T, url, secret, body string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAudit provisions one person through a sandbox run, then reads the
// writes it made back through `onboard audit`, as table and as JSON.
func TestAudit(t *testing.T) {
	bin, dir, port := buildCLI(t), t.TempDir(), freePort(t)
	stop, banner := startServe(t, bin, dir, port)
	secret := webhookCurl.FindStringSubmatch(banner)[1]
	post(t, "http://localhost:"+port+"/", secret, `{"email":"audited@example.com","name":"Aud Ited"}`)
	stop() // audit reads the store the server has let go of

	run := func(args ...string) (string, string, error) {
		c := exec.Command(bin, append([]string{"audit"}, args...)...)
		c.Dir = dir
		c.Env = cleanEnv()
		var out, errOut strings.Builder
		c.Stdout, c.Stderr = &out, &errOut
		err := c.Run()
		return out.String(), errOut.String(), err
	}
	table, _, err := run("--since", "1h")
	if err != nil || !strings.Contains(table, "POST /users") || !strings.Contains(table, "audited@example.com") || !strings.Contains(table, "send welcome email") {
		t.Fatalf("audit table (%v):\n%s", err, table)
	}
	lines, _, err := run("--json", "--email", "AUDITED@example.com")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(lines), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["person"] != "audited@example.com" || rec["request_id"] == "" {
			t.Errorf("json line %q", line)
		}
		n++
	}
	if n < 5 {
		t.Errorf("%d audit records, want one per write (at least 5)", n)
	}
	if _, errOut, err := run("--since", "yesterday"); err == nil || !strings.Contains(errOut, "--since") {
		t.Errorf("bad --since: %v %q", err, errOut)
	}
	if out, _, _ := run("--email", "nobody@example.com", "--json"); strings.TrimSpace(out) != "" {
		t.Errorf("filter by another person printed %q", out)
	}
}

// A webhook secret the user set may be a real one: the sandbox banner
// refers to it instead of printing it, and the server still takes it.
func TestSandboxBannerNeverPrintsAUserSecret(t *testing.T) {
	const secret = "whsec-BANNERCHECK-42"
	port := freePort(t)
	_, banner := startServe(t, buildCLI(t), t.TempDir(), port, "ONBOARD_WEBHOOK_SECRET="+secret)
	if strings.Contains(banner, secret) || !strings.Contains(banner, `Bearer $ONBOARD_WEBHOOK_SECRET"`) {
		t.Fatalf("banner:\n%s", banner)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://localhost:"+port+"/", strings.NewReader(`{"email":"ada@example.com"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with the user's secret: %d", resp.StatusCode)
	}
}

// serve listens on 127.0.0.1 unless told otherwise: another loopback
// address, standing in for every other interface, finds nothing there.
// --listen moves it, with a warning on stderr when that is off loopback.
func TestServeListensOnLoopbackUnlessTold(t *testing.T) {
	bin, port := buildCLI(t), freePort(t)
	s := startServeWith(t, bin, t.TempDir(), nil, "PORT="+port)
	if !strings.Contains(s.banner, "Serving http://127.0.0.1:"+port+"/ ") {
		t.Errorf("banner does not name the loopback address:\n%s", s.banner)
	}
	if !reachable("127.0.0.1:" + port) {
		t.Fatal("nothing listens on 127.0.0.1")
	}
	if reachable("127.0.0.2:" + port) {
		t.Error("serve answers on 127.0.0.2 too: it listens on every interface")
	}
	s.stop()
	if strings.Contains(s.stderr.String(), "WARNING") {
		t.Errorf("warned on loopback:\n%s", s.stderr)
	}

	port = freePort(t)
	s = startServeWith(t, bin, t.TempDir(), []string{"--listen", "0.0.0.0:" + port})
	if !reachable("127.0.0.2:" + port) {
		t.Error("--listen 0.0.0.0 does not listen on every interface")
	}
	if !strings.Contains(s.banner, "Serving http://localhost:"+port+"/ ") {
		t.Errorf("banner:\n%s", s.banner)
	}
	s.stop()
	warning := "WARNING: listening on 0.0.0.0:" + port + " (every interface), not on loopback"
	if errOut := s.stderr.String(); !strings.Contains(errOut, warning) || !strings.Contains(errOut, "/_local/lambda") || !strings.Contains(errOut, "ONBOARD_WEBHOOK_SECRET") {
		t.Errorf("stderr lacks a warning naming what is exposed and the secret it needs:\n%s", errOut)
	}
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func TestServeListenFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "8080"}, "want HOST:PORT"},
		{[]string{"--listen", "0.0.0.0:8080", "--port", "9000"}, "not both"},
	} {
		var out, errOut strings.Builder
		if code := run(append([]string{"serve"}, tc.args...), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

// Off loopback, insecure mode would open the targets to the network: serve
// refuses to start that way.
func TestServeRefusesInsecureModeOffLoopback(t *testing.T) {
	setSandboxEnv(t)
	t.Setenv("ONBOARD_INSECURE_NO_AUTH", "1")
	var out, errOut strings.Builder
	code := run([]string{"serve", "--listen", "0.0.0.0:0", "--outbox", t.TempDir()}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "ONBOARD_INSECURE_NO_AUTH=1 with no ONBOARD_WEBHOOK_SECRET") {
		t.Errorf("exit %d, stderr:\n%s", code, &errOut)
	}
	if strings.Contains(out.String(), "Serving") {
		t.Errorf("printed a banner:\n%s", &out)
	}
}

// Flags may come before or after positional arguments, as with git: a
// value is taken only by a flag that needs one, "--" ends the flags.
func TestFlagsAnywhere(t *testing.T) {
	newSet := func() (*flag.FlagSet, *bool, *int, *[]string) {
		fs := flag.NewFlagSet("import", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		dry := fs.Bool("dry-run", false, "")
		n := fs.Int("concurrency", 4, "")
		var attrs []string
		fs.Func("attr", "", func(v string) error { attrs = append(attrs, v); return nil })
		return fs, dry, n, &attrs
	}
	for _, args := range [][]string{
		{"people.csv", "--dry-run", "--concurrency", "8", "--attr", "a=1", "more.csv", "--attr=b=2"},
		{"--dry-run", "--concurrency=8", "--attr", "a=1", "--attr", "b=2", "people.csv", "more.csv"},
		{"-dry-run", "people.csv", "-concurrency", "8", "--attr", "a=1", "--attr", "b=2", "--", "more.csv"},
	} {
		fs, dry, n, attrs := newSet()
		if code, ok := parseFlags(fs, args); !ok {
			t.Fatalf("%q: exit %d", args, code)
		}
		if !*dry || *n != 8 || !slices.Equal(*attrs, []string{"a=1", "b=2"}) || !slices.Equal(fs.Args(), []string{"people.csv", "more.csv"}) {
			t.Errorf("%q: dry %v, concurrency %d, attrs %v, args %v", args, *dry, *n, *attrs, fs.Args())
		}
	}
	fs, dry, _, _ := newSet()
	if _, ok := parseFlags(fs, []string{"--", "--dry-run", "-"}); !ok || *dry || !slices.Equal(fs.Args(), []string{"--dry-run", "-"}) {
		t.Errorf(`after "--" everything is positional: dry %v, args %v`, *dry, fs.Args())
	}
	fs, _, _, _ = newSet()
	if code, ok := parseFlags(fs, []string{"people.csv", "--dry-runn"}); ok || code != 2 {
		t.Errorf("an unknown flag after a positional argument: ok %v, exit %d", ok, code)
	}
}

// webhookCurl finds the webhook secret on the banner's "Try it" line.
var webhookCurl = regexp.MustCompile(`curl -sS \S+/ -H 'Content-Type: application/json' -H "Authorization: Bearer ([a-z0-9-]+)"`)
