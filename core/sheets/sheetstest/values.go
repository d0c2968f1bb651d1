package sheetstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/onboard-dev/onboard/core/sheets/internal/a1"
)

// Enum values of the API.
const (
	dimensionRows    = "ROWS"
	dimensionColumns = "COLUMNS"

	renderFormatted   = "FORMATTED_VALUE"
	renderUnformatted = "UNFORMATTED_VALUE"
	renderFormula     = "FORMULA"

	inputRaw         = "RAW"
	inputUserEntered = "USER_ENTERED"
)

// ---- cells ----

func (c cell) empty() bool { return c.value == nil && c.formula == "" }

// render shows a cell the way valueRenderOption asks; a formula is never
// evaluated, so every option shows its text.
func (c cell) render(option string) any {
	if c.formula != "" {
		return c.formula
	}
	switch v := c.value.(type) {
	case nil:
		return ""
	case float64:
		if option == renderFormatted {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
	case bool:
		if option == renderFormatted {
			return strings.ToUpper(strconv.FormatBool(v))
		}
	}
	return c.value
}

// rawCell is text stored as typed (RAW); "" empties the cell.
func rawCell(s string) cell {
	if s == "" {
		return cell{}
	}
	return cell{value: s}
}

// userEntered parses text as if typed into the Sheets UI, as far as the
// fake models it: a formula, a number, a boolean, or text (a leading '
// forces text and is not kept).
func userEntered(s string) cell {
	switch {
	case s == "":
		return cell{}
	case strings.HasPrefix(s, "="):
		return cell{formula: s}
	case strings.HasPrefix(s, "'"):
		return rawCell(s[1:])
	case strings.EqualFold(s, "TRUE") || strings.EqualFold(s, "FALSE"):
		return cell{value: strings.EqualFold(s, "TRUE")}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && isPlainNumber(s) {
		return cell{value: f}
	}
	return cell{value: s}
}

// isPlainNumber refuses what ParseFloat reads but a sheet does not: Inf,
// NaN, hex, underscores.
func isPlainNumber(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789.-+eE", r) {
			return false
		}
	}
	return true
}

func (t *tab) at(row, col int) cell {
	if row >= len(t.cells) || col >= len(t.cells[row]) {
		return cell{}
	}
	return t.cells[row][col]
}

// set stores a cell; row and col count from 0.
func (t *tab) set(row, col int, c cell) {
	for len(t.cells) <= row {
		t.cells = append(t.cells, nil)
	}
	for len(t.cells[row]) <= col {
		t.cells[row] = append(t.cells[row], cell{})
	}
	t.cells[row][col] = c
}

// resize changes the grid, dropping the cells that no longer fit.
func (t *tab) resize(rows, columns int) {
	t.rows, t.columns = rows, columns
	if len(t.cells) > rows {
		t.cells = t.cells[:rows]
	}
	for i := range t.cells {
		if len(t.cells[i]) > columns {
			t.cells[i] = t.cells[i][:columns]
		}
	}
}

// read renders a block of cells (1-based, inclusive), by rows or by
// columns, leaving out trailing empty cells of each line and trailing
// empty lines, as the API does.
func (t *tab) read(fromCol, fromRow, toCol, toRow int, byColumns bool, option string) [][]any {
	outerFrom, outerTo, innerFrom, innerTo := fromRow, toRow, fromCol, toCol
	if byColumns {
		outerFrom, outerTo, innerFrom, innerTo = fromCol, toCol, fromRow, toRow
	}
	var lines [][]any
	kept := 0
	for o := outerFrom; o <= outerTo; o++ {
		var line []any
		used := 0
		for i := innerFrom; i <= innerTo; i++ {
			row, col := o, i
			if byColumns {
				row, col = i, o
			}
			c := t.at(row-1, col-1)
			line = append(line, c.render(option))
			if !c.empty() {
				used = len(line)
			}
		}
		lines = append(lines, line[:used])
		if used > 0 {
			kept = len(lines)
		}
	}
	return lines[:kept]
}

// ---- values.get ----

