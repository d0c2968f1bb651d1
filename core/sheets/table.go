package sheets

// Table is one tab as read: its header row, the rows below, and the grid.
type Table struct {
	Spreadsheet string
	Tab         string // the tab's title
	SheetID     int64
	// GridRows and GridColumns are the tab's size; a write past them first
	// grows the grid.
	GridRows, GridColumns int
	// Header is row 1. Rows[i] is row i+2; each holds its cells as the
	// sheet shows them, without trailing empty cells (an empty row is
	// empty), and trailing empty rows are not there.
	Header []string
	Rows   [][]string
}

// RowNumber is the sheet's number of Rows[i].
func (t *Table) RowNumber(i int) int { return i + 2 }

// Cell is one cell to write; Row and Column count from 1 (row 1 is the
// header).
type Cell struct {
	Row, Column int
	Value       string
}
