package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
)

// sheetsWorld is the import world with a form's responses tab in a fake
// Sheets, listed under sources.sheets of a copy of testdata/onboard.yaml.
func newSheetsWorld(t *testing.T) (*importWorld, *sheetstest.Server) {
	t.Helper()
	w := newImportWorld(t, 0)
	fake := sheetstest.NewTestServer(t, sheetstest.Options{})
	fake.AddSpreadsheet(sheetstest.Spreadsheet{ID: "1FormResponsesXyz", Tabs: []sheetstest.Tab{{Title: "Form Responses 1", Columns: 3, Values: [][]string{
		{"Timestamp", "Email Address", "Full name"},
		{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"},
		{"2026/12/04 9:01:00", "nobody", "No Body"},
	}}}})
	account := fake.NewServiceAccount("onboard@test.iam.gserviceaccount.com")
	fake.Share("1FormResponsesXyz", account.Email, sheetstest.Editor)
	policy, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	policy = append(policy, []byte(`
sources:
  sheets:
    - spreadsheet_id: 1FormResponsesXyz
      sheet: Form Responses 1
      columns: {Email Address: email, Full name: name}
`)...)
	w.config = filepath.Join(w.dir, "onboard.yaml")
	if err := os.WriteFile(w.config, policy, 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, "GOOGLE_SHEETS_CREDENTIALS="+string(account.CredentialsJSON()), "SHEETS_BASE_URL="+fake.URL)
	return w, fake
}

func TestSheetsCheckAndSync(t *testing.T) {
	w, fake := newSheetsWorld(t)
	out, errOut, code := w.run("sheets", "check")
	if code != 0 || !strings.Contains(out, "2 to run on the next poll") || !strings.Contains(out, "→ email") || !strings.Contains(strings.Join(strings.Fields(out), " "), "Timestamp ignored") {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = w.run("sheets", "sync", "--dry-run")
	if code != 0 || !strings.Contains(out, "would: looker POST /users") || len(w.looker.Users()) != 0 || len(fake.Values("1FormResponsesXyz", "Form Responses 1")[0]) != 3 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = w.run("sheets", "sync")
	if flat := strings.Join(strings.Fields(out), " "); code != 0 || !strings.Contains(flat, "ada@example.com created ") || !strings.Contains(flat, "nobody error: ") {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := len(w.looker.Users()); n != 1 {
		t.Errorf("%d Looker users, want 1", n)
	}
	rows := fake.Values("1FormResponsesXyz", "Form Responses 1")
	if rows[0][3] != "onboard" || !strings.HasPrefix(rows[1][3], "created ") || !strings.HasPrefix(rows[2][3], "error: ") {
		t.Errorf("sheet after sync: %q", rows)
	}
	if strings.Contains(out+errOut, "PRIVATE KEY") {
		t.Error("the service account's key reached the output")
	}
}

// The deploy scripts schedule what `task list --json` lists, and the
// schedule's message runs the same poll as `task run` does here.
func TestSheetPollIsAScheduledTask(t *testing.T) {
	w, fake := newSheetsWorld(t)
	out, errOut, code := w.run("task", "list", "--json")
	var tasks []scheduledTask
	if code != 0 || json.Unmarshal([]byte(out), &tasks) != nil {
		t.Fatalf("task list --json: exit %d\n%s\n%s", code, out, errOut)
	}
	const poll = "sheets-poll:1FormResponsesXyz/Form Responses 1"
	i := slices.IndexFunc(tasks, func(s scheduledTask) bool { return s.Name == poll })
	if i < 0 || tasks[i].Cron != "*/5 * * * *" || tasks[i].Rate != "rate(5 minutes)" || !slices.ContainsFunc(tasks, func(s scheduledTask) bool { return s.Name == "aac-keep-alive" && s.Cron == "" }) {
		t.Fatalf("tasks %+v", tasks)
	}
	out, errOut, code = w.run("task", "list")
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), poll+" every 5m") {
		t.Errorf("task list: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = w.run("task", "run", poll); code != 0 {
		t.Fatalf("task run: exit %d\n%s\n%s", code, out, errOut)
	}
	if rows := fake.Values("1FormResponsesXyz", "Form Responses 1"); !strings.HasPrefix(rows[1][3], "created ") || len(w.looker.Users()) != 1 {
		t.Errorf("sheet after the task: %q", rows)
	}
	if _, errOut, code = w.run("task", "run", "sheets-poll:1NotInThePolicy"); code != 2 || !strings.Contains(errOut, "1NotInThePolicy") {
		t.Errorf("a sheet the policy does not list: exit %d %s", code, errOut)
	}
}

// make run with a sheets source and no Google credentials: a fake sheet of
// form answers, polled at once and every few seconds, shown at the URL
// the banner gives, each row getting its outcome.
func TestServeSandboxPollsAFakeSheet(t *testing.T) {
	bin, dir, port := buildCLI(t), t.TempDir(), freePort(t)
	s := startServeWith(t, bin, dir, nil, "PORT="+port, "ONBOARD_CONFIG="+absPath(t, "../../testdata/onboard-sheets.yaml"))
	view := regexp.MustCompile(`curl -sS (\S+/_local/sheets) -H "Authorization: Bearer ([^"]+)"`).FindStringSubmatch(s.banner)
	if view == nil || !strings.Contains(s.banner, "sheets: in-memory fake") || !strings.Contains(s.banner, "Sheets: the fake sheet 1SandboxFormResponses/Form Responses 1") {
		t.Fatalf("the banner does not say where the fake sheet is:\n%s", s.banner)
	}
	get := func(secret string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, view[1], nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, _ := get("wrong"); code != http.StatusUnauthorized {
		t.Errorf("the sheet view without the credential: %d", code)
	}
	var sheet string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, sheet = get(view[2]); strings.Contains(sheet, "error: ") {
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(sheet), "\n")
	if len(lines) != 5 || !strings.HasSuffix(lines[1], "| onboard") || !strings.Contains(lines[2], "| created ") || !strings.Contains(lines[3], "| created ") || !strings.Contains(lines[4], "| error: ") {
		t.Fatalf("the sheet after the first poll:\n%s\nlog:\n%s", sheet, s.stderr)
	}
	if emails, _ := filepath.Glob(filepath.Join(dir, ".onboard", "outbox", "*")); len(emails) != 2 {
		t.Errorf("%d welcome emails, want one per valid row", len(emails))
	}
}

// With no Google credentials, onboard sheets sync runs against the
// sandbox's fake sheet, as make run does.
func TestSheetsSyncInTheSandbox(t *testing.T) {
	bin, dir := buildCLI(t), t.TempDir()
	cmd := exec.Command(bin, "sheets", "sync")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "ONBOARD_CONFIG="+absPath(t, "../../testdata/onboard-sheets.yaml"))
	out, err := cmd.CombinedOutput()
	flat := strings.Join(strings.Fields(string(out)), " ")
	if err != nil || !strings.Contains(flat, "sheets: in-memory fake") || !strings.Contains(flat, "ada@example.com created ") || !strings.Contains(flat, "not-an-email error: ") {
		t.Fatalf("onboard sheets sync in the sandbox: %v\n%s", err, out)
	}
	if emails, _ := filepath.Glob(filepath.Join(dir, ".onboard", "outbox", "*")); len(emails) != 2 {
		t.Errorf("%d welcome emails in the outbox, want 2", len(emails))
	}
}
