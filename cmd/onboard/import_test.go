package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/fakehttp"
	"github.com/onboard-dev/onboard/internal/leakcheck"
)

// importWorld is a Looker and SendGrid that outlive the CLI runs of a test,
// so a resumed import can be checked for duplicates.
type importWorld struct {
	bin, dir string
	config   string // path of the onboard.yaml the CLI runs with
	looker   *lookertest.Server
	sendgrid *sendgridtest.Server
	env      []string // more settings, such as AAC's
}

func newImportWorld(t *testing.T, latency time.Duration) *importWorld {
	t.Helper()
	return newImportWorldFor(t, latency, "onboard.yaml")
}

// newImportWorldFor runs the CLI with testdata/config, its Looker holding
// the roles, groups and attributes that config names.
func newImportWorldFor(t *testing.T, latency time.Duration, config string) *importWorld {
	t.Helper()
	path := absPathNoT(filepath.Join("../../testdata", config))
	cfg, err := targets.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	w := &importWorld{bin: buildCLI(t), dir: t.TempDir(), config: path,
		looker:   lookertest.NewTestServer(t, lookertest.Options{Latency: latency}),
		sendgrid: sendgridtest.NewTestServer(t, sendgridtest.Options{APIKey: "SG.import-test-key"})}
	looker.SeedFake(w.looker, cfg)
	return w
}

func (w *importWorld) command(args ...string) *exec.Cmd {
	cmd := exec.Command(w.bin, args...)
	cmd.Dir = w.dir
	cmd.Env = append(cleanEnv(),
		"ONBOARD_CONFIG="+w.config,
		"LOOKERSDK_BASE_URL="+w.looker.URL, "LOOKERSDK_CLIENT_ID="+lookertest.DefaultClientID,
		"LOOKERSDK_CLIENT_SECRET="+lookertest.DefaultClientSecret,
		"SENDGRID_API_KEY=SG.import-test-key", "SENDGRID_BASE_URL="+w.sendgrid.URL)
	cmd.Env = append(cmd.Env, w.env...)
	return cmd
}

func (w *importWorld) run(args ...string) (stdout, stderr string, code int) {
	cmd := w.command(args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return out.String(), errOut.String(), code
}

// csv copies a file from testdata/import into the run's directory, where
// the import writes its failures file beside it.
func (w *importWorld) csv(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../testdata/import", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func absPathNoT(p string) string {
	a, _ := filepath.Abs(p)
	return a
}

func TestImportClean(t *testing.T) {
	w := newImportWorld(t, 0)
	file := w.csv(t, "people-20.csv")
	out, errOut, code := w.run("import", file)
	if code != 0 || !strings.Contains(out, "created") || !strings.Contains(out, "20") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if n := len(w.looker.Users()); n != 20 {
		t.Errorf("%d Looker users, want 20", n)
	}
	if n := len(w.sendgrid.Messages()); n != 20 {
		t.Errorf("%d emails, want 20", n)
	}
	if !strings.Contains(errOut, "import: 20/20 rows done, 0 failed") {
		t.Errorf("no plain progress lines on a non-terminal:\n%s", errOut)
	}
	// The same file again: every row's key is its content, so nothing is redone.
	before := len(w.looker.Requests())
	if _, errOut, code := w.run("import", file); code != 0 {
		t.Fatalf("re-run: exit %d\n%s", code, errOut)
	}
	for _, r := range w.looker.Requests()[before:] {
		if r.Method != "GET" && r.Path != "/login" {
			t.Errorf("re-running a finished import wrote %s %s", r.Method, r.Path)
		}
	}
}

// An import's rows are one event batch: AAC gets one invite call per 50
// people (its batch size), not one per wave of concurrent rows.
func TestImportInvitesAACInBatches(t *testing.T) {
	w := newImportWorldFor(t, 2*time.Millisecond, "onboard-aac.yaml")
	fake := aactest.NewTestServer(t, aactest.Options{})
	ws := fake.AddWorkspace("Sales Analytics", "Auto Insights Creator", "Auto Insights Viewer")
	seeds, _ := json.Marshal(map[string]string{"Sales Analytics": fake.NewWorkspaceGrant(ws).RefreshToken})
	w.env = []string{"AAC_BASE_URL=" + fake.URL, "AAC_TOKEN_URL=" + fake.TokenURL(),
		"AAC_CLIENT_ID=" + fake.ClientID(), "AAC_REFRESH_TOKENS=" + string(seeds)}
	rows := []string{"email,first_name,last_name"}
	for i := range 120 {
		rows = append(rows, fmt.Sprintf("person%03d@example.com,Person,%d", i, i))
	}
	file := filepath.Join(w.dir, "people-120.csv")
	if err := os.WriteFile(file, []byte(strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := w.run("import", file); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	sizes := fake.InviteSizes()
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{20, 50, 50}) {
		t.Errorf("invite calls carried %v people, want 50, 50 and 20", sizes)
	}
	invited := 0
	for _, m := range fake.Members(ws) {
		if strings.HasPrefix(m.Email, "person") {
			invited++
		}
	}
	if invited != 120 {
		t.Errorf("%d people invited to the workspace, want 120", invited)
	}
}

func TestImportBadRowsChangeNothing(t *testing.T) {
	w := newImportWorld(t, 0)
	file := w.csv(t, "bad-rows.csv")
	_, errOut, code := w.run("import", file)
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, errOut)
	}
	for _, want := range []string{"line 3: email", "line 4: email", "line 5: profile", "line 6: attr.department", "line 7: 2 fields"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("problem %q not reported:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "line 2:") {
		t.Errorf("the good row was reported:\n%s", errOut)
	}
	if n := len(w.looker.Requests()); n != 0 {
		t.Errorf("a refused file made %d Looker calls", n)
	}
	if _, errOut, code := w.run("import", w.csv(t, "unknown-column.csv")); code != 2 || !strings.Contains(errOut, `unknown column "mail"`) {
		t.Errorf("unknown column: %d %s", code, errOut)
	}
}

func TestImportInterruptedResumes(t *testing.T) {
	w := newImportWorld(t, 20*time.Millisecond)
	file := w.csv(t, "people-60.csv")
	cmd := w.command("import", "--concurrency", "2", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "import: ") { // the first progress line: some rows are done
			_ = cmd.Process.Signal(syscall.SIGINT)
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted import: %v, want exit 130", err)
	}
	partial := len(w.looker.Users())
	if partial == 0 || partial == 60 {
		t.Fatalf("%d users after the interruption: the test wants it mid-way", partial)
	}
	if _, errOut, code := w.run("import", file); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, errOut)
	}
	if n := len(w.looker.Users()); n != 60 {
		t.Errorf("%d Looker users after resuming, want 60", n)
	}
	if n := len(w.sendgrid.Messages()); n != 60 {
		t.Errorf("%d emails after resuming, want exactly 60", n)
	}
}