// locate parses a range and finds its tab; the error is the API's.
func (ss *spreadsheet) locate(text string) (a1.Range, *tab, error) {
	r, err := a1.Parse(text)
	if err != nil {
		return a1.Range{}, nil, errors.New("Unable to parse range: " + text)
	}
	t := ss.resolve(r)
	if t == nil {
		return a1.Range{}, nil, errors.New("Unable to parse range: " + text)
	}
	return r, t, nil
}

// bounds closes a range's open ends at the grid's; a bound past the grid
// is the API's error.
func (t *tab) bounds(r a1.Range, text string) (toCol, toRow int, err error) {
	toCol, toRow = r.ToCol, r.ToRow
	if toCol == 0 {
		toCol = t.columns
	}
	if toRow == 0 {
		toRow = t.rows
	}
	if r.FromCol > t.columns || r.FromRow > t.rows || toCol > t.columns || toRow > t.rows {
		return 0, 0, t.gridError(text)
	}
	return toCol, toRow, nil
}

func (t *tab) gridError(text string) error {
	return fmt.Errorf("Range (%s) exceeds grid limits. Max rows: %d, max columns: %d", text, t.rows, t.columns)
}

func (ss *spreadsheet) getValues(text string, q url.Values) answer {
	major := q.Get("majorDimension")
	switch major {
	case "", "DIMENSION_UNSPECIFIED":
		major = dimensionRows
	case dimensionRows, dimensionColumns:
	default:
		return badEnum("major_dimension", "Dimension", major)
	}
	render := q.Get("valueRenderOption")
	switch render {
	case "":
		render = renderFormatted
	case renderFormatted, renderUnformatted, renderFormula:
	default:
		return badEnum("value_render_option", "ValueRenderOption", render)
	}
	switch dt := q.Get("dateTimeRenderOption"); dt {
	case "", "SERIAL_NUMBER", "FORMATTED_STRING":
	default:
		return badEnum("date_time_render_option", "DateTimeRenderOption", dt)
	}
	r, t, err := ss.locate(text)
	if err != nil {
		return googleError(http.StatusBadRequest, err.Error())
	}
	toCol, toRow, err := t.bounds(r, text)
	if err != nil {
		return googleError(http.StatusBadRequest, err.Error())
	}
	body := map[string]any{"range": a1.Cells(t.title, r.FromCol, r.FromRow, toCol, toRow), "majorDimension": major}
	if values := t.read(r.FromCol, r.FromRow, toCol, toRow, major == dimensionColumns, render); len(values) > 0 {
		body["values"] = values
	}
	return success(body)
}

func badEnum(field, enum, value string) answer {
	return googleError(http.StatusBadRequest, fmt.Sprintf(
		"Invalid value at '%s' (type.googleapis.com/google.apps.sheets.v4.%s), %q", field, enum, value))
}

// ---- values.batchUpdate ----

type valueRange struct {
	Range          string              `json:"range"`
	MajorDimension string              `json:"majorDimension"`
	Values         [][]json.RawMessage `json:"values"`
}

// write is one cell a batch will set; row and col count from 0.
type write struct {
	tab      *tab
	row, col int
	cell     cell
}

func (ss *spreadsheet) batchUpdateValues(body []byte) answer {
	var in struct {
		ValueInputOption             string       `json:"valueInputOption"`
		Data                         []valueRange `json:"data"`
		IncludeValuesInResponse      bool         `json:"includeValuesInResponse"`
		ResponseValueRenderOption    string       `json:"responseValueRenderOption"`
		ResponseDateTimeRenderOption string       `json:"responseDateTimeRenderOption"`
	}
	if a, bad := decodeBody(body, &in); bad {
		return a
	}
	switch in.ValueInputOption {
	case "", "INPUT_VALUE_OPTION_UNSPECIFIED":
		return googleError(http.StatusBadRequest, "Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED")
	case inputRaw, inputUserEntered:
	default:
		return badEnum("value_input_option", "ValueInputOption", in.ValueInputOption)
	}
	if in.IncludeValuesInResponse {
		return googleError(http.StatusBadRequest, "sheetstest: includeValuesInResponse is not modelled")
	}
	// Every range is checked before any cell is written: the API applies
	// a batch whole or not at all.
	var writes []write
	responses := make([]map[string]any, len(in.Data))
	updatedTabs := map[*tab]bool{}
	totals := map[string]int{}
	for i, vr := range in.Data {
		ws, resp, err := ss.planValueRange(vr, i, in.ValueInputOption)
		if err != nil {
			return googleError(http.StatusBadRequest, err.Error())
		}
		writes = append(writes, ws...)
		responses[i] = resp
		for _, w := range ws {
			updatedTabs[w.tab] = true
		}
		for _, k := range []string{"Rows", "Columns", "Cells"} {
			n, _ := resp["updated"+k].(int)
			totals["totalUpdated"+k] += n
		}
	}
	for _, w := range writes {
		w.tab.set(w.row, w.col, w.cell)
	}
	totals["totalUpdatedSheets"] = len(updatedTabs)
	out := map[string]any{"spreadsheetId": ss.id}
	for k, n := range totals {
		if n != 0 { // Google leaves out fields at their zero value
			out[k] = n
		}
	}
	if len(responses) > 0 {
		out["responses"] = responses
	}
	return success(out)
}

