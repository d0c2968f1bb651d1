package sheets

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// Plugin registers sources.sheets of onboard.yaml.
var Plugin = plugin.Source{Name: "sheets", Policy: decodeSheets}

// Poll intervals of the deployed schedule.
const (
	DefaultEvery = 5 * time.Minute
	// MinEvery keeps a schedule inside the Sheets API's per-minute quota
	// with room for `onboard sheets sync` beside it.
	MinEvery = time.Minute
)

var spreadsheetIDChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// isSpreadsheetID checks the length apart from the regexp: as a counted
// repetition ({10,100}) it compiled to a thousand instructions in every cold
// start's init, policy with sheets or not.
func isSpreadsheetID(s string) bool {
	return len(s) >= 10 && len(s) <= 100 && spreadsheetIDChars.MatchString(s)
}

// Of lists the sheets cfg configures.
func Of(cfg *core.Config) []Sheet {
	s, _ := plugin.SourceSection(cfg, Plugin.Name).([]Sheet)
	return s
}

func decodeSheets(node *yaml.Node, _ *core.Config) (any, error) {
	if node == nil {
		return []Sheet(nil), nil
	}
	var list []Sheet
	if err := core.DecodeYAML(node, &list); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i := range list {
		s := &list[i]
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("%d.%w", i, err)
		}
		if seen[s.Name()] {
			return nil, fmt.Errorf("%d: %s is listed twice", i, s.Name())
		}
		seen[s.Name()] = true
	}
	return list, nil
}

func (s *Sheet) check() error {
	if !isSpreadsheetID(s.SpreadsheetID) {
		return fmt.Errorf("spreadsheet_id: %q is not a spreadsheet id (the part of the sheet's URL after /d/)", s.SpreadsheetID)
	}
	switch {
	case s.Every == 0:
		s.Every = DefaultEvery
	case s.Every < MinEvery:
		return fmt.Errorf("every: %s is more often than once a minute", s.Every)
	}
	for header, field := range s.Columns {
		if !core.IsColumn(field) {
			return fmt.Errorf("columns: %q maps to %q, which is not a request field (email, name, first_name, last_name, profile, action, external_user_id, idempotency_key, attr.NAME)", header, field)
		}
		if strings.TrimSpace(header) == s.statusColumn() {
			return fmt.Errorf("columns: %q is the status column", header)
		}
	}
	return nil
}
