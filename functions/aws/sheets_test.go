package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/functions/aws/internal/awstest"
	"github.com/onboard-dev/onboard/functions/aws/lambdaapi"
)

// The sheets poller's bootstrap, run as Lambda runs it, polls a form's
// responses tab when its EventBridge schedule invokes it with the poll's
// task: the new row's person is provisioned and the row gets its status.
// The webhook bootstrap, which links no Sheets client, refuses the same
// task with an error naming the function that runs polls.
func TestSheetsBootstrapPollsASheet(t *testing.T) {
	const (
		sheetID = "1FormResponsesLambdaAbc"
		tab     = "Form Responses 1"
		robot   = "onboard@acme-prod.iam.gserviceaccount.com"
	)
	fakes := awstest.Start(t)
	sheets := sheetstest.NewTestServer(t, sheetstest.Options{})
	sheets.AddSpreadsheet(sheetstest.Spreadsheet{ID: sheetID, Tabs: []sheetstest.Tab{{Title: tab, Columns: 3, Values: [][]string{
		{"Timestamp", "Email Address", "Full name"},
		{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"},
	}}}})
	account := sheets.NewServiceAccount(robot)
	sheets.Share(sheetID, robot, sheetstest.Editor)

	base, err := os.ReadFile(fakes.Env[targets.ConfigSetting])
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(t.TempDir(), "onboard.yaml")
	withSheet := string(base) + "sources:\n  sheets:\n    - spreadsheet_id: " + sheetID + "\n      sheet: " + tab +
		"\n      columns: {Email Address: email, Full name: name}\n"
	if err := os.WriteFile(policy, []byte(withSheet), 0o644); err != nil {
		t.Fatal(err)
	}
	env := maps.Clone(fakes.Env)
	maps.Copy(env, map[string]string{
		targets.ConfigSetting:           policy,
		"GOOGLE_SHEETS_CREDENTIALS":     string(account.CredentialsJSON()),
		"SHEETS_BASE_URL":               sheets.URL,
		lambdaapi.SheetsFunctionSetting: "onboard-sheets-poll",
		"ONBOARD_STORE":                 "file:" + t.TempDir(),
	})
	task := []byte(`{"onboard_task":"sheets-poll:` + sheetID + `/` + tab + `"}`)

	poller := startBinary(t, buildFunction(t, "./sheets"), env)
	var answer struct{ Task, Outcome string }
	response(t, poller.invoke(t, task), &answer)
	if answer.Outcome != "done" {
		t.Fatalf("answer %+v\n%s", answer, poller.output)
	}
	if _, ok := awstest.Server[*lookertest.Server](t, fakes).UserByEmail("ada@example.com"); !ok {
		t.Fatalf("ada was not provisioned\n%s", poller.output)
	}
	if row := sheets.Values(sheetID, tab)[1]; len(row) < 4 || !strings.HasPrefix(row[3], "created ") {
		t.Errorf("ada's row %q, want its status \"created ...\"", row)
	}
	out := poller.output.String()
	for _, secret := range append(sheets.IssuedTokens(), account.KeyID, "PRIVATE KEY") {
		if strings.Contains(out, secret) {
			t.Errorf("a Google credential reached the function's output:\n%s", out)
		}
	}
	if fakes.Leaked(out) {
		t.Error("a secret value reached the function's output")
	}

	webhook := startBootstrap(t, env)
	res := webhook.invoke(t, task)
	var failure struct {
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(res.body, &failure)
	if res.kind != "error" || !strings.Contains(failure.ErrorMessage, "sheet polls run in the function onboard-sheets-poll") {
		t.Errorf("the webhook function given a poll: %s %s", res.kind, res.body)
	}
}
