package gsheets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/sheets"
	"github.com/onboard-dev/onboard/core/sheets/gsheets"
	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
	"github.com/onboard-dev/onboard/internal/fakehttp"
	"github.com/onboard-dev/onboard/internal/leakcheck"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

const (
	sheetID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
	formTab = "Form Responses 1"
	account = "onboard@acme-prod.iam.gserviceaccount.com"
)

var header = []string{"Timestamp", "Email Address", "Full name", "Team"}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// setup is the fake with a form's responses tab (exactly as many columns
// as the form has, as Google Forms makes it) shared with onboard's
// account, and a client built from the key the fake hands out.
type setup struct {
	t      *testing.T
	srv    *sheetstest.Server
	acct   *sheetstest.ServiceAccount
	clock  *clock
	client *gsheets.Client

	mu     sync.Mutex
	slept  []time.Duration
	tokens []string
}

func newSetup(t *testing.T, opts sheetstest.Options, rows ...[]string) *setup {
	t.Helper()
	s := &setup{t: t, clock: &clock{now: time.Now().Truncate(time.Minute)}}
	opts.Now = s.clock.Now
	s.srv = sheetstest.NewTestServer(t, opts)
	s.srv.AddSpreadsheet(sheetstest.Spreadsheet{ID: sheetID, Tabs: []sheetstest.Tab{
		{Title: formTab, Columns: len(header), Values: append([][]string{header}, rows...)},
		{Title: "It's", Values: [][]string{{"a"}, {"b"}}},
	}})
	s.acct = s.srv.NewServiceAccount(account)
	s.srv.Share(sheetID, account, sheetstest.Editor)
	s.client = s.newClient(gsheets.Config{CredentialsJSON: s.acct.CredentialsJSON(), BaseURL: s.srv.URL})
	return s
}

// newClient fills in the test's clock-moving sleep and token log.
func (s *setup) newClient(cfg gsheets.Config) *gsheets.Client {
	s.t.Helper()
	cfg.Sleep = func(_ context.Context, d time.Duration) error {
		s.mu.Lock()
		s.slept = append(s.slept, d)
		s.mu.Unlock()
		s.clock.mu.Lock()
		s.clock.now = s.clock.now.Add(d)
		s.clock.mu.Unlock()
		return nil
	}
	cfg.TokenIssued = func(tok string) {
		s.mu.Lock()
		s.tokens = append(s.tokens, tok)
		s.mu.Unlock()
	}
	c, err := gsheets.New(context.Background(), cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *setup) sleeps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.slept...)
}

func answers(n int) [][]string {
	rows := make([][]string, n)
	for i := range rows {
		rows[i] = []string{fmt.Sprintf("1/2/2026 10:%02d:%02d", i/60%60, i%60), fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("User %d", i), "eng"}
	}
	return rows
}

