package sheets_test

import (
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/sheets"
	"github.com/onboard-dev/onboard/core/targets"
)

const policy = `
allowed_email_domains: [example.com]
default_profile: analyst
profiles:
  analyst:
    looker: {roles: [Viewer]}
`

func TestSheetsAreReadFromThePolicy(t *testing.T) {
	cfg, err := targets.ParseConfig([]byte(policy + `
sources:
  sheets:
    - spreadsheet_id: 1AbCdEfGhIjKlMnOp
      sheet: Form Responses 1
      columns: {Email Address: email, Full name: name, Team: profile}
      status_column: onboard
      every: 10m
    - spreadsheet_id: 1ZyXwVuTsRqPoNmLk
`))
	if err != nil {
		t.Fatal(err)
	}
	got := sheets.Of(cfg)
	if len(got) != 2 || got[0].Tab != "Form Responses 1" || got[0].Columns["Team"] != "profile" || got[0].Every != 10*time.Minute || got[1].Every != sheets.DefaultEvery {
		t.Errorf("sheets %+v", got)
	}
	if cfg, err := targets.ParseConfig([]byte(policy)); err != nil || sheets.Of(cfg) != nil {
		t.Errorf("without sources: %v %v", sheets.Of(cfg), err)
	}
	for _, id := range []string{"1AbCdEfGhI", strings.Repeat("x", 100)} { // the shortest and longest ids taken
		if _, err := targets.ParseConfig([]byte(policy + "sources:\n  sheets:\n    - spreadsheet_id: " + id + "\n")); err != nil {
			t.Errorf("spreadsheet_id %s: %v", id, err)
		}
	}
}

func TestBadSheetsAreRefusedAtStartUp(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"sources:\n  sheets:\n    - spreadsheet_id: 1AbCdEfGhIjKlMnOp\n      colums: {}\n", `unknown key "colums"`},
		{"sources:\n  sheets:\n    - spreadsheet_id: https://docs.google.com/x\n", "sources.sheets.0.spreadsheet_id"},
		{"sources:\n  sheets:\n    - spreadsheet_id: 1AbCdEfGh\n", "sources.sheets.0.spreadsheet_id"},
		{"sources:\n  sheets:\n    - spreadsheet_id: " + strings.Repeat("x", 101) + "\n", "sources.sheets.0.spreadsheet_id"},
		{"sources:\n  sheets:\n    - spreadsheet_id: 1AbCdEfGhIjKlMnOp\n      every: 10s\n", "every: 10s"},
		{"sources:\n  sheets:\n    - spreadsheet_id: 1AbCdEfGhIjKlMnOp\n      columns: {Mail: e-mail}\n", `"e-mail", which is not a request field`},
		{"sources:\n  sheets:\n    - spreadsheet_id: 1AbCdEfGhIjKlMnOp\n    - spreadsheet_id: 1AbCdEfGhIjKlMnOp\n", "listed twice"},
		{"sources:\n  forms: []\n", "sources.forms (line 8): unknown source"},
	} {
		_, err := targets.ParseConfig([]byte(policy + c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
}
