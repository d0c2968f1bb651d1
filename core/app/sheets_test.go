package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/sheets"
	"github.com/onboard-dev/onboard/core/sheets/gsheets"
	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

const (
	formSheet   = "1FormResponsesAbc"
	formTab     = "Form Responses 1"
	sheetsRobot = "onboard@test-project.iam.gserviceaccount.com"
)

// sheetWorld is a form's responses tab in a fake Sheets, shared with
// onboard's account, polled into the Looker and SendGrid fakes.
type sheetWorld struct {
	*world
	sheets *sheetstest.Server
	poller *sheets.Poller
	sheet  sheets.Sheet
}

func newSheetWorld(t *testing.T, rows ...[]string) *sheetWorld {
	t.Helper()
	return newSheetWorldWith(t, lookertest.Options{}, rows...)
}

func newSheetWorldWith(t *testing.T, lookerOpts lookertest.Options, rows ...[]string) *sheetWorld {
	t.Helper()
	w := &sheetWorld{world: newWorld(t, lookerOpts), sheets: sheetstest.NewTestServer(t, sheetstest.Options{})}
	values := append([][]string{{"Timestamp", "Email Address", "Full name"}}, rows...)
	w.sheets.AddSpreadsheet(sheetstest.Spreadsheet{ID: formSheet, Tabs: []sheetstest.Tab{{Title: formTab, Columns: 3, Values: values}}})
	account := w.sheets.NewServiceAccount(sheetsRobot)
	w.sheets.Share(formSheet, sheetsRobot, sheetstest.Editor)
	client, err := gsheets.New(context.Background(), gsheets.Config{CredentialsJSON: account.CredentialsJSON(), BaseURL: w.sheets.URL})
	if err != nil {
		t.Fatal(err)
	}
	w.poller = &sheets.Poller{Client: client, Engine: w.instance(t, openFileStore(t, t.TempDir()), nil), Concurrency: 4}
	w.poller.Store = w.poller.Engine.Store
	w.sheet = sheets.Sheet{SpreadsheetID: formSheet, Tab: formTab, Columns: map[string]string{"Email Address": "email", "Full name": "name"}}
	return w
}

// assertPeople checks the sheet's rows made n Looker users and n emails.
func (w *sheetWorld) assertPeople(t *testing.T, n int) {
	t.Helper()
	if users, emails := len(w.looker.Users()), len(w.sendgrid.Messages()); users != n || emails != n {
		t.Errorf("%d Looker users and %d welcome emails, want %d of each", users, emails, n)
	}
}

func (w *sheetWorld) statuses() []string {
	var out []string
	for _, row := range w.sheets.Values(formSheet, formTab)[1:] {
		if len(row) > 3 {
			out = append(out, row[3])
		} else {
			out = append(out, "")
		}
	}
	return out
}