func TestReadTableInTwoReads(t *testing.T) {
	s := newSetup(t, sheetstest.Options{}, []string{"1/2/2026 10:00:00", "ada@example.com", "Ada"}, []string{}, []string{"1/2/2026 11:00:00", "", "Bob", "ops"})
	ctx := context.Background()
	for _, tab := range []string{"", formTab} {
		table, err := s.client.ReadTable(ctx, sheetID, tab)
		if err != nil {
			t.Fatal(err)
		}
		want := &sheets.Table{Spreadsheet: sheetID, Tab: formTab, SheetID: 0, GridRows: 1000, GridColumns: 4, Header: header,
			Rows: [][]string{{"1/2/2026 10:00:00", "ada@example.com", "Ada"}, {}, {"1/2/2026 11:00:00", "", "Bob", "ops"}}}
		if !reflect.DeepEqual(table, want) {
			t.Errorf("tab %q:\n%+v\nwant\n%+v", tab, table, want)
		}
		if table.RowNumber(2) != 4 {
			t.Errorf("row number of Rows[2] = %d", table.RowNumber(2))
		}
	}
	if got := [3]int{s.srv.Count(sheetstest.OpToken), s.srv.Count(sheetstest.OpGet), s.srv.Count(sheetstest.OpValuesGet)}; got != [3]int{1, 2, 2} {
		t.Errorf("token, get, values.get requests = %v; want one token for both reads, two reads each", got)
	}
	for _, r := range s.srv.Requests() {
		switch r.Op {
		case sheetstest.OpGet:
			if r.Query.Get("fields") == "" {
				t.Errorf("spreadsheets.get asks for every field: %v", r.Query)
			}
		case sheetstest.OpValuesGet:
			if r.Range != "'Form Responses 1'" || r.Query.Get("majorDimension") != "ROWS" || r.Query.Get("valueRenderOption") != "FORMATTED_VALUE" {
				t.Errorf("values.get %q %v", r.Range, r.Query)
			}
		}
	}
	quoted, err := s.client.ReadTable(ctx, sheetID, "It's")
	if err != nil || !reflect.DeepEqual(quoted.Header, []string{"a"}) || !reflect.DeepEqual(quoted.Rows, [][]string{{"b"}}) || quoted.SheetID == 0 {
		t.Errorf("a tab with a quote in its name: %+v, %v", quoted, err)
	}
}

// The status column of a form's tab is one past its grid: the first
// write grows the grid, then writes every row's status in one batch.
func TestWriteCellsOneBatchFor500Rows(t *testing.T) {
	s := newSetup(t, sheetstest.Options{}, answers(500)...)
	ctx := context.Background()
	table, err := s.client.ReadTable(ctx, sheetID, formTab)
	if err != nil {
		t.Fatal(err)
	}
	cells := []sheets.Cell{{Row: 1, Column: 5, Value: "onboard"}}
	for i := range table.Rows {
		status := "created 2026-01-02T10:00:00Z req-" + fmt.Sprint(i)
		if i == 7 {
			status = "error: =HYPERLINK(\"http://evil\") is not an email" // a form's text, never a formula
		}
		cells = append(cells, sheets.Cell{Row: table.RowNumber(i), Column: 5, Value: status})
	}
	n, err := s.client.WriteCells(ctx, table, cells)
	if err != nil || n != 501 {
		t.Fatalf("WriteCells = %d, %v", n, err)
	}
	got := s.srv.Values(sheetID, formTab)
	if got[0][4] != "onboard" || got[1][4] != "created 2026-01-02T10:00:00Z req-0" || got[8][4] != cells[8].Value || got[500][4] != cells[500].Value {
		t.Errorf("statuses: %q %q %q %q", got[0][4], got[1][4], got[8][4], got[500][4])
	}
	if table.GridColumns != 5 {
		t.Errorf("table's grid now %d columns", table.GridColumns)
	}
	counts := map[sheetstest.Op]int{}
	for _, r := range s.srv.Requests() {
		counts[r.Op]++
		if r.Op == sheetstest.OpValuesBatchUpdate {
			var body struct {
				ValueInputOption string
				Data             []struct{ Range string }
			}
			_ = json.Unmarshal(r.Body, &body)
			if body.ValueInputOption != "RAW" || len(body.Data) != 1 || body.Data[0].Range != "'Form Responses 1'!E1:E501" {
				t.Errorf("batch: %s, %+v", body.ValueInputOption, body.Data)
			}
		}
	}
	want := map[sheetstest.Op]int{sheetstest.OpToken: 1, sheetstest.OpGet: 1, sheetstest.OpValuesGet: 1, sheetstest.OpBatchUpdate: 1, sheetstest.OpValuesBatchUpdate: 1}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("requests %v, want %v", counts, want)
	}

	// The next poll: the grid has room, so one write; scattered cells make
	// one range per run of rows.
	table, _ = s.client.ReadTable(ctx, sheetID, formTab)
	if _, err := s.client.WriteCells(ctx, table, []sheets.Cell{{Row: 9, Column: 5, Value: "retrying: Looker 503"}, {Row: 3, Column: 5, Value: "updated"}, {Row: 4, Column: 5, Value: "unchanged"}}); err != nil {
		t.Fatal(err)
	}
	last := s.srv.Requests()[len(s.srv.Requests())-1]
	if s.srv.Count(sheetstest.OpBatchUpdate) != 1 || !strings.Contains(string(last.Body), `"'Form Responses 1'!E3:E4"`) || !strings.Contains(string(last.Body), `"'Form Responses 1'!E9"`) {
		t.Errorf("second write: %d grid changes, body %s", s.srv.Count(sheetstest.OpBatchUpdate), last.Body)
	}
	if _, err := s.client.WriteCells(ctx, table, []sheets.Cell{{Row: 3, Column: 5}, {Row: 3, Column: 5}}); err == nil {
		t.Error("a cell twice in one batch was accepted")
	}
}

