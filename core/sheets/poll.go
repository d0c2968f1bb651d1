package sheets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/runner"
	"github.com/onboard-dev/onboard/core/state"
)

// Sheet is one spreadsheet tab onboard polls for new rows (onboard.yaml,
// sources.sheets).
type Sheet struct {
	SpreadsheetID string `yaml:"spreadsheet_id"`
	// Tab is the tab's title; empty: the first visible tab.
	Tab string `yaml:"sheet"`
	// Columns maps header text to a request field (email, name, profile,
	// attr.NAME, …); a header without an entry is used as it is when it
	// names a field, and otherwise ignored (a form's Timestamp).
	Columns map[string]string `yaml:"columns"`
	// StatusColumn is the header of the column onboard writes each row's
	// outcome into; created when missing.
	StatusColumn string `yaml:"status_column"`
	// Every is the poll interval of the deployed schedule.
	Every time.Duration `yaml:"every"`
}

// DefaultStatusColumn is the status column's header when none is configured.
const DefaultStatusColumn = "onboard"

// Name names the sheet in logs, errors and the poll's lease.
func (s Sheet) Name() string {
	if s.Tab == "" {
		return s.SpreadsheetID
	}
	return s.SpreadsheetID + "/" + s.Tab
}

func (s Sheet) statusColumn() string {
	if s.StatusColumn == "" {
		return DefaultStatusColumn
	}
	return s.StatusColumn
}

// Row outcomes written into the status column.
const (
	statusError    = "error: "
	statusRetrying = "retrying: "
)

// RowOutcome is what one poll did with one row.
type RowOutcome struct {
	Row    int    // the sheet's row number
	Email  string // as the row has it
	Status string // what was (or, in a plan, would be) written into its status cell
	Writes []core.PlannedWrite
}

// Spreadsheets reads and writes tabs: Google's Sheets API (package
// gsheets) in a deployment.
type Spreadsheets interface {
	// ReadTable reads a tab, the first visible one when tab is "".
	ReadTable(ctx context.Context, spreadsheetID, tab string) (*Table, error)
	// WriteCells writes cells of t's tab in one write.
	WriteCells(ctx context.Context, t *Table, cells []Cell) (int, error)
}

// Poller runs a sheet's new rows through the engine and writes each row's
// outcome back.
type Poller struct {
	Client Spreadsheets
	Engine *core.Engine
	// Store holds the poll's lease, so overlapping polls of one sheet (a
	// schedule firing while the last poll runs, two instances) take turns.
	Store       state.Store
	Concurrency int
	Log         *slog.Logger
	// Now stamps the outcomes; nil: time.Now.
	Now func() time.Time
}

// pollLease is how long a poll holds its sheet; it is renewed while it runs.
const pollLease = 2 * time.Minute

// ErrPollInProgress means another poll of the sheet holds it.
var ErrPollInProgress = errors.New("another poll of this sheet is running")

// Poll reads the sheet once, runs every row whose status cell is empty or
// says retrying, and writes the outcomes in one write. With plan set
// nothing is written to the sheet or any target: the outcomes say what
// would happen. A sheet that cannot be polled (not shared, no such tab, no
// email column) fails the poll and nothing is written.
func (p *Poller) Poll(ctx context.Context, sheet Sheet, plan bool) ([]RowOutcome, error) {
	if !plan && p.Store != nil {
		owner := core.NewRequestID()
		key := "sheets-poll/" + sheet.Name()
		claim, _, err := p.Store.Claim(ctx, key, "poll", owner, pollLease, pollLease)
		if err != nil {
			return nil, fmt.Errorf("sheet %s: taking the poll's lease: %w", sheet.Name(), err)
		}
		if claim != state.Claimed {
			return nil, fmt.Errorf("sheet %s: %w", sheet.Name(), ErrPollInProgress)
		}
		stop := state.KeepLease(ctx, p.Store, key, owner, pollLease, func(err error) {
			p.log().Warn("the sheet poll's lease could not be kept; another poll may start", "sheet", sheet.Name(), "error", err.Error())
		})
		defer func() {
			stop()
			if err := p.Store.Release(context.WithoutCancel(ctx), key, owner); err != nil {
				p.log().Warn("releasing the sheet poll's lease failed; the next poll waits for it", "sheet", sheet.Name(), "error", err.Error())
			}
		}()
	}
	table, err := p.Client.ReadTable(ctx, sheet.SpreadsheetID, sheet.Tab)
	if err != nil {
		return nil, err
	}
	header, status, _, err := sheet.Mapping(table)
	if err != nil {
		return nil, err
	}
	var (
		items    []runner.Item
		outcomes []RowOutcome
		itemRow  []int // the outcome index of each item
	)
	for i, cells := range table.Rows {
		if !pending(cells, status) {
			continue
		}
		o := RowOutcome{Row: table.RowNumber(i), Email: cellAt(cells, indexOf(header, "email"))}
		req, err := rowRequest(sheet, table, header, cells, status)
		if err == nil {
			_, _, err = p.Engine.Config.Authorize(req, false)
		}
		if err != nil {
			o.Status = statusError + oneLine(core.AsError(err).Message)
			outcomes = append(outcomes, o)
			continue
		}
		item := runner.Item{Request: req, Meta: core.Meta{RequestID: core.NewRequestID(), Trigger: "sheets"}}
		if plan {
			item.Plan = &core.Plan{}
		}
		itemRow = append(itemRow, len(outcomes))
		items = append(items, item)
		outcomes = append(outcomes, o)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	runCtx, cancel := keepForWriteBack(ctx)
	defer cancel()
	for i, o := range runner.Run(runCtx, p.Engine, items, max(p.Concurrency, 1), nil) {
		row := &outcomes[itemRow[i]]
		switch {
		case o.Err == nil:
			row.Status = fmt.Sprintf("%s %s %s", o.Result.Status, now().UTC().Format(time.RFC3339), o.Result.RequestID)
		case o.Redeliver:
			row.Status = statusRetrying + oneLine(core.AsError(o.Err).Message)
		default:
			row.Status = statusError + oneLine(core.AsError(o.Err).Message)
		}
		if plan {
			row.Writes = items[i].Plan.Writes()
		}
	}
	if plan || len(outcomes) == 0 {
		return outcomes, nil
	}
	cells := make([]Cell, 0, len(outcomes)+1)
	if status == len(table.Header) {
		cells = append(cells, Cell{Row: 1, Column: status + 1, Value: sheet.statusColumn()})
	}
	for _, o := range outcomes {
		cells = append(cells, Cell{Row: o.Row, Column: status + 1, Value: o.Status})
	}
	if _, err := p.Client.WriteCells(context.WithoutCancel(ctx), table, cells); err != nil {
		return outcomes, fmt.Errorf("sheet %s: the rows ran, but writing their outcomes failed (the next poll finds each row's stored answer): %w", sheet.Name(), err)
	}
	return outcomes, nil
}

// writeBackShare is the part of a poll's time kept for writing the
// outcomes: rows still running when the rest is spent stop as a retryable
// failure ("retrying: …", run again by the next poll), so a platform's
// timeout (a Lambda's minute) never leaves rows that ran without their
// outcome.
const writeBackShare = 6

// keepForWriteBack is ctx ending a sixth of its remaining time early.
func keepForWriteBack(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-time.Until(deadline)/writeBackShare))
}

