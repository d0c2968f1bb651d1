// Package a1 reads and writes the A1 notation of the Google Sheets API
// (https://developers.google.com/workspace/sheets/api/guides/concepts#cell),
// whose examples are
//
//	Sheet1!A1:B2  Sheet1!A:A  Sheet1!1:2  Sheet1!A5:A  A1:B2  Sheet1
//	'My Custom Sheet'!A:A  'Jon''s_Data'!A1:D5
//
// The client writes it and the fake reads it, so both follow one reading
// of the docs.
package a1

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxColumn is column ZZZ: cell references have at most three letters, so a
// longer run of letters followed by digits ("Sheet1") is a tab's name.
const MaxColumn = 26 + 26*26 + 26*26*26

// Range is a parsed A1 range. Columns and rows count from 1.
type Range struct {
	// Sheet is the tab's title, unquoted; "" when the range names no tab
	// (it then means the first visible tab).
	Sheet string
	// FromCol and FromRow are the first cell's column and row.
	FromCol, FromRow int
	// ToCol and ToRow are the last cell's; 0 runs to the end of the grid.
	ToCol, ToRow int
	// Cell marks a single cell ("A1"): a write starts there and extends as
	// far as its values go.
	Cell bool
}

// Parse reads an A1 range. It does not know the spreadsheet, so a tab that
// does not exist parses fine; named ranges and R1C1 notation are not read.
func Parse(s string) (Range, error) {
	if s == "" {
		return Range{}, errors.New("empty range")
	}
	if strings.HasPrefix(s, "'") {
		sheet, rest, err := unquote(s)
		if err != nil {
			return Range{}, err
		}
		if rest == "" {
			return Range{Sheet: sheet, FromCol: 1, FromRow: 1}, nil
		}
		cells, ok := strings.CutPrefix(rest, "!")
		if !ok {
			return Range{}, fmt.Errorf("text after the quoted tab name: %q", rest)
		}
		r, err := parseCells(cells)
		r.Sheet = sheet
		return r, err
	}
	if sheet, cells, ok := strings.Cut(s, "!"); ok {
		if sheet == "" {
			return Range{}, errors.New("empty tab name before '!'")
		}
		r, err := parseCells(cells)
		r.Sheet = sheet
		return r, err
	}
	if r, err := parseCells(s); err == nil {
		return r, nil
	}
	// Not cells: the whole tab of that name, as "Sheet1" is.
	return Range{Sheet: s, FromCol: 1, FromRow: 1}, nil
}

// unquote reads a quoted tab name at the start of s, where a doubled
// quote stands for one.
func unquote(s string) (name, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		if b.Len() == 0 {
			return "", "", errors.New("empty quoted tab name")
		}
		return b.String(), s[i+1:], nil
	}
	return "", "", errors.New("unterminated quoted tab name")
}

// endpoint is one side of "A1:B2": a column, a row, or both (0: absent).
type endpoint struct{ col, row int }

func parseCells(s string) (Range, error) {
	from, to, pair := strings.Cut(s, ":")
	start, err := parseEndpoint(from)
	if err != nil {
		return Range{}, err
	}
	if !pair {
		if start.col == 0 || start.row == 0 {
			return Range{}, fmt.Errorf("%q is not a cell", s)
		}
		return Range{FromCol: start.col, FromRow: start.row, ToCol: start.col, ToRow: start.row, Cell: true}, nil
	}
	end, err := parseEndpoint(to)
	if err != nil {
		return Range{}, err
	}
	r := Range{FromCol: max(start.col, 1), FromRow: max(start.row, 1), ToCol: end.col, ToRow: end.row}
	// "B2:A1" covers the same cells as "A1:B2".
	if r.ToCol != 0 && r.ToCol < r.FromCol {
		r.FromCol, r.ToCol = r.ToCol, r.FromCol
	}
	if r.ToRow != 0 && r.ToRow < r.FromRow {
		r.FromRow, r.ToRow = r.ToRow, r.FromRow
	}
	return r, nil
}

func parseEndpoint(s string) (endpoint, error) {
	letters := 0
	for letters < len(s) && isLetter(s[letters]) {
		letters++
	}
	var e endpoint
	if letters > 0 {
		col, ok := ColumnNumber(s[:letters])
		if !ok {
			return endpoint{}, fmt.Errorf("%q is not a column", s[:letters])
		}
		e.col = col
	}
	if digits := s[letters:]; digits != "" {
		row, err := strconv.Atoi(digits)
		if err != nil || row < 1 || digits[0] == '+' || digits[0] == '-' {
			return endpoint{}, fmt.Errorf("%q is not a row", digits)
		}
		e.row = row
	}
	if e.col == 0 && e.row == 0 {
		return endpoint{}, fmt.Errorf("%q is not a cell, column or row", s)
	}
	return e, nil
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// ColumnNumber is the number of a column's letters ("A" 1, "AA" 27), in
// either case; false beyond ZZZ or for anything but letters.
func ColumnNumber(letters string) (int, bool) {
	if letters == "" || len(letters) > 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(letters); i++ {
		c := letters[i]
		if !isLetter(c) {
			return 0, false
		}
		n = n*26 + int(c&^0x20-'A') + 1
	}
	return n, true
}

// ColumnLetters is the letters of column n (1 "A", 27 "AA"); n must be
// between 1 and MaxColumn.
func ColumnLetters(n int) string {
	if n < 1 || n > MaxColumn {
		panic(fmt.Sprintf("a1: column %d out of range", n))
	}
	var b []byte
	for ; n > 0; n = (n - 1) / 26 {
		b = append([]byte{byte('A' + (n-1)%26)}, b...)
	}
	return string(b)
}

// Sheet writes a tab's title for a range, quoted when it must be: it holds
// anything but letters, digits and underscores, or reads as a cell.
func Sheet(title string) string {
	plain := title != ""
	for i := 0; i < len(title) && plain; i++ {
		c := title[i]
		plain = isLetter(c) || c >= '0' && c <= '9' || c == '_'
	}
	if plain && title[0] >= '0' && title[0] <= '9' {
		plain = false
	}
	if plain {
		if _, err := parseCells(title); err == nil {
			plain = false
		}
	}
	if plain {
		return title
	}
	return "'" + strings.ReplaceAll(title, "'", "''") + "'"
}

// Cells writes the range of a tab from one cell to another, "Tab!A1" when
// they are the same cell.
func Cells(sheet string, fromCol, fromRow, toCol, toRow int) string {
	s := Sheet(sheet) + "!" + ColumnLetters(fromCol) + strconv.Itoa(fromRow)
	if fromCol == toCol && fromRow == toRow {
		return s
	}
	return s + ":" + ColumnLetters(toCol) + strconv.Itoa(toRow)
}