func TestWriteCellsInAPlanSendsNothing(t *testing.T) {
	s := newSetup(t, sheetstest.Options{}, answers(2)...)
	table, err := s.client.ReadTable(context.Background(), sheetID, formTab)
	if err != nil {
		t.Fatal(err)
	}
	plan := &core.Plan{}
	n, err := s.client.WriteCells(core.WithPlan(context.Background(), plan), table, []sheets.Cell{{Row: 1, Column: 5, Value: "onboard"}, {Row: 2, Column: 5, Value: "created"}})
	if err != nil || n != 0 {
		t.Fatalf("planned write = %d, %v", n, err)
	}
	if s.srv.Count(sheetstest.OpBatchUpdate)+s.srv.Count(sheetstest.OpValuesBatchUpdate) != 0 {
		t.Error("a plan wrote to the sheet")
	}
	writes := plan.Writes()
	if len(writes) != 2 || writes[0].Target != "sheets" || !strings.Contains(writes[1].Detail, "E2=created") {
		t.Errorf("plan %+v", writes)
	}
	if table.GridColumns != 4 {
		t.Errorf("a planned grid change changed the table: %d columns", table.GridColumns)
	}
}

func TestErrorsNameTheSpreadsheetAndWhatToDo(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		arrange func(s *setup)
		act     func(s *setup) error
		kind    error
		says    []string
		status  int
	}{
		{"not shared", func(s *setup) { s.srv.Unshare(sheetID, account) }, read(formTab), gsheets.ErrNotShared,
			[]string{sheetID, "share it with " + account + " as Editor"}, 403},
		{"shared as Viewer", nil, func(s *setup) error {
			table, err := s.client.ReadTable(ctx, sheetID, formTab)
			if err != nil {
				return err
			}
			s.srv.Share(sheetID, account, sheetstest.Viewer)
			_, err = s.client.WriteCells(ctx, table, []sheets.Cell{{Row: 2, Column: 1, Value: "x"}})
			return err
		}, gsheets.ErrReadOnly, []string{sheetID, "share it with " + account + " as Editor"}, 403},
		{"no such spreadsheet", nil, func(s *setup) error {
			_, err := s.client.ReadTable(ctx, "1NoSuchSheet", "")
			return err
		}, gsheets.ErrNoSpreadsheet, []string{"1NoSuchSheet", "spreadsheet_id"}, 404},
		{"no such tab", nil, read("Form Responses 2"), gsheets.ErrNoTab,
			[]string{sheetID, `"Form Responses 2"`, `"Form Responses 1", "It's"`}, 0},
		{"tab renamed between the reads", func(s *setup) {
			s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpValuesGet, Status: 400, Times: 1,
				Body: `{"error":{"code":400,"message":"Unable to parse range: 'Form Responses 1'","status":"INVALID_ARGUMENT"}}`})
		}, read(formTab), gsheets.ErrNoTab, []string{sheetID, `"Form Responses 1"`}, 400},
		{"tab renamed before the write", func(s *setup) {
			s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpValuesBatchUpdate, Status: 400, Times: 1,
				Body: `{"error":{"code":400,"message":"Invalid data[0]: Unable to parse range: 'Form Responses 1'!A2","status":"INVALID_ARGUMENT"}}`})
		}, func(s *setup) error {
			table, err := s.client.ReadTable(ctx, sheetID, formTab)
			if err != nil {
				return err
			}
			_, err = s.client.WriteCells(ctx, table, []sheets.Cell{{Row: 2, Column: 1, Value: "x"}})
			return err
		}, gsheets.ErrNoTab, []string{sheetID, `"Form Responses 1"`}, 400},
		{"key deleted", func(s *setup) { s.srv.DeleteKey(account) }, read(formTab), gsheets.ErrCredentials,
			[]string{account, "invalid_grant", "GOOGLE_SHEETS_CREDENTIALS"}, 400},
		{"API not enabled", func(s *setup) {
			s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpGet, Status: 403, Body: `{"error":{"code":403,"message":"Google Sheets API has not been used in project 123 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/sheets.googleapis.com/overview?project=123 then retry.","status":"PERMISSION_DENIED"}}`})
		}, read(formTab), nil, []string{sheetID, "403", "Enable it by visiting"}, 403},
		{"Google down", func(s *setup) { s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpGet, Status: 503}) }, read(formTab), nil,
			[]string{sheetID, "503"}, 503},
		{"not an id", nil, func(s *setup) error {
			_, err := s.client.ReadTable(ctx, "https://docs.google.com/spreadsheets/d/1AbC/edit", "")
			return err
		}, nil, []string{"between /d/ and /edit"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSetup(t, sheetstest.Options{})
			if c.arrange != nil {
				c.arrange(s)
			}
			err := c.act(s)
			if err == nil {
				t.Fatal("no error")
			}
			if c.kind != nil && !errors.Is(err, c.kind) {
				t.Errorf("%v is not %v", err, c.kind)
			}
			for _, want := range c.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
			if got := httpretry.StatusOf(err); got != c.status {
				t.Errorf("status %d, want %d", got, c.status)
			}
			// Only a 5xx is worth another try; each try costs quota.
			attempts := 0
			for _, r := range s.srv.Requests() {
				if r.Status == c.status && c.status != 0 {
					attempts++
				}
			}
			if want := map[bool]int{true: gsheets.DefaultMaxAttempts, false: 1}[c.status >= 500]; c.status != 0 && attempts != want {
				t.Errorf("%d requests answered %d, want %d", attempts, c.status, want)
			}
		})
	}
}