func TestImportFailuresFileAndExitCode(t *testing.T) {
	w := newImportWorld(t, 0)
	w.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 403, Body: `{"message":"no seats left","documentation_url":"x"}`})
	file := w.csv(t, "people-3.csv")
	out, errOut, code := w.run("import", file)
	if code != 1 || !strings.Contains(out, "failed") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	failures, err := os.ReadFile(filepath.Join(w.dir, "people-3.failures.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(failures)), "\n")
	if len(lines) != 4 || lines[0] != "email,name,profile,attr.region,error" || !strings.Contains(lines[1], "no seats left") {
		t.Errorf("failures file:\n%s", failures)
	}
}

func TestImportDeprovisionCircuitBreaker(t *testing.T) {
	w := newImportWorld(t, 0)
	file := w.csv(t, "leavers-11.csv")
	_, errOut, code := w.run("import", file)
	if code != 2 || !strings.Contains(errOut, "max_deprovision") || !strings.Contains(errOut, "--force") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if n := len(w.looker.Requests()); n != 0 {
		t.Errorf("the refused import made %d Looker calls", n)
	}
	// Forced, each leaver still needs a record of what onboard gave them:
	// these were never provisioned by onboard.
	if out, _, code := w.run("import", "--force", file); code != 1 || !regexp.MustCompile(`failed\s+11`).MatchString(out) {
		t.Errorf("forced, for people onboard never provisioned: exit %d\n%s", code, out)
	}
	failures, err := os.ReadFile(filepath.Join(w.dir, "leavers-11.failures.csv"))
	if err != nil || !strings.Contains(string(failures), "no record of provisioning") {
		t.Errorf("failures file: %v\n%s", err, failures)
	}
	if _, errOut, code := w.run("import", "--force", "--adopt", file); code != 0 {
		t.Errorf("forced and adopted: exit %d\n%s", code, errOut)
	}
}

func TestProvisionCommand(t *testing.T) {
	w := newImportWorld(t, 0)
	out, errOut, code := w.run("provision", "--email", "Ada@Example.com", "--name", "Ada Lovelace", "--attr", "region=EMEA")
	if code != 0 || !strings.Contains(out, "Ada@example.com: created") || !strings.Contains(out, "welcome email") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := w.run("provision", "--email", "ada@example.com", "--attr", "department=x"); code != 2 || !strings.Contains(errOut, "--attr department") {
		t.Errorf("disallowed attribute: %d %s", code, errOut)
	}
	out, _, code = w.run("provision", "--email", "ada@example.com", "--deprovision")
	if code != 0 || !strings.Contains(out, "disabled") {
		t.Errorf("deprovision: %d %s", code, out)
	}
}

func TestImportDryRunWritesNothing(t *testing.T) {
	w := newImportWorld(t, 0)
	w.looker.AddUser(lookertest.SeedUser{Email: "p001@example.com", FirstName: "Person", LastName: "1", LoggedIn: true})
	file := w.csv(t, "people-3.csv")
	out, errOut, code := w.run("plan", file)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"p000@example.com: would be created", "would looker POST /users ", "would sendgrid send welcome email p000@example.com",
		"p001@example.com: would be updated", "dry run: nothing was written"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	for _, r := range w.looker.Requests() {
		if r.Method != "GET" && r.Path != "/login" {
			t.Errorf("plan wrote %s %s", r.Method, r.Path)
		}
	}
	if len(w.sendgrid.Messages()) != 0 || len(w.looker.Users()) != 1 {
		t.Errorf("plan changed something: %d emails, %d users", len(w.sendgrid.Messages()), len(w.looker.Users()))
	}
	// The real import then does the work the plan showed (no stored answers left by the plan).
	if out, errOut, code := w.run("import", file); code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("import after plan: %d\n%s\n%s", code, out, errOut)
	}
	if n := len(w.looker.Users()); n != 3 {
		t.Errorf("%d users after the real import, want 3", n)
	}
}

