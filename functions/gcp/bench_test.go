package gcp_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/internal/coldstart"
)

// BenchmarkColdStart starts the function scripts/build-gcp.sh builds as
// Cloud Functions would (FUNCTION_TARGET, PORT) and times process start to
// its first answer, a new user through fakes answering at once, less a
// warm answer of the same kind: the cost of starting. It reports that cost
// against process start to the first 200 of the smallest
// functions-framework-go function built the same way, and the two
// binaries' sizes: the start-up and weight onboard adds to a Cloud
// Function's.
func BenchmarkColdStart(b *testing.B) {
	onboard, hello := builtFunction(b), buildHelloFunction(b)
	for b.Loop() {
		coldstart.Compare(b, func() time.Duration {
			vars := newTargets(b).env(b)
			vars["ONBOARD_LOG_LEVEL"] = "error"
			// A deployment's store exists before its first cold start (make
			// deploy creates the database): a cold start opens it, never creates it.
			store, err := app.OpenStore(b.Context(), func(k string) string { return vars[k] }, app.Options{})
			if err != nil {
				b.Fatal(err)
			}
			_ = store.Close()
			start := time.Now()
			fn := launchFunction(b, onboard, "ProvisionHTTP", vars)
			fn.provisionNewUser(b, "cold@example.com")
			cold := time.Since(start)
			warmStart := time.Now()
			fn.provisionNewUser(b, "warm@example.com")
			return cold - time.Since(warmStart)
		}, func() time.Duration {
			start := time.Now()
			h := launchFunction(b, hello, "Hello", nil)
			resp := h.firstAnswer(b, func() (*http.Response, error) { return http.Get(h.url + "/") })
			first := time.Since(start)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("hello-world answered %d", resp.StatusCode)
			}
			return first
		})
	}
	b.ReportMetric(float64(fileSize(b, onboard))/float64(fileSize(b, hello)), "size/hello-world")
}

// provisionNewUser posts a new person to ProvisionHTTP, waiting for the
// function to listen, and fails unless the answer says they were created.
func (fn *runningFunction) provisionNewUser(tb testing.TB, email string) {
	tb.Helper()
	resp := fn.firstAnswer(tb, func() (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, fn.url+"/", strings.NewReader(`{"email":"`+email+`"}`))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+webhookSecret)
		return http.DefaultClient.Do(req)
	})
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var answer struct{ Status string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.Status != "created" {
		tb.Fatalf("provisioning %s: %d %s\n%s", email, resp.StatusCode, body, fn.logs)
	}
}

// buildHelloFunction builds testdata/hellofunction as the root package of a
// module of its own with onboard's scripts/build-gcp.sh, go.mod and go.sum,
// so it gets the same generated main and the same framework version.
func buildHelloFunction(tb testing.TB) string {
	tb.Helper()
	root := tb.TempDir()
	const onboardModule = "module github.com/onboard-dev/onboard\n"
	goMod := readRepoFile(tb, "go.mod")
	if !bytes.HasPrefix(goMod, []byte(onboardModule)) {
		tb.Fatalf("go.mod does not start with %q", onboardModule)
	}
	writeFile(tb, filepath.Join(root, "go.mod"), "module example.com/hello\n"+string(goMod[len(onboardModule):]))
	writeFile(tb, filepath.Join(root, "go.sum"), string(readRepoFile(tb, "go.sum")))
	writeFile(tb, filepath.Join(root, "scripts", "build-gcp.sh"), string(readRepoFile(tb, "scripts/build-gcp.sh")))
	source, err := os.ReadFile(filepath.Join("testdata", "hellofunction", "hello.go"))
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, filepath.Join(root, "hello.go"), string(source))
	bin := filepath.Join(tb.TempDir(), "hello")
	if out, err := buildLikeBuildpack(root, bin); err != nil {
		tb.Fatalf("building the hello-world function: %v\n%s", err, out)
	}
	return bin
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	st, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}