// Mapping says, for each of table's columns, the request field it feeds
// ("" for none), which column is the status column (len(table.Header)
// when a poll is to add it), and how many rows a poll would run now.
func (s Sheet) Mapping(table *Table) (fields []string, status, pendingRows int, err error) {
	if fields, status, err = mapHeader(s, table); err != nil {
		return nil, 0, 0, err
	}
	for _, cells := range table.Rows {
		if pending(cells, status) {
			pendingRows++
		}
	}
	return fields, status, pendingRows, nil
}

func (p *Poller) log() *slog.Logger {
	if p.Log == nil {
		return slog.Default()
	}
	return p.Log
}

// mapHeader names each column by the request field it feeds ("" for none)
// and finds the status column (len(table.Header) when it is to be added).
func mapHeader(sheet Sheet, table *Table) (header []string, status int, err error) {
	status = len(table.Header)
	seen := map[string]bool{}
	for i, text := range table.Header {
		text = strings.TrimSpace(text)
		field, mapped := sheet.Columns[text]
		if !mapped && core.IsColumn(text) {
			field = text
		}
		if text == sheet.statusColumn() {
			status, field = i, ""
		}
		if field != "" && seen[field] {
			return nil, 0, fmt.Errorf("sheet %s: two columns feed %q; map one of them to another field or remove it", sheet.Name(), field)
		}
		seen[field] = true
		header = append(header, field)
	}
	if !seen["email"] {
		return nil, 0, fmt.Errorf("sheet %s (tab %q) has no email column: name one \"email\", or map its header to email under columns", sheet.Name(), table.Tab)
	}
	return header, status, nil
}

// pending says whether a row is one to run: not blank, and its status
// cell empty or saying the last try is to be retried.
func pending(cells []string, status int) bool {
	s := strings.TrimSpace(cellAt(cells, status))
	if s != "" && !strings.HasPrefix(s, statusRetrying) {
		return false
	}
	for i, c := range cells {
		if i != status && strings.TrimSpace(c) != "" {
			return true
		}
	}
	return false
}

// rowRequest is the row's request, keyed by the spreadsheet, the tab and
// the row's content: a crash between provisioning and the write-back finds
// the stored answer on the next poll, never a second user; a form's
// Timestamp column makes two identical answers two requests.
func rowRequest(sheet Sheet, table *Table, header, cells []string, status int) (core.Request, error) {
	req := core.RequestFromRow(header, cells)
	h := sha256.New()
	for _, part := range []string{table.Spreadsheet, table.Tab} {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	for i, c := range cells {
		if i != status {
			fmt.Fprintf(h, "%d:%s", len(c), c)
		}
	}
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = "sheet-" + hex.EncodeToString(h.Sum(nil))[:40]
	}
	return req.Normalize()
}

func indexOf(header []string, field string) int {
	for i, f := range header {
		if f == field {
			return i
		}
	}
	return -1
}

func cellAt(cells []string, i int) string {
	if i < 0 || i >= len(cells) {
		return ""
	}
	return cells[i]
}

// oneLine keeps a status cell to one short line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