// A unit of rows runs in a goroutine of its own: a panic while sending it
// fails only its rows (500, internal error), each reported done once, and
// the other units and the process go on.
func TestPanickingUnitFailsOnlyItsRows(t *testing.T) {
	units := [][]row{
		{{line: 2, req: core.Request{Email: "a@example.com"}}},
		{{line: 3, req: core.Request{Email: "boom@example.com"}}, {line: 4, req: core.Request{Email: "b@example.com"}}},
		{{line: 5, req: core.Request{Email: "c@example.com"}}},
	}
	send := func(_ context.Context, unit []row) []rowResult {
		if unit[0].req.Email == "boom@example.com" {
			panic("send bug")
		}
		return []rowResult{{status: core.StatusCreated}}
	}
	var mu sync.Mutex
	done := 0
	results := runRows(context.Background(), units, 2, send, func(rowResult) { mu.Lock(); done++; mu.Unlock() })
	if len(results) != 4 || done != 4 {
		t.Fatalf("%d results, %d reported done: want 4 and 4", len(results), done)
	}
	for i, want := range []int{0, 500, 500, 0} {
		r := results[i]
		switch {
		case want == 0 && (r.err != nil || r.status != core.StatusCreated):
			t.Errorf("row %d: %+v, want created", i, r)
		case want != 0 && (r.err == nil || r.err.Status != want || r.err.Message != "internal error"):
			t.Errorf("row %d: %+v, want a 500 internal error", i, r)
		}
	}
}

// What the CLI prints and writes to a failures file passes through the
// redactor: here Looker's refusals echo the request, access token included.
func TestCLIOutputMasksEchoedSecrets(t *testing.T) {
	w := newImportWorld(t, 0)
	proxy := fakehttp.EchoingProxy(t, w.looker.URL, func(r *http.Request) int {
		if r.Method == http.MethodPost && r.URL.Path == lookertest.APIPrefix+"/users" {
			return http.StatusBadRequest
		}
		return 0
	})
	w.env = append(w.env, "LOOKERSDK_BASE_URL="+proxy)
	out, errOut, _ := w.run("provision", "--email", "ada@example.com", "--name", "Ada Lovelace")
	shown := out + errOut
	out, errOut, _ = w.run("import", w.csv(t, "people-3.csv"))
	failures, _ := os.ReadFile(filepath.Join(w.dir, "people-3.failures.csv"))
	shown += out + errOut + string(failures)
	if strings.Count(shown, fakehttp.EchoMarker) < 2 {
		t.Fatalf("the refusals were not shown, so this test proves nothing:\n%s", shown)
	}
	secrets := map[string]string{}
	for _, r := range w.looker.Requests() {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			secrets["Looker token "+tok] = tok
		}
	}
	if found := leakcheck.Find(shown, secrets); found != nil {
		t.Errorf("the CLI showed %v:\n%s", found, shown)
	}
}
