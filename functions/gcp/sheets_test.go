package gcp_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
	"github.com/onboard-dev/onboard/functions/gcp"
)

// What Cloud Scheduler publishes for a sheet (infra/gcp's per-sheet job)
// polls it in the function as Register wires it: the Sheets client is
// there, the credentials come from the secrets, the rows reach Looker.
func TestPubSubSheetPollAsRegisterWiresIt(t *testing.T) {
	tg := newTargets(t)
	sheets := sheetstest.NewTestServer(t, sheetstest.Options{})
	sheets.AddSpreadsheet(sheetstest.Spreadsheet{ID: "1FormResponsesGcp", Tabs: []sheetstest.Tab{{Title: "Form Responses 1", Columns: 4, Values: [][]string{
		{"Timestamp", "Email Address", "Full name"},
		{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"},
	}}}})
	account := sheets.NewServiceAccount("onboard-fn@demo.iam.gserviceaccount.com")
	sheets.Share("1FormResponsesGcp", account.Email, sheetstest.Editor)
	policy := string(readRepoFile(t, "testdata/onboard.yaml")) + `
sources:
  sheets:
    - spreadsheet_id: 1FormResponsesGcp
      sheet: Form Responses 1
      columns: {Email Address: email, Full name: name}
`
	cfgFile := filepath.Join(t.TempDir(), "onboard.yaml")
	if err := os.WriteFile(cfgFile, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := tg.env(t)
	vars["ONBOARD_CONFIG"] = cfgFile
	vars["GOOGLE_SHEETS_CREDENTIALS"] = string(account.CredentialsJSON())
	vars["SHEETS_BASE_URL"] = sheets.URL
	logs := &logBuffer{}
	opts := gcp.Options()
	opts.Getenv = func(k string) string { return vars[k] }
	opts.Redactor = &logging.Redactor{}
	opts.Log = logging.New(logs, slog.LevelDebug, opts.Redactor)
	instance := app.Start(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := instance.App(ctx); err != nil {
		t.Fatalf("instance: %v\n%s", err, logs)
	}
	f := &fixture{targets: tg, fns: gcp.New(instance), logs: logs}
	if err := f.deliver(t, taskMessage("7001", "sheets-poll:1FormResponsesGcp/Form Responses 1", "{}")); err != nil {
		t.Fatalf("the poll: %v\n%s", err, logs)
	}
	if rows := sheets.Values("1FormResponsesGcp", "Form Responses 1"); !strings.HasPrefix(rows[1][3], "created ") || len(tg.users("ada@example.com")) != 1 {
		t.Fatalf("sheet after the poll %q\n%s", rows, logs)
	}
	for _, token := range sheets.IssuedTokens() {
		if strings.Contains(logs.String(), token) {
			t.Error("a Google access token reached the log")
		}
	}
}