func read(tab string) func(s *setup) error {
	return func(s *setup) error {
		_, err := s.client.ReadTable(context.Background(), sheetID, tab)
		return err
	}
}

// Over the per-minute quota, the 429 (which says no Retry-After) is
// retried once a minute has passed; a Retry-After Google sends is used
// as is; a wait longer than the client may sleep goes back to the caller.
func TestQuota429IsWaitedOut(t *testing.T) {
	s := newSetup(t, sheetstest.Options{QuotaPerMinute: 3}, answers(3)...)
	ctx := context.Background()
	if _, err := s.client.ReadTable(ctx, sheetID, formTab); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.ReadTable(ctx, sheetID, formTab); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, r := range s.srv.Requests() {
		if r.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	if got := s.sleeps(); refused != 1 || !reflect.DeepEqual(got, []time.Duration{time.Minute}) {
		t.Errorf("%d refusals, slept %v; want one refusal and one minute's wait", refused, got)
	}

	s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpValuesGet, Status: 429, RetryAfter: "7", Times: 1})
	if _, err := s.client.ReadTable(ctx, sheetID, formTab); err != nil {
		t.Fatal(err)
	}
	if got := s.sleeps(); got[len(got)-1] != 7*time.Second {
		t.Errorf("slept %v after Retry-After: 7", got)
	}

	impatient := s.newClient(gsheets.Config{CredentialsJSON: s.acct.CredentialsJSON(), BaseURL: s.srv.URL, MaxDelay: 10 * time.Second})
	s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpGet, Status: 429, Times: 1})
	_, err := impatient.ReadTable(ctx, sheetID, formTab)
	var se *gsheets.Error
	if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter != time.Minute || !strings.Contains(err.Error(), "quota") {
		t.Errorf("a wait past MaxDelay: %v", err)
	}
}

