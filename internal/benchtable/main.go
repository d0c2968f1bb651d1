// Command benchtable turns `go test -bench` output into the table
// docs/benchmarks.md shows: one row per figure a benchmark reports with
// b.ReportMetric, all from one run, under the machine it ran on. Times and
// bytes are left out on purpose: they say more about the machine than
// about onboard, so every figure onboard reports is a ratio or a count.
//
//	go test -run '^$' -bench . -benchtime 1x ./... | go run ./internal/benchtable [-update FILE]
//
// With -update the table replaces what FILE holds between the lines
// <!-- bench:start --> and <!-- bench:end -->; otherwise it is printed.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	update := flag.String("update", "", "replace the table between the bench markers of this file")
	flag.Parse()
	var table bytes.Buffer
	err := write(&table, os.Stdin, time.Now())
	if err == nil && *update != "" {
		err = replaceBetweenMarkers(*update, table.Bytes())
	} else if err == nil {
		_, err = os.Stdout.Write(table.Bytes())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

const startMarker, endMarker = "<!-- bench:start -->\n", "<!-- bench:end -->"

func replaceBetweenMarkers(path string, table []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	start, end := bytes.Index(doc, []byte(startMarker)), bytes.Index(doc, []byte(endMarker))
	if start < 0 || end < start {
		return fmt.Errorf("%s has no %q ... %q section to replace", path, strings.TrimSpace(startMarker), endMarker)
	}
	out := append(append(append([]byte{}, doc[:start+len(startMarker)]...), table...), doc[end:]...)
	return os.WriteFile(path, out, 0o644)
}

// absolute are the units go test reports itself, which depend on the machine.
var absolute = map[string]bool{"ns/op": true, "B/op": true, "allocs/op": true, "MB/s": true}

type row struct{ pkg, bench, unit, value string }

func write(w io.Writer, r io.Reader, now time.Time) error {
	var rows []row
	var cpu, goos, goarch, pkg string
	var failed []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "cpu: "):
			cpu = strings.TrimPrefix(line, "cpu: ")
		case strings.HasPrefix(line, "goos: "):
			goos = strings.TrimPrefix(line, "goos: ")
		case strings.HasPrefix(line, "goarch: "):
			goarch = strings.TrimPrefix(line, "goarch: ")
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: github.com/onboard-dev/onboard/")
		case strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL"):
			failed = append(failed, line)
		case strings.HasPrefix(line, "Benchmark"):
			rows = append(rows, parse(pkg, line)...)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("the run failed, so there is no table:\n%s", strings.Join(failed, "\n"))
	}
	if len(rows) == 0 {
		return fmt.Errorf("no benchmark reported a figure")
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].pkg < rows[j].pkg })
	fmt.Fprintf(w, "Measured by `make bench` on %s (%s/%s, %s).\n\n", now.UTC().Format("2006-01-02"), goos, goarch, cpu)
	fmt.Fprintln(w, "| package | benchmark | figure | value |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.pkg, r.bench, r.unit, r.value)
	}
	return nil
}

// parse reads "BenchmarkX-2  1  123 ns/op  5.2 round-trips/op ...".
func parse(pkg, line string) []row {
	fields := strings.Fields(line)
	if len(fields) < 4 {
		return nil
	}
	name := strings.TrimPrefix(fields[0], "Benchmark")
	if i := strings.LastIndex(name, "-"); i > 0 {
		name = name[:i] // the GOMAXPROCS suffix
	}
	var rows []row
	for i := 2; i+1 < len(fields); i += 2 {
		value, unit := fields[i], fields[i+1]
		if absolute[unit] {
			continue
		}
		rows = append(rows, row{pkg: pkg, bench: name, unit: unit, value: value})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].unit < rows[j].unit })
	return rows
}
