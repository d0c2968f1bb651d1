package emulators

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// helperEnv makes the test binary act as a child that starts a process under
// the watchdog and then dies without any clean-up.
const helperEnv = "ONBOARD_EMULATORS_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		p, err := launch("sleeper", "sleep", "300")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println(p.cmd.Process.Pid, p.dir)
		_, _ = io.Copy(io.Discard, os.Stdin) // wait to be killed
		os.Exit(0)
	}
	os.Exit(Run(m))
}

// TestWatchdogKillsGroupWhenBinaryDies kills a test binary that started a
// process, with SIGKILL so no Go code runs, and expects the process group
// to disappear: the guarantee behind "no Java process left behind".
func TestWatchdogKillsGroupWhenBinaryDies(t *testing.T) {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := child.StdinPipe(); err != nil { // kept open: the helper blocks on it
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var pgid int
	var dir string
	if _, scanErr := fmt.Sscan(line, &pgid, &dir); err != nil || scanErr != nil {
		_ = child.Process.Kill()
		t.Fatalf("helper said %q (%v)", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }) // only matters if the test failed

	if err := syscall.Kill(-pgid, 0); err != nil {
		t.Fatalf("process group %d not running before the helper died: %v", pgid, err)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if !groupGone(pgid, 10*time.Second) {
		t.Fatalf("process group %d outlived the test binary that started it", pgid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("private directory %s left behind: %v", dir, err)
	}
}

// recordingTB captures Skip/Fatal instead of stopping the goroutine.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recordingTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestMissingExecutableSkipsOnlyOutsideCI(t *testing.T) {
	e := &emulator{spec: spec{name: "nothing", bin: "onboard-no-such-emulator", install: "it from nowhere"}}

	t.Setenv("CI", "true")
	r := &recordingTB{TB: t}
	if got := e.get(r); got != "" || r.skipped != "" || !strings.Contains(r.failed, "onboard-no-such-emulator not found: install it from nowhere") {
		t.Errorf("CI=true: addr %q, skipped %q, failed %q; want a failure naming the install", got, r.skipped, r.failed)
	}

	t.Setenv("CI", "")
	r = &recordingTB{TB: t}
	if got := e.get(r); got != "" || r.failed != "" || !strings.Contains(r.skipped, "only outside CI") {
		t.Errorf("no CI: addr %q, skipped %q, failed %q; want a skip saying it only happens outside CI", got, r.skipped, r.failed)
	}
}

func TestMoto(t *testing.T) {
	endpoint := Moto(t)
	if again := Moto(t); again != endpoint {
		t.Fatalf("second call started another server: %s vs %s", again, endpoint)
	}
	client := secretsmanager.NewFromConfig(AWSConfig(t, endpoint))
	name := "emulators-test/" + t.Name()
	if _, err := client.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String("v"),
	}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	out, err := client.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil || aws.ToString(out.SecretString) != "v" {
		t.Fatalf("GetSecretValue = %v, %v", out, err)
	}
}

func TestPubSub(t *testing.T) {
	base := "http://" + PubSub(t) + "/v1/projects/onboard-test/topics/"
	topic := "topic-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	status, body := do(t, http.MethodPut, base+topic, "")
	var created struct{ Name string }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &created) != nil || created.Name != "projects/onboard-test/topics/"+topic {
		t.Fatalf("create topic: %d %s", status, body)
	}
	if status, body := do(t, http.MethodGet, base+topic, ""); status != http.StatusOK {
		t.Fatalf("get topic: %d %s", status, body)
	}
	if status, _ := do(t, http.MethodGet, base+"no-such-topic", ""); status != http.StatusNotFound {
		t.Fatalf("get unknown topic: %d, want 404", status)
	}
}

func TestFirestore(t *testing.T) {
	host := "http://" + Firestore(t)
	if status, body := do(t, http.MethodGet, host+"/", ""); status != http.StatusOK || strings.TrimSpace(body) != "Ok" {
		t.Fatalf("GET /: %d %q, want 200 Ok", status, body)
	}

	docs := host + "/v1/projects/onboard-test/databases/(default)/documents/users"
	id := "ada-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if status, body := do(t, http.MethodPost, docs+"?documentId="+id, `{"fields":{"email":{"stringValue":"ada@example.com"}}}`); status != http.StatusOK {
		t.Fatalf("create document: %d %s", status, body)
	}
	status, body := do(t, http.MethodGet, docs+"/"+id, "")
	if status != http.StatusOK || !strings.Contains(body, "ada@example.com") {
		t.Fatalf("read document: %d %s", status, body)
	}
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