// A write whose answer was lost is sent again: it sets the same cells,
// so the retry changes nothing more.
func TestLostWriteAnswerIsRetried(t *testing.T) {
	s := newSetup(t, sheetstest.Options{}, answers(2)...)
	ctx := context.Background()
	table, err := s.client.ReadTable(ctx, sheetID, formTab)
	if err != nil {
		t.Fatal(err)
	}
	s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpValuesBatchUpdate, AfterApply: true, DropConnection: true, Times: 1})
	s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpBatchUpdate, AfterApply: true, DropConnection: true, Times: 1})
	if _, err := s.client.WriteCells(ctx, table, []sheets.Cell{{Row: 1, Column: 5, Value: "onboard"}, {Row: 2, Column: 5, Value: "created"}}); err != nil {
		t.Fatal(err)
	}
	if s.srv.Count(sheetstest.OpValuesBatchUpdate) != 2 || s.srv.Count(sheetstest.OpBatchUpdate) != 2 {
		t.Errorf("%d writes, %d grid changes; want each sent twice", s.srv.Count(sheetstest.OpValuesBatchUpdate), s.srv.Count(sheetstest.OpBatchUpdate))
	}
	read, _ := s.client.ReadTable(ctx, sheetID, formTab)
	if read.GridColumns != 5 || read.Header[4] != "onboard" || read.Rows[0][4] != "created" {
		t.Errorf("after the retries: grid %d, %q %q", read.GridColumns, read.Header, read.Rows[0])
	}
}

// Nothing a credential is made of reaches an error or a log line: not the
// private key, not the signed assertion, not an access token, whatever an
// answer echoes back.
func TestNoCredentialInErrorsOrLogs(t *testing.T) {
	s := newSetup(t, sheetstest.Options{}, answers(2)...)
	ctx := context.Background()
	logs := &logbuf.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	if _, err := s.client.ReadTable(ctx, sheetID, formTab); err != nil {
		t.Fatal(err)
	}
	var errs []error
	// An answer quoting the token it was sent.
	for _, tok := range s.tokens {
		s.srv.InjectFault(sheetstest.Fault{Op: sheetstest.OpGet, Status: 400, Times: 1,
			Body: fmt.Sprintf(`{"error":{"code":400,"message":"bad credential %s (%x)","status":"INVALID_ARGUMENT"}}`, tok, tok)})
	}
	_, err := s.client.ReadTable(ctx, sheetID, formTab)
	if err == nil || !strings.Contains(err.Error(), "bad credential [redacted]") {
		t.Errorf("Google's message, masked, is not in the error: %v", err)
	}
	errs = append(errs, err)
	// A proxy that echoes the whole request back, token and all, for the
	// data calls and for the token exchange.
	for _, path := range []string{"/v4/", "/token"} {
		for _, status := range []int{400, 401, 403, 429, 502} {
			proxy := fakehttp.EchoingProxy(t, s.srv.URL, func(r *http.Request) int {
				if strings.HasPrefix(r.URL.Path, path) {
					return status
				}
				return 0
			})
			creds := strings.ReplaceAll(string(s.acct.CredentialsJSON()), s.srv.URL, proxy)
			c := s.newClient(gsheets.Config{CredentialsJSON: []byte(creds), BaseURL: proxy, MaxAttempts: 1})
			_, err := c.ReadTable(ctx, sheetID, formTab)
			if err == nil || strings.Contains(err.Error(), fakehttp.EchoMarker) {
				t.Errorf("%s %d: %v", path, status, err)
			}
			errs = append(errs, err)
		}
	}
	cfg := gsheets.Config{CredentialsJSON: s.acct.CredentialsJSON(), BaseURL: s.srv.URL}
	logger.Info("config", "config", cfg)
	for _, err := range errs {
		logger.Error("poll failed", "err", err)
	}
	text := logs.String() + fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg)
	if b, err := json.Marshal(cfg); err == nil {
		text += string(b)
	}

	var key struct {
		PrivateKey string `json:"private_key"`
	}
	_ = json.Unmarshal(s.acct.CredentialsJSON(), &key)
	secrets := map[string]string{"private key": strings.Split(key.PrivateKey, "\n")[1]}
	for i, r := range s.srv.Requests() {
		if r.Op == sheetstest.OpToken {
			form, _ := url.ParseQuery(string(r.Body))
			assertion := form.Get("assertion")
			secrets[fmt.Sprintf("assertion %d", i)] = assertion
			secrets[fmt.Sprintf("assertion %d's signature", i)] = assertion[strings.LastIndex(assertion, ".")+1:]
		}
	}
	s.mu.Lock()
	for i, tok := range s.tokens {
		secrets[fmt.Sprintf("access token %d", i)] = tok
	}
	s.mu.Unlock()
	if len(s.tokens) < 2 {
		t.Fatalf("only %d tokens issued: the echo cases did not reach the API", len(s.tokens))
	}
	if found := leakcheck.Find(text, secrets); found != nil {
		t.Errorf("leaked %v in:\n%s", found, text)
	}
}

