//go:build !onboard_nofakes

package sheets

import (
	"cmp"
	"fmt"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
)

func init() { plugin.RegisterFake(sourceName, StartFake) }

// SandboxTab is the tab the sandbox seeds for a sheet that names none: a
// Google Form's responses tab.
const SandboxTab = "Form Responses 1"

// sandboxAccount is the service account the sandbox's onboard reads as.
const sandboxAccount = "onboard@sandbox.iam.gserviceaccount.com"

// StartFake starts the sandbox's Google Sheets: every sheet cfg lists,
// shared with onboard's account, holding the answers a form would have
// collected (one of them invalid, to show an error status), with the
// columns the sheet's mapping reads.
func StartFake(cfg *core.Config, _ string) (*plugin.Fake, error) {
	srv := sheetstest.NewServer(sheetstest.Options{})
	account := srv.NewServiceAccount(sandboxAccount)
	domain := "example.com"
	if len(cfg.AllowedEmailDomains) > 0 {
		domain = cfg.AllowedEmailDomains[0]
	}
	for _, s := range Of(cfg) {
		header := []string{"Timestamp", headerFor(s, "email"), headerFor(s, "name")}
		stamp := time.Now().UTC().Add(-time.Hour)
		row := func(i int, email, name string) []string {
			return []string{stamp.Add(time.Duration(i) * time.Minute).Format("2006/01/02 15:04:05"), email, name}
		}
		srv.AddSpreadsheet(sheetstest.Spreadsheet{ID: s.SpreadsheetID, Title: "Sandbox form (responses)", Tabs: []sheetstest.Tab{{
			Title: cmp.Or(s.Tab, SandboxTab), Columns: len(header) + 1,
			Values: [][]string{
				header,
				row(0, "ada@"+domain, "Ada Lovelace"),
				row(1, "grace@"+domain, "Grace Hopper"),
				row(2, "not-an-email", "Typo Person"),
			},
		}}})
		srv.Share(s.SpreadsheetID, account.Email, sheetstest.Editor)
	}
	return &plugin.Fake{
		Settings: map[string]string{
			BaseURLSetting:     srv.URL,
			CredentialsSetting: string(account.CredentialsJSON()),
		},
		Server: srv, Close: srv.Close,
		Writes: func() []string {
			var writes []string
			for _, r := range srv.Requests() {
				if r.Op == sheetstest.OpValuesBatchUpdate || r.Op == sheetstest.OpBatchUpdate {
					writes = append(writes, fmt.Sprintf("%s %s", r.Method, r.Path))
				}
			}
			return writes
		},
	}, nil
}

// headerFor is the header a sheet's mapping reads field from: the mapped
// header, else the field's own name.
func headerFor(s Sheet, field string) string {
	for header, f := range s.Columns {
		if f == field {
			return header
		}
	}
	return field
}
