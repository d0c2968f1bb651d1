package sheets

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// Plugin registers sources.sheets of onboard.yaml and the poll a
// deployment schedules for each sheet.
var Plugin = plugin.Source{
	Name:   sourceName,
	Policy: decodeSheets,
	Settings: []plugin.Setting{
		{Name: CredentialsSetting, Secret: true},
		{Name: BaseURLSetting},
	},
	Switches:  []string{CredentialsSetting, BaseURLSetting, "GOOGLE_APPLICATION_CREDENTIALS"},
	Task:      PollTask,
	Schedules: schedules,
	Run:       runPoll,
}

// sourceName is the source's key under sources in onboard.yaml.
const sourceName = "sheets"

// Settings the Sheets client reads.
const (
	// CredentialsSetting holds a service account's key file, the JSON
	// itself; unset, the application-default credentials are used.
	CredentialsSetting = "GOOGLE_SHEETS_CREDENTIALS"
	// BaseURLSetting overrides the Sheets API's origin (tests, sandbox).
	BaseURLSetting = "SHEETS_BASE_URL"
)

// PollTask is the scheduled job polling one sheet: "sheets-poll:" and the
// sheet's Name.
const PollTask = "sheets-poll"

// DefaultEvery is the poll interval of the deployed schedule when a sheet
// sets none.
const DefaultEvery = 5 * time.Minute

// pollConcurrency is how many rows a scheduled poll runs at a time, as
// many as an import's default.
const pollConcurrency = 4

func schedules(cfg *core.Config) []plugin.Schedule {
	var list []plugin.Schedule
	for _, s := range Of(cfg) {
		list = append(list, plugin.Schedule{Task: PollTask + ":" + s.Name(), Every: s.Every})
	}
	return list
}

// runPoll polls the sheet named, as its schedule asks.
func runPoll(ctx context.Context, env plugin.SourceEnv, name string) error {
	i := slices.IndexFunc(Of(env.Config), func(s Sheet) bool { return s.Name() == name })
	if i < 0 {
		return fmt.Errorf("sheet %q: %w under sources.sheets; remove its schedule or list it again", name, plugin.ErrUnknownJob)
	}
	if env.Connect == nil {
		return fmt.Errorf("sheet %q: this build of onboard cannot read Google Sheets; its polls run in the function built with the Sheets client", name)
	}
	client, err := env.Connect(ctx, env.Env)
	if err != nil {
		return err
	}
	spreadsheets, ok := client.(Spreadsheets)
	if !ok {
		return fmt.Errorf("sheet %q: the sheets client given is a %T, not a Spreadsheets", name, client)
	}
	poller := &Poller{Client: spreadsheets, Engine: env.Engine, Store: env.Store, Concurrency: pollConcurrency, Log: env.Log}
	outcomes, err := poller.Poll(ctx, Of(env.Config)[i], false)
	if errors.Is(err, ErrPollInProgress) {
		// The poll running now takes every pending row: nothing is left
		// for this one, and a retry would only queue behind it.
		env.Log.Info("sheet poll skipped: another poll of it is running", "sheet", name)
		return nil
	}
	if err != nil {
		return err
	}
	for _, o := range outcomes {
		// The outcome's first word only: the rest of an error may quote
		// the row's cells, which are personal data.
		outcome, _, _ := strings.Cut(o.Status, " ")
		env.Log.Info("sheet row done", "sheet", name, "row", o.Row, "outcome", strings.TrimSuffix(outcome, ":"))
	}
	env.Log.Info("sheet polled", "sheet", name, "rows", len(outcomes))
	return nil
}

var spreadsheetIDChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// isSpreadsheetID checks the length apart from the regexp: as a counted
// repetition ({10,100}) it compiled to a thousand instructions in every cold
// start's init, policy with sheets or not.
func isSpreadsheetID(s string) bool {
	return len(s) >= 10 && len(s) <= 100 && spreadsheetIDChars.MatchString(s)
}

// Of lists the sheets cfg configures.
func Of(cfg *core.Config) []Sheet {
	s, _ := plugin.SourceSection(cfg, sourceName).([]Sheet)
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
	default:
		if err := plugin.CheckEvery(s.Every); err != nil {
			return fmt.Errorf("every: %w", err)
		}
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