// With Google's SDK debug log switched on, the client still writes
// nothing of the sheet (everyone's email) to stderr.
func TestSDKDebugLogStaysOff(t *testing.T) {
	t.Setenv("GOOGLE_SDK_GO_LOGGING_LEVEL", "debug")
	s := newSetup(t, sheetstest.Options{}, answers(1)...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	c := s.newClient(gsheets.Config{CredentialsJSON: s.acct.CredentialsJSON(), BaseURL: s.srv.URL})
	_, readErr := c.ReadTable(context.Background(), sheetID, formTab)
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	if readErr != nil {
		t.Fatal(readErr)
	}
	if strings.Contains(string(out), "user0@example.com") || strings.Contains(string(out), "api response") {
		t.Errorf("the SDK logged the sheet:\n%s", out)
	}
}

func TestWhereTokensMayComeFromAndGo(t *testing.T) {
	s := newSetup(t, sheetstest.Options{})
	ctx := context.Background()
	fakeKey := s.acct.CredentialsJSON()
	googleKey := []byte(strings.ReplaceAll(string(fakeKey), s.srv.URL+"/token", "https://oauth2.googleapis.com/token"))
	elsewhereKey := []byte(strings.ReplaceAll(string(fakeKey), s.srv.URL+"/token", "https://tokens.example.com/token"))
	var pk struct {
		PrivateKey string `json:"private_key"`
	}
	_ = json.Unmarshal(fakeKey, &pk)
	brokenKey := []byte(strings.Replace(string(fakeKey), strings.Split(pk.PrivateKey, "\n")[2], "", 1))
	userKey := []byte(`{"type":"authorized_user","client_id":"x","client_secret":"s3cr3t-value","refresh_token":"r"}`)
	cases := []struct {
		name string
		cfg  gsheets.Config
		says string
	}{
		{"the fake's key against Google", gsheets.Config{CredentialsJSON: fakeKey}, "not Google's"},
		{"Google's key against the fake", gsheets.Config{CredentialsJSON: googleKey, BaseURL: s.srv.URL}, "SHEETS_BASE_URL is " + s.srv.URL},
		{"a third host's token endpoint", gsheets.Config{CredentialsJSON: elsewhereKey}, "not Google's"},
		{"a base URL with a path", gsheets.Config{CredentialsJSON: fakeKey, BaseURL: s.srv.URL + "/v4/spreadsheets"}, "without a path"},
		{"a base URL with credentials", gsheets.Config{CredentialsJSON: fakeKey, BaseURL: "https://user:hunter2@sheets.googleapis.com"}, "SHEETS_BASE_URL"},
		{"not a service account", gsheets.Config{CredentialsJSON: userKey}, `got type "authorized_user"`},
		{"a broken key", gsheets.Config{CredentialsJSON: brokenKey, BaseURL: s.srv.URL}, "private_key is not"},
	}
	for _, c := range cases {
		_, err := gsheets.New(ctx, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.says)
			continue
		}
		if found := leakcheck.Find(err.Error(), map[string]string{"key": strings.Split(pk.PrivateKey, "\n")[1], "secret": "s3cr3t-value", "password": "hunter2"}); found != nil {
			t.Errorf("%s: the error leaks %v: %v", c.name, found, err)
		}
	}
	if n := s.srv.Count(""); n != 0 {
		t.Errorf("%d requests reached the fake from clients that were refused", n)
	}

	// Application-default credentials from a key file work the same way.
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, fakeKey, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
	adc := s.newClient(gsheets.Config{BaseURL: s.srv.URL})
	broken := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(broken, brokenKey, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", broken)
	if _, err := gsheets.New(ctx, gsheets.Config{BaseURL: s.srv.URL}); err == nil || !strings.Contains(err.Error(), "private_key is not") {
		t.Errorf("ADC with a broken key: %v", err)
	}
	if adc.Account() != account {
		t.Errorf("ADC account %q", adc.Account())
	}
	if _, err := adc.ReadTable(ctx, sheetID, ""); err != nil {
		t.Errorf("ADC read: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	cfg, err := gsheets.ConfigFromEnv(env(map[string]string{"GOOGLE_SHEETS_CREDENTIALS": ` {"type":"service_account"} `, "SHEETS_BASE_URL": "http://127.0.0.1:9/"}))
	if err != nil || string(cfg.CredentialsJSON) != `{"type":"service_account"}` || cfg.BaseURL != "http://127.0.0.1:9/" {
		t.Errorf("%+v, %v", cfg, err)
	}
	if cfg, err := gsheets.ConfigFromEnv(env(nil)); err != nil || cfg.CredentialsJSON != nil || cfg.BaseURL != "" {
		t.Errorf("empty: %+v, %v", cfg, err)
	}
	for name, value := range map[string]string{
		"GOOGLE_SHEETS_CREDENTIALS": "/etc/onboard/key-s3cr3t.json",
		"SHEETS_BASE_URL":           "ftp://s3cr3t.example.com",
	} {
		_, err := gsheets.ConfigFromEnv(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "/etc/onboard") {
			t.Errorf("%s=%q: %v", name, value, err)
		}
	}
}

// On Google's runtimes the credentials come from the metadata server, whose
// tokens name no account: the client asks it for the email, so an error
// says which address to share a sheet with.
func TestMetadataCredentialsLearnTheirAccount(t *testing.T) {
	const fnAccount = "onboard-fn@acme-prod.iam.gserviceaccount.com"
	for _, c := range []struct {
		name   string
		status int
		want   string
	}{
		{"the server names the account", http.StatusOK, fnAccount},
		{"the server does not answer", http.StatusNotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Metadata-Flavor") != "Google" || r.URL.Path != "/computeMetadata/v1/instance/service-accounts/default/email" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Metadata-Flavor", "Google")
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, fnAccount)
			}))
			defer srv.Close()
			home := t.TempDir()
			t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(srv.URL, "http://"))
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
			t.Setenv("HOME", home)
			t.Setenv("CLOUDSDK_CONFIG", home)
			client, err := gsheets.New(context.Background(), gsheets.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if client.Account() != c.want {
				t.Errorf("Account() = %q, want %q", client.Account(), c.want)
			}
		})
	}
}