func TestSheetPollProvisionsNewRowsAndWritesTheirOutcome(t *testing.T) {
	w := newSheetWorld(t,
		[]string{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"},
		[]string{"2026/12/04 9:01:00", "not-an-email", "Nobody"},
		[]string{"2026/12/04 9:02:00", "bob@example.com", "Bob Babbage"},
	)
	ctx := context.Background()
	if _, err := w.poller.Poll(ctx, w.sheet, false); err != nil {
		t.Fatal(err)
	}
	got := w.statuses()
	if !strings.HasPrefix(got[0], "created ") || !strings.HasPrefix(got[1], "error: ") || !strings.HasPrefix(got[2], "created ") {
		t.Fatalf("statuses %q", got)
	}
	if header := w.sheets.Values(formSheet, formTab)[0]; len(header) != 4 || header[3] != sheets.DefaultStatusColumn {
		t.Errorf("header %q, want the status column added", header)
	}
	w.assertPeople(t, 2)
	if reads := w.sheets.Count(sheetstest.OpGet) + w.sheets.Count(sheetstest.OpValuesGet); reads != 2 {
		t.Errorf("%d reads, want 2", reads)
	}
	if writes := w.sheets.Count(sheetstest.OpValuesBatchUpdate); writes != 1 {
		t.Errorf("%d value writes, want 1", writes)
	}

	// Polling again changes nothing: every row has its outcome.
	lookerCalls := len(w.looker.Requests())
	if outcomes, err := w.poller.Poll(ctx, w.sheet, false); err != nil || len(outcomes) != 0 {
		t.Fatalf("second poll: %v %v", outcomes, err)
	}
	if n := len(w.looker.Requests()); n != lookerCalls {
		t.Errorf("a second poll made %d Looker calls", n-lookerCalls)
	}
	if writes := w.sheets.Count(sheetstest.OpValuesBatchUpdate); writes != 1 {
		t.Errorf("a poll with nothing to do wrote to the sheet")
	}

	// A row added later is picked up by the next poll, alone.
	w.sheets.AppendRow(formSheet, formTab, "2026/12/04 9:30:00", "cy@example.com", "Cy Young")
	outcomes, err := w.poller.Poll(ctx, w.sheet, false)
	if err != nil || len(outcomes) != 1 || !strings.HasPrefix(outcomes[0].Status, "created ") {
		t.Fatalf("third poll: %+v %v", outcomes, err)
	}
}

// The write-back failing after the rows ran (as a crash would leave it):
// the next poll finds each row's stored answer, so one user and one email.
func TestSheetPollAfterALostWriteBackMakesNothingTwice(t *testing.T) {
	w := newSheetWorld(t, []string{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"})
	ctx := context.Background()
	w.sheets.InjectFault(sheetstest.Fault{Op: sheetstest.OpValuesBatchUpdate, Status: 403, Times: 1})
	if _, err := w.poller.Poll(ctx, w.sheet, false); err == nil {
		t.Fatal("the poll reported success without its write-back")
	}
	if _, err := w.poller.Poll(ctx, w.sheet, false); err != nil {
		t.Fatal(err)
	}
	if got := w.statuses(); !strings.HasPrefix(got[0], "created ") {
		t.Errorf("statuses %q", got)
	}
	w.assertOneUserOneEmail(t, "ada@example.com")
}

// Overlapping polls of one sheet take turns: one user per row.
func TestConcurrentSheetPollsMakeOneUserPerRow(t *testing.T) {
	w := newSheetWorld(t,
		[]string{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"},
		[]string{"2026/12/04 9:02:00", "bob@example.com", "Bob Babbage"},
	)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := w.poller.Poll(context.Background(), w.sheet, false); err != nil && !errors.Is(err, sheets.ErrPollInProgress) {
				t.Errorf("poll: %v", err)
			}
		})
	}
	wg.Wait()
	w.assertPeople(t, 2)
}

func TestSheetPollPlanWritesNothing(t *testing.T) {
	w := newSheetWorld(t, []string{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"})
	outcomes, err := w.poller.Poll(context.Background(), w.sheet, true)
	if err != nil || len(outcomes) != 1 || len(outcomes[0].Writes) == 0 {
		t.Fatalf("plan: %+v %v", outcomes, err)
	}
	if n := w.sheets.Count(sheetstest.OpValuesBatchUpdate) + w.sheets.Count(sheetstest.OpBatchUpdate); n != 0 {
		t.Errorf("a plan wrote to the sheet %d times", n)
	}
	if len(w.looker.Users()) != 0 && len(w.sendgrid.Messages()) != 0 {
		t.Error("a plan provisioned someone")
	}
}

func TestSheetWithoutAnEmailColumnFailsThePoll(t *testing.T) {
	w := newSheetWorld(t, []string{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"})
	w.sheet.Columns = nil
	_, err := w.poller.Poll(context.Background(), w.sheet, false)
	if err == nil || !strings.Contains(err.Error(), "no email column") || !strings.Contains(err.Error(), formSheet) {
		t.Fatalf("error %v", err)
	}
	if n := w.sheets.Count(sheetstest.OpValuesBatchUpdate); n != 0 {
		t.Error("a failed poll wrote to the sheet")
	}
}

// A poll that runs out of time still writes its outcomes: the rows it
// could not finish say retrying, and the next poll finishes them without a
// second user or email. Looker answers in 200 ms,
// so a new user's five calls outlast the second the rows are given.
func TestSheetPollOutOfTimeWritesWhatRanAndLeavesTheRest(t *testing.T) {
	var rows [][]string
	for i := range 4 {
		rows = append(rows, []string{fmt.Sprintf("2026/12/04 9:%02d:00", i), fmt.Sprintf("p%d@example.com", i), "Person " + strconv.Itoa(i)})
	}
	w := newSheetWorldWith(t, lookertest.Options{Latency: 200 * time.Millisecond}, rows...)
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	if _, err := w.poller.Poll(ctx, w.sheet, false); err != nil {
		t.Fatalf("a poll out of time still writes its outcomes: %v", err)
	}
	for i, status := range w.statuses() {
		if !strings.HasPrefix(status, "retrying: ") {
			t.Errorf("row %d: status %q, want retrying", i+2, status)
		}
	}
	if _, err := w.poller.Poll(context.Background(), w.sheet, false); err != nil {
		t.Fatal(err)
	}
	for i, status := range w.statuses() {
		if !strings.HasPrefix(status, "created ") {
			t.Errorf("after the next poll, row %d: %q", i+2, status)
		}
	}
	w.assertPeople(t, len(rows))
}

// The scheduled task polls one sheet through the app as a deployment
// builds it: the sheets client given by the entry point, the credentials
// from the secrets, the rows through every configured target.
func TestScheduledTaskPollsTheSheetItNames(t *testing.T) {
	w := newSheetWorld(t, []string{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"})
	account := w.sheets.NewServiceAccount("onboard-task@test-project.iam.gserviceaccount.com")
	w.sheets.Share(formSheet, account.Email, sheetstest.Editor)
	cfgFile := filepath.Join(t.TempDir(), "onboard.yaml")
	policy, err := os.ReadFile(configPath(t))
	if err != nil {
		t.Fatal(err)
	}
	policy = append(policy, fmt.Sprintf(`
sources:
  sheets:
    - spreadsheet_id: %s
      sheet: %s
      columns: {Email Address: email, Full name: name}
      every: 10m
`, formSheet, formTab)...)
	if err := os.WriteFile(cfgFile, policy, 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"ONBOARD_CONFIG": cfgFile, "ONBOARD_STORE": "file:" + t.TempDir(),
		"LOOKERSDK_BASE_URL": w.looker.URL, "LOOKERSDK_CLIENT_ID": lookertest.DefaultClientID, "LOOKERSDK_CLIENT_SECRET": lookertest.DefaultClientSecret,
		"SENDGRID_API_KEY": sendgridKey, "SENDGRID_BASE_URL": w.sendgrid.URL,
		"GOOGLE_SHEETS_CREDENTIALS": string(account.CredentialsJSON()), "SHEETS_BASE_URL": w.sheets.URL,
	}
	logs := &logbuf.Buffer{}
	open := func(clients map[string]plugin.SourceClient) *App {
		a, err := New(context.Background(), Options{Getenv: func(k string) string { return vars[k] },
			Log: logging.New(logs, slog.LevelDebug, nil), SourceClients: clients})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		return a
	}
	a := open(map[string]plugin.SourceClient{"sheets": gsheets.Connect})

	schedules := Schedules(a.Config)
	if len(schedules) != 1 || schedules[0].Task != "sheets-poll:"+formSheet+"/"+formTab || schedules[0].Cron() != "*/10 * * * *" || schedules[0].Rate() != "rate(10 minutes)" {
		t.Fatalf("schedules %+v", schedules)
	}
	if err := a.RunTask(context.Background(), schedules[0].Task, nil); err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	if got := w.statuses(); len(got) != 1 || !strings.HasPrefix(got[0], "created ") {
		t.Fatalf("statuses %q\n%s", got, logs)
	}
	w.assertPeople(t, 1)
	// The next poll reuses the instance's client and its token.
	if err := a.RunTask(context.Background(), schedules[0].Task, nil); err != nil {
		t.Fatal(err)
	}
	if n := w.sheets.Count(sheetstest.OpToken); n != 1 {
		t.Errorf("%d token exchanges for two polls, want 1: a client per poll leaves every token it was given in the redactor", n)
	}

	err = a.RunTask(context.Background(), "sheets-poll:1NoSuchSheetListed", nil)
	if !errors.Is(err, ErrUnknownTask) || !strings.Contains(err.Error(), "1NoSuchSheetListed") {
		t.Errorf("a sheet the policy does not list: %v, want an unknown task naming it", err)
	}
	if err := open(nil).RunTask(context.Background(), schedules[0].Task, nil); err == nil || errors.Is(err, ErrUnknownTask) ||
		!strings.Contains(err.Error(), "cannot read Google Sheets") {
		t.Errorf("a build without the Sheets client: %v", err)
	}
	for _, secret := range append(w.sheets.IssuedTokens(), account.KeyID, "PRIVATE KEY") {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a credential reached the log:\n%s", logs)
		}
	}
}

// However many rows a poll runs, it makes two reads and one write: 500
// form answers cost the Sheets API's per-minute quota three requests. The
// first poll of a form's tab, whose grid has no column to spare, also grows
// the grid once for the status column.
func TestSheetPollOf500RowsStaysWithinTheQuota(t *testing.T) {
	var rows [][]string
	for i := range 500 {
		rows = append(rows, []string{fmt.Sprintf("2026/12/04 %02d:%02d:00", 9+i/60, i%60), fmt.Sprintf("p%03d@example.com", i), "Person " + strconv.Itoa(i)})
	}
	w := newSheetWorld(t, rows...)
	outcomes, err := w.poller.Poll(context.Background(), w.sheet, false)
	if err != nil || len(outcomes) != len(rows) {
		t.Fatalf("%d outcomes, %v", len(outcomes), err)
	}
	for i, status := range w.statuses() {
		if !strings.HasPrefix(status, "created ") {
			t.Fatalf("row %d: %q", i+2, status)
		}
	}
	requests := func() (reads, writes, grows int) {
		return w.sheets.Count(sheetstest.OpGet) + w.sheets.Count(sheetstest.OpValuesGet), w.sheets.Count(sheetstest.OpValuesBatchUpdate), w.sheets.Count(sheetstest.OpBatchUpdate)
	}
	if reads, writes, grows := requests(); reads != 2 || writes != 1 || grows != 1 {
		t.Errorf("%d reads, %d value writes and %d grid changes for 500 rows, want 2, 1 and 1", reads, writes, grows)
	}
	w.assertPeople(t, len(rows))

	for i := range 100 {
		w.sheets.AppendRow(formSheet, formTab, fmt.Sprintf("2026/12/05 %02d:%02d:00", 9+i/60, i%60), fmt.Sprintf("q%03d@example.com", i), "Q "+strconv.Itoa(i))
	}
	if _, err := w.poller.Poll(context.Background(), w.sheet, false); err != nil {
		t.Fatal(err)
	}
	if reads, writes, grows := requests(); reads != 4 || writes != 2 || grows != 1 {
		t.Errorf("after a second poll of 100 rows: %d reads, %d value writes, %d grid changes; want 4, 2 and still 1", reads, writes, grows)
	}
}

// appendingMidPoll is a sheet a form adds an answer to right after a poll
// has read it.
type appendingMidPoll struct {
	sheets.Spreadsheets
	append func()
}

func (a appendingMidPoll) ReadTable(ctx context.Context, id, tab string) (*sheets.Table, error) {
	t, err := a.Spreadsheets.ReadTable(ctx, id, tab)
	a.append()
	return t, err
}

// An answer arriving while a poll runs keeps its empty status through that
// poll's write-back, and the next poll runs it.
func TestSheetRowAppendedMidPollIsLeftForTheNextPoll(t *testing.T) {
	w := newSheetWorld(t, []string{"2026/12/04 9:00:00", "ada@example.com", "Ada Lovelace"})
	client := w.poller.Client
	var once sync.Once
	w.poller.Client = appendingMidPoll{Spreadsheets: client, append: func() {
		once.Do(func() { w.sheets.AppendRow(formSheet, formTab, "2026/12/04 9:05:00", "bob@example.com", "Bob Babbage") })
	}}
	outcomes, err := w.poller.Poll(context.Background(), w.sheet, false)
	if err != nil || len(outcomes) != 1 {
		t.Fatalf("poll: %+v %v", outcomes, err)
	}
	if got := w.statuses(); len(got) != 2 || !strings.HasPrefix(got[0], "created ") || got[1] != "" {
		t.Fatalf("statuses after the poll %q: the row added mid-poll must keep its empty status", got)
	}
	w.poller.Client = client
	if outcomes, err := w.poller.Poll(context.Background(), w.sheet, false); err != nil || len(outcomes) != 1 || outcomes[0].Row != 3 {
		t.Fatalf("next poll: %+v %v", outcomes, err)
	}
	w.assertPeople(t, 2)
}

// The instance's client is opened again when the source's settings change
// (a rotated key), and only then.
func TestSourceClientIsReopenedWhenItsSettingsChange(t *testing.T) {
	settings := map[string]string{"GOOGLE_SHEETS_CREDENTIALS": "key-1"}
	opened := 0
	var clients openClients
	connect := clients.reuse(sheets.Plugin, func(context.Context, plugin.Env) (any, error) {
		opened++
		return opened, nil
	})
	env := plugin.Env{Get: func(k string) string { return settings[k] }}
	first, _ := connect(context.Background(), env)
	again, _ := connect(context.Background(), env)
	settings["GOOGLE_SHEETS_CREDENTIALS"] = "key-2"
	rotated, _ := connect(context.Background(), env)
	if first != 1 || again != 1 || rotated != 2 {
		t.Errorf("clients %v %v %v, want 1, 1 (reused), 2 (a new key)", first, again, rotated)
	}
	failing := clients.reuse(plugin.Source{Name: "other"}, func(context.Context, plugin.Env) (any, error) { return nil, errors.New("no credentials") })
	if _, err := failing(context.Background(), env); err == nil {
		t.Error("a failed open was not reported")
	}
}