// planValueRange checks data[i] and returns the cells it sets and its
// UpdateValuesResponse.
func (ss *spreadsheet) planValueRange(vr valueRange, i int, input string) ([]write, map[string]any, error) {
	at := fmt.Sprintf("data[%d]", i)
	r, t, err := ss.locate(vr.Range)
	if err != nil {
		return nil, nil, fmt.Errorf("Invalid %s: %v", at, err)
	}
	byColumns := false
	switch vr.MajorDimension {
	case "", "DIMENSION_UNSPECIFIED", dimensionRows:
	case dimensionColumns:
		byColumns = true
	default:
		return nil, nil, fmt.Errorf("Invalid value at '%s.major_dimension' (type.googleapis.com/google.apps.sheets.v4.Dimension), %q", at, vr.MajorDimension)
	}
	// A single cell anchors the values, which may run to the grid's edge;
	// a wider range bounds them.
	limitCol, limitRow := t.columns, t.rows
	if !r.Cell {
		if limitCol, limitRow, err = t.bounds(r, vr.Range); err != nil {
			return nil, nil, fmt.Errorf("Invalid %s: %v", at, err)
		}
	}
	var ws []write
	rows, cols := map[int]bool{}, map[int]bool{}
	lastCol, lastRow := r.FromCol, r.FromRow
	for j, line := range vr.Values {
		for k, raw := range line {
			row, col := r.FromRow+j, r.FromCol+k
			if byColumns {
				row, col = r.FromRow+k, r.FromCol+j
			}
			switch {
			case col > t.columns || row > t.rows:
				return nil, nil, fmt.Errorf("Invalid %s: %v", at, t.gridError(vr.Range))
			case col > limitCol:
				return nil, nil, fmt.Errorf("Invalid %s: Requested writing within range [%s], but tried writing to column [%s]", at, vr.Range, a1.ColumnLetters(col))
			case row > limitRow:
				return nil, nil, fmt.Errorf("Invalid %s: Requested writing within range [%s], but tried writing to row [%d]", at, vr.Range, row)
			}
			lastCol, lastRow = max(lastCol, col), max(lastRow, row)
			c, skip, err := parseCell(raw, input)
			if err != nil {
				return nil, nil, fmt.Errorf("Invalid value at '%s.values[%d][%d]': %v", at, j, k, err)
			}
			if skip {
				continue
			}
			ws = append(ws, write{tab: t, row: row - 1, col: col - 1, cell: c})
			rows[row], cols[col] = true, true
		}
	}
	resp := map[string]any{"spreadsheetId": ss.id}
	if len(vr.Values) > 0 {
		resp["updatedRange"] = a1.Cells(t.title, r.FromCol, r.FromRow, lastCol, lastRow)
	}
	if len(ws) > 0 {
		resp["updatedRows"], resp["updatedColumns"], resp["updatedCells"] = len(rows), len(cols), len(ws)
	}
	return ws, resp, nil
}

// parseCell reads one input value: null is skipped (the cell keeps what
// it has), "" empties the cell.
func parseCell(raw json.RawMessage, input string) (c cell, skip bool, err error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return cell{}, false, err
	}
	switch v := v.(type) {
	case nil:
		return cell{}, true, nil
	case string:
		if input == inputUserEntered {
			return userEntered(v), false, nil
		}
		return rawCell(v), false, nil
	case float64, bool:
		return cell{value: v}, false, nil
	}
	return cell{}, false, errors.New("a cell value is a string, a number or a boolean")
}

