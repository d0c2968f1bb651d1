package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/targets"
)

// problemLine is the line a problem names: "line N: ..." for one row or
// column, "... on line N, ..." for encoding/csv's own errors.
var problemLine = regexp.MustCompile(`^line (\d+): |^(?:parse error|record) on line (\d+)[,:;] `)

// FuzzImportCSV feeds import files through the parsing and validation that
// `onboard import` does before it touches anything. Every problem names a
// line of the file, once per row; a row's line is where its record starts;
// and the requests of the rows that pass are already normalised, so the
// engine's own Normalize leaves them unchanged.
func FuzzImportCSV(f *testing.F) {
	cfg, err := targets.LoadConfig("../../testdata/onboard.yaml")
	if err != nil {
		f.Fatal(err)
	}
	files, err := filepath.Glob("../../testdata/import/*.csv")
	if err != nil || len(files) == 0 {
		f.Fatalf("no sample imports: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("\ufeffemail,first_name,last_name,action,external_user_id,idempotency_key,attr.region\r\n" +
		"\r\n\"Ada@Example.COM\",\"Ada\",\"Love\nlace\",DEPROVISION,c-1,k-1,EMEA\r\n"))
	f.Add([]byte("email,name,profile,attr.region\n\n  \nx@example.com,\"Two\nLines\",customer,ABCD\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		header, rows, problems := parseImport(bytes.NewReader(data))
		checkProblems(t, problems, lines)
		if len(problems) > 0 {
			return
		}
		if len(rows) == 0 {
			t.Fatal("accepted a file without rows")
		}
		checkRowsStart(t, data, rows)
		for _, operator := range []bool{true, false} {
			rows := slices.Clone(rows)
			named := checkProblems(t, validateRows(cfg, rows, operator), lines)
			for _, r := range rows {
				if len(r.record) != len(header) {
					t.Fatalf("line %d: %d fields under a header of %d", r.line, len(r.record), len(header))
				}
				if named[r.line] {
					continue
				}
				again, err := r.req.Normalize()
				if err != nil || !reflect.DeepEqual(again, r.req) {
					t.Fatalf("line %d: an accepted row's request %+v normalises again to %+v, %v", r.line, r.req, again, err)
				}
			}
		}
	})
}

// checkProblems requires every problem to name a line of the file, or to be
// about the file as a whole, and no line to be named twice: a row gets one
// problem, its first. It returns the lines named.
func checkProblems(t *testing.T, problems []string, lines int) map[int]bool {
	t.Helper()
	named := map[int]bool{}
	for _, p := range problems {
		if p == "no rows after the header" || strings.HasPrefix(p, "the file is empty") {
			continue
		}
		m := problemLine.FindStringSubmatch(p)
		if m == nil {
			t.Fatalf("problem names no line: %q", p)
		}
		n, _ := strconv.Atoi(m[1] + m[2])
		if n < 1 || n > lines {
			t.Fatalf("problem names line %d of a file of %d: %q", n, lines, p)
		}
		if strings.Contains(p, ": : ") {
			t.Fatalf("problem names no column: %q", p)
		}
		if !strings.Contains(p, "column") && named[n] {
			t.Fatalf("line %d named twice: %q", n, problems)
		}
		named[n] = true
	}
	return named
}

// checkRowsStart requires each row's line to be where its record starts:
// that line holds the first field when the field is plain text.
func checkRowsStart(t *testing.T, data []byte, rows []row) {
	t.Helper()
	fileLines := strings.Split(string(data), "\n")
	for _, r := range rows {
		first := strings.TrimSpace(r.record[0])
		if first == "" || strings.ContainsAny(first, "\"\r\n") {
			continue
		}
		if r.line < 1 || r.line > len(fileLines) || !strings.Contains(fileLines[r.line-1], first) {
			t.Fatalf("row %q reported on line %d, which is not where it starts", r.record, r.line)
		}
	}
}
