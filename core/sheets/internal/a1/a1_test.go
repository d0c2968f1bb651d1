package a1

import "testing"

// The examples are the Sheets API's own (guides/concepts, "A1 notation").
func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want Range
	}{
		{"Sheet1!A1:B2", Range{Sheet: "Sheet1", FromCol: 1, FromRow: 1, ToCol: 2, ToRow: 2}},
		{"Sheet1!A:A", Range{Sheet: "Sheet1", FromCol: 1, FromRow: 1, ToCol: 1}},
		{"Sheet1!1:2", Range{Sheet: "Sheet1", FromCol: 1, FromRow: 1, ToRow: 2}},
		{"Sheet1!A5:A", Range{Sheet: "Sheet1", FromCol: 1, FromRow: 5, ToCol: 1}},
		{"A1:B2", Range{FromCol: 1, FromRow: 1, ToCol: 2, ToRow: 2}},
		{"Sheet1", Range{Sheet: "Sheet1", FromCol: 1, FromRow: 1}},
		{"'My Custom Sheet'!A:A", Range{Sheet: "My Custom Sheet", FromCol: 1, FromRow: 1, ToCol: 1}},
		{"'My Custom Sheet'", Range{Sheet: "My Custom Sheet", FromCol: 1, FromRow: 1}},
		{"'Jon''s_Data'!A1:D5", Range{Sheet: "Jon's_Data", FromCol: 1, FromRow: 1, ToCol: 4, ToRow: 5}},
		{"'It''s'!A1:Z", Range{Sheet: "It's", FromCol: 1, FromRow: 1, ToCol: 26}},
		// The Python quickstart's range: an unquoted name with a space.
		{"Class Data!A2:E", Range{Sheet: "Class Data", FromCol: 1, FromRow: 2, ToCol: 5}},
		{"Form Responses 1", Range{Sheet: "Form Responses 1", FromCol: 1, FromRow: 1}},
		{"A1", Range{FromCol: 1, FromRow: 1, ToCol: 1, ToRow: 1, Cell: true}},
		{"'A1'", Range{Sheet: "A1", FromCol: 1, FromRow: 1}},
		{"Sheet1!c3", Range{Sheet: "Sheet1", FromCol: 3, FromRow: 3, ToCol: 3, ToRow: 3, Cell: true}},
		{"Sheet1!B2:A1", Range{Sheet: "Sheet1", FromCol: 1, FromRow: 1, ToCol: 2, ToRow: 2}},
		{"S!ZZZ1:ZZZ2", Range{Sheet: "S", FromCol: MaxColumn, FromRow: 1, ToCol: MaxColumn, ToRow: 2}},
		{"'a!b'!AA10", Range{Sheet: "a!b", FromCol: 27, FromRow: 10, ToCol: 27, ToRow: 10, Cell: true}},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{"", "'unterminated", "''!A1", "'Tab'A1", "!A1", "Sheet1!", "Sheet1!A0",
		"Sheet1!AAAA1", "Sheet1!A1:", "Sheet1!:B2", "Sheet1!A-1", "Sheet1!A+1", "Sheet1!A1:B2:C3"} {
		if r, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, r)
		}
	}
}

func TestColumns(t *testing.T) {
	for n, letters := range map[int]string{1: "A", 26: "Z", 27: "AA", 52: "AZ", 53: "BA", 702: "ZZ", 703: "AAA", MaxColumn: "ZZZ"} {
		if got := ColumnLetters(n); got != letters {
			t.Errorf("ColumnLetters(%d) = %q, want %q", n, got, letters)
		}
		if got, ok := ColumnNumber(letters); !ok || got != n {
			t.Errorf("ColumnNumber(%q) = %d, %v; want %d", letters, got, ok, n)
		}
	}
	for _, bad := range []string{"", "AAAA", "A1", "Ä"} {
		if n, ok := ColumnNumber(bad); ok {
			t.Errorf("ColumnNumber(%q) = %d, want refused", bad, n)
		}
	}
}

func TestSheetQuotesOnlyWhenItMust(t *testing.T) {
	for title, want := range map[string]string{
		"Sheet1":           "Sheet1",
		"Form_Responses":   "Form_Responses",
		"Form Responses 1": "'Form Responses 1'",
		"It's":             "'It''s'",
		"A1":               "'A1'",
		"ab12":             "'ab12'",
		"2024":             "'2024'",
		"Données":          "'Données'",
	} {
		got := Sheet(title)
		if got != want {
			t.Errorf("Sheet(%q) = %q, want %q", title, got, want)
		}
		if r, err := Parse(got); err != nil || r.Sheet != title {
			t.Errorf("Parse(Sheet(%q)) = %+v, %v: the title does not come back", title, r, err)
		}
	}
}

func TestCellsRoundTrips(t *testing.T) {
	for _, c := range []struct {
		sheet                          string
		fromCol, fromRow, toCol, toRow int
		want                           string
	}{
		{"Form Responses 1", 6, 2, 6, 2, "'Form Responses 1'!F2"},
		{"Sheet1", 1, 1, 26, 1000, "Sheet1!A1:Z1000"},
		{"It's", 27, 3, 27, 9, "'It''s'!AA3:AA9"},
	} {
		got := Cells(c.sheet, c.fromCol, c.fromRow, c.toCol, c.toRow)
		if got != c.want {
			t.Errorf("Cells = %q, want %q", got, c.want)
		}
		r, err := Parse(got)
		if err != nil || r.Sheet != c.sheet || r.FromCol != c.fromCol || r.FromRow != c.fromRow || r.ToCol != c.toCol || r.ToRow != c.toRow {
			t.Errorf("Parse(%q) = %+v, %v", got, r, err)
		}
	}
}