// ---- spreadsheets.batchUpdate ----

// sheetProps is the part of SheetProperties the fake lets a client change.
type sheetProps struct {
	SheetID int64 `json:"sheetId"` // absent: 0, the first tab's

	Title          string `json:"title"`
	GridProperties struct {
		RowCount    int `json:"rowCount"`
		ColumnCount int `json:"columnCount"`
	} `json:"gridProperties"`
}

func (ss *spreadsheet) batchUpdate(body []byte) answer {
	var in struct {
		Requests []map[string]json.RawMessage `json:"requests"`
	}
	if a, bad := decodeBody(body, &in); bad {
		return a
	}
	if len(in.Requests) == 0 {
		return googleError(http.StatusBadRequest, "Must specify at least one request.")
	}
	// Changes are made on copies and kept only when every request is valid.
	type change struct {
		title         string
		rows, columns int
	}
	changes := map[*tab]*change{}
	current := func(t *tab) *change {
		if changes[t] == nil {
			changes[t] = &change{t.title, t.rows, t.columns}
		}
		return changes[t]
	}
	for i, req := range in.Requests {
		at := fmt.Sprintf("Invalid requests[%d]", i)
		raw, found := req["updateSheetProperties"]
		if len(req) != 1 || !found {
			return googleError(http.StatusBadRequest, at+": sheetstest models updateSheetProperties only")
		}
		var u struct {
			Properties sheetProps `json:"properties"`
			Fields     string     `json:"fields"`
		}
		if a, bad := decodeBody(raw, &u); bad {
			return a
		}
		at += ".updateSheetProperties"
		var t *tab
		for _, candidate := range ss.tabs {
			if candidate.id == u.Properties.SheetID {
				t = candidate
			}
		}
		if t == nil {
			return googleError(http.StatusBadRequest, at+": No grid with id: "+strconv.FormatInt(u.Properties.SheetID, 10))
		}
		if u.Fields == "" {
			return googleError(http.StatusBadRequest, at+": At least one field must be updated.")
		}
		c := current(t)
		for _, field := range strings.Split(u.Fields, ",") {
			grid := u.Properties.GridProperties
			switch strings.TrimSpace(field) {
			case "title":
				if u.Properties.Title == "" {
					return googleError(http.StatusBadRequest, at+": A sheet's title cannot be empty.")
				}
				for _, other := range ss.tabs {
					if other != t && current(other).title == u.Properties.Title {
						return googleError(http.StatusBadRequest, fmt.Sprintf(
							"%s: A sheet with the name %q already exists. Please enter another name.", at, u.Properties.Title))
					}
				}
				c.title = u.Properties.Title
			case "gridProperties.rowCount":
				c.rows = grid.RowCount
			case "gridProperties.columnCount":
				c.columns = grid.ColumnCount
			case "gridProperties":
				c.rows, c.columns = grid.RowCount, grid.ColumnCount
			default:
				return googleError(http.StatusBadRequest, fmt.Sprintf("%s: sheetstest does not model field %q", at, field))
			}
			if c.rows < 1 || c.columns < 1 || c.columns > a1.MaxColumn {
				return googleError(http.StatusBadRequest, at+": a grid needs at least one row and one column, and at most ZZZ columns")
			}
		}
	}
	for t, c := range changes {
		t.title = c.title
		t.resize(c.rows, c.columns)
	}
	replies := make([]map[string]any, len(in.Requests))
	for i := range replies {
		replies[i] = map[string]any{}
	}
	return success(map[string]any{"spreadsheetId": ss.id, "replies": replies})
}

// decodeBody reads a JSON body strictly, answering as Google's front end
// does to a field the message does not have.
func decodeBody(body []byte, v any) (answer, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err == nil {
		return answer{}, false
	}
	if _, name, found := strings.Cut(err.Error(), "unknown field "); found {
		return googleError(http.StatusBadRequest, fmt.Sprintf("Invalid JSON payload received. Unknown name %s: Cannot find field.", name)), true
	}
	return googleError(http.StatusBadRequest, "Invalid JSON payload received. "+err.Error()), true
}
