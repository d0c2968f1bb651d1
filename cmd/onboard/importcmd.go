package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/runner"
	"github.com/onboard-dev/onboard/core/targets"
)

// row is one data line of an import file.
type row struct {
	line   int // 1-based line in the file, for messages
	record []string
	req    core.Request
}

// rowResult is what became of one row.
type rowResult struct {
	status core.Status
	err    *core.Error
}

// planCmd is `onboard plan FILE.csv`: the import's dry run.
// maxConcurrency bounds --concurrency: more workers only wait on the
// targets' paces, and each holds a connection.
const maxConcurrency = 64

func planCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stderr, "Usage: onboard plan [--concurrency N] FILE.csv\n\nSame as onboard import --dry-run: reads every target and prints, per person and target,\nwhat an import of FILE would change, writing nothing. See onboard import --help.\n")
		return 0
	}
	return importCmd(append([]string{"--dry-run"}, args...), stdout, stderr)
}

func importCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	concurrency := fs.Int("concurrency", 4, fmt.Sprintf("rows processed at once (1-%d); every row's calls share one pace per target, learned from its 429s.\n"+
		"With --via https://… rows go in bulk bodies of up to %d, each worked on %d rows at a time by the function,\n"+
		"so ceil(N/%d) bodies are in flight; with --via pubsub:/sqs: N bounds the publishes in flight", maxConcurrency, bulkBodyRows, httpapi.BulkConcurrency, httpapi.BulkConcurrency))
	force := fs.Bool("force", false, "allow deprovisioning more people than max_deprovision, and through an open breaker\n(local imports only: a deployed function never takes force from a request)")
	adopt := fs.Bool("adopt", false, "deprovision rows also reach people onboard has no record of, by the row's profile (local imports only)")
	via := fs.String("via", "", "send rows to a deployed bundle instead of running them here: https://FUNCTION_URL, pubsub:projects/P/topics/T or sqs:QUEUE_URL")
	dryRun := fs.Bool("dry-run", false, "read every target and print per person what would change, writing nothing (what `onboard plan` does)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard import [--concurrency N] [--force] [--adopt] [--dry-run] [--via DEST] FILE.csv

Provisions every row of a CSV file with the same engine, policy and state
store as the functions. Columns (a header line is required): email, and name
or first_name/last_name; optionally profile, action (provision|deprovision),
external_user_id, idempotency_key, and attr.NAME for user attributes.

The whole file is validated first; any bad row is reported with its line
number and nothing is done. Rows then run a few at a time, with a progress
bar on a terminal (plain progress lines otherwise). Each row's idempotency key
comes from its content, so running the same file again skips what is done:
an interrupted import (Ctrl-C) resumes where it stopped. Failed rows are
written to FILE.failures.csv with an error column, ready to fix and re-import;
the exit code is 1 when any row failed.

With --via, a deployed bundle does the work: the HTTP function gets the rows
in bulk bodies (each one event batch there, so targets that batch share calls) and
only the rows it answers as retryable are resent; pubsub:/sqs: queue them.

Examples:
  printf 'email,name,profile,attr.region\nada@example.com,Ada Lovelace,analyst,EMEA\n' > people.csv
  onboard import --dry-run people.csv     # or: onboard plan people.csv
  onboard import people.csv

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "onboard import: name one CSV file, e.g. onboard import people.csv")
		return 2
	}
	if *concurrency < 1 || *concurrency > maxConcurrency {
		fmt.Fprintf(stderr, "onboard import: --concurrency must be between 1 and %d\n", maxConcurrency)
		return 2
	}
	if (*force || *adopt) && *via != "" {
		fmt.Fprintln(stderr, "onboard import: --force and --adopt work only for an import run here; a deployed function never takes them from a request")
		return 2
	}
	path := fs.Arg(0)
	header, rows, problems := readImportFile(path)
	cfg, err := targets.LoadConfig(targets.ConfigPath(os.Getenv))
	if err != nil {
		fmt.Fprintf(stderr, "onboard import: %v\n", err)
		return 1
	}
	// Rows sent --via are requests to a function like any form's, so they
	// are held to what a request may choose.
	problems = append(problems, validateRows(cfg, rows, *via == "")...)
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "onboard import: %s has %d problem(s); nothing was done:\n", path, len(problems))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return 2
	}
	reqs := make([]core.Request, len(rows))
	for i, r := range rows {
		reqs[i] = r.req
	}
	if berr := cfg.CheckBulk(reqs, *force); berr != nil {
		fmt.Fprintf(stderr, "onboard import: %s\n", core.AsError(berr).Message)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := newProgress(stderr, len(rows), isTerminal(stderr))
	started := time.Now()
	var results []rowResult
	if *via != "" {
		if *dryRun {
			fmt.Fprintln(stderr, "onboard import: --dry-run runs here; it cannot go --via a deployed bundle")
			return 2
		}
		s, err := openVia(ctx, *via)
		if err != nil {
			fmt.Fprintf(stderr, "onboard import: %v\n", err)
			return 2
		}
		defer s.close()
		results = runRows(ctx, s.units(rows), s.sendsInFlight(*concurrency), s.send, progress.done)
	} else {
		l, ok := startLocalFor(ctx, "onboard import", stderr, slog.LevelError)
		if !ok {
			return 1
		}
		defer l.close()
		results = runLocally(ctx, l, rows, *concurrency, *dryRun, core.Meta{Trigger: "import", Operator: true, Force: *force, Adopt: *adopt}, stdout, progress)
	}
	progress.finish()
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing was written; the counts below are what a real import would do")
	}

	interrupted := ctx.Err() != nil
	failed := printSummary(stdout, rows, results, time.Since(started), interrupted)
	if failed > 0 && !*dryRun {
		out := failuresPath(path)
		if err := writeFailures(out, header, rows, results); err != nil {
			fmt.Fprintf(stderr, "onboard import: writing %s: %v\n", out, err)
		} else {
			fmt.Fprintf(stderr, "onboard import: %d row(s) failed; they are in %s with the reason\n", failed, out)
		}
	}
	switch {
	case interrupted:
		fmt.Fprintln(stderr, "onboard import: interrupted; run the same command again to resume (done rows are skipped)")
		return 130
	case failed > 0:
		return 1
	}
	return 0
}

// runLocally runs the rows through this process's engine as one event
// batch, retrying what the targets say is retryable; a dry run prints each
// row's plan. meta is every row's: an operator's, with their --force and
// --adopt.
func runLocally(ctx context.Context, l *local, rows []row, concurrency int, dryRun bool, meta core.Meta, stdout io.Writer, progress *progress) []rowResult {
	var planOut sync.Mutex
	return withRetries(ctx, rows, func(ctx context.Context, unit []row, report func(int, rowResult)) {
		items := make([]runner.Item, len(unit))
		for i, r := range unit {
			items[i] = runner.Item{Request: r.req, Meta: meta}
			if dryRun {
				items[i].Plan = &core.Plan{}
			}
		}
		runner.Run(ctx, l.app.Engine, items, concurrency, func(i int, o runner.Outcome) {
			if items[i].Plan != nil && o.Err == nil {
				planOut.Lock()
				fmt.Fprintf(stdout, "line %d ", unit[i].line)
				printResult(stdout, unit[i].req.Email, o.Result, items[i].Plan)
				planOut.Unlock()
			}
			report(i, rowResult{status: o.Result.Status, err: l.shown(o.Err)})
		})
	}, progress.done)
}

// readImportFile parses the CSV file at path (see parseImport).
func readImportFile(path string) (header []string, rows []row, problems []string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, []string{err.Error()}
	}
	defer f.Close()
	return parseImport(f)
}

// parseImport parses an import file and builds one request per row. Problems
// are collected, not returned one at a time: the user fixes a file once.
// Lines are the file's: csv skips empty lines and a quoted field may span
// several, so a record's index is not its line.
func parseImport(r io.Reader) (header []string, rows []row, problems []string) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, []string{"the file is empty: it needs a header line such as email,name,profile"}
	}
	if err != nil {
		return nil, nil, []string{err.Error()}
	}
	headerLine, _ := cr.FieldPos(0)
	seen := map[string]bool{}
	for i, col := range header {
		col = strings.TrimSpace(strings.TrimPrefix(col, "\ufeff")) // Excel writes a byte-order mark
		header[i] = col
		if !core.IsColumn(col) {
			problems = append(problems, fmt.Sprintf("line %d: unknown column %q (known: email, name, first_name, last_name, profile, action, external_user_id, idempotency_key, attr.NAME)", headerLine, col))
		}
		if seen[col] {
			problems = append(problems, fmt.Sprintf("line %d: column %q appears twice", headerLine, col))
		}
		seen[col] = true
	}
	if !seen["email"] {
		problems = append(problems, fmt.Sprintf("line %d: no email column", headerLine))
	}
	if len(problems) > 0 {
		return header, nil, problems
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return header, nil, append(problems, err.Error())
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a line of blanks
		}
		if len(rec) != len(header) {
			problems = append(problems, fmt.Sprintf("line %d: %d fields, the header has %d", line, len(rec), len(header)))
			continue
		}
		rows = append(rows, row{line: line, record: rec, req: core.RequestFromRow(header, rec)})
	}
	if len(rows) == 0 && len(problems) == 0 {
		problems = append(problems, "no rows after the header")
	}
	return header, rows, problems
}

// validateRows normalises each row and applies policy to it, changing
// nothing anywhere, and reports every bad row with its line. operator is
// false when the rows go to a deployed function.
func validateRows(cfg *core.Config, rows []row, operator bool) []string {
	var problems []string
	for i := range rows {
		r := &rows[i]
		req, err := r.req.Normalize()
		if err == nil {
			_, _, err = cfg.Authorize(req, operator)
		}
		if err != nil {
			refusal := core.AsError(err)
			col := refusal.Field
			if k, ok := strings.CutPrefix(col, "attributes."); ok {
				col = "attr." + k
			}
			problems = append(problems, fmt.Sprintf("line %d: %s: %s", r.line, col, refusal.Message))
			continue
		}
		r.req = req
	}
	return problems
}

// runRows works on units of rows (a unit is what one send carries: a row
// here, a bulk body via HTTP) with at most concurrency units at once,
// retrying what the targets say is retryable, and stops dispatching when
// ctx ends (units in flight finish or release their claim). It returns the
// rows' results in order.
// The units are one core.Batch, so locally, where a unit is a row, targets
// that serve many people in one call (AAC) make one call per batch-full of
// rows, not one per wave.
func runRows(ctx context.Context, units [][]row, concurrency int, send func(context.Context, []row) []rowResult, done func(rowResult)) []rowResult {
	total := 0
	for _, u := range units {
		total += len(u)
	}
	results := make([]rowResult, total)
	batch := core.NewBatch(concurrency)
	batch.Add(len(units))
	first := 0 // the index of the unit's first row
	for _, u := range units {
		out := results[first : first+len(u)]
		err := batch.Go(ctx, func(ctx context.Context) {
			copy(out, withRetries(ctx, u, reportAll(send), done))
		}, func(panicked error) {
			slog.Error("panic while importing rows; they fail, the others go on", "error", errors.Unwrap(panicked).Error())
			for j := range out {
				out[j] = rowResult{err: core.AsError(panicked)}
				done(out[j])
			}
		})
		if err != nil {
			batch.Wait()
			for j := first; j < total; j++ {
				results[j] = rowResult{err: &core.Error{Status: http.StatusServiceUnavailable, Message: "not run: the import was interrupted"}}
			}
			return results
		}
		first += len(u)
	}
	batch.Wait()
	return results
}

const maxRowAttempts = 5

// withRetries sends a unit, then resends only the rows whose results are
// retryable, as a smaller unit, after the longest wait any of them asked
// for. send reports each row's result as it comes; done sees each row
// once, when its result is final.
func withRetries(ctx context.Context, unit []row, send func(context.Context, []row, func(int, rowResult)), done func(rowResult)) []rowResult {
	results := make([]rowResult, len(unit))
	pending := make([]int, len(unit)) // indexes into unit of the rows to send
	for i := range pending {
		pending[i] = i
	}
	for attempt := 1; ; attempt++ {
		sending := make([]row, len(pending))
		for j, i := range pending {
			sending[j] = unit[i]
		}
		var mu sync.Mutex
		var retry []int
		var wait time.Duration
		send(ctx, sending, func(j int, r rowResult) {
			i := pending[j]
			again := r.err != nil && r.err.Retryable() && attempt < maxRowAttempts
			mu.Lock()
			results[i] = r
			if again {
				retry = append(retry, i)
				wait = max(wait, r.err.RetryAfter)
			}
			mu.Unlock()
			if !again {
				done(r)
			}
		})
		if len(retry) == 0 {
			return results
		}
		slices.Sort(retry)
		select {
		case <-ctx.Done():
			for _, i := range retry {
				done(results[i])
			}
			return results
		case <-time.After(min(max(wait, time.Second), time.Minute)):
		}
		pending = retry
	}
}

// reportAll adapts a send that answers a whole unit at once.
func reportAll(send func(context.Context, []row) []rowResult) func(context.Context, []row, func(int, rowResult)) {
	return func(ctx context.Context, unit []row, report func(int, rowResult)) {
		for j, r := range send(ctx, unit) {
			report(j, r)
		}
	}
}

func printSummary(w io.Writer, rows []row, results []rowResult, elapsed time.Duration, interrupted bool) (failed int) {
	counts := map[string]int{}
	for _, r := range results {
		if r.err != nil {
			failed++
			continue
		}
		counts[string(r.status)]++
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "outcome\trows\t")
	for _, s := range []core.Status{core.StatusCreated, core.StatusUpdated, core.StatusUnchanged, core.StatusDisabled, core.StatusDeleted, statusQueued} {
		if counts[string(s)] > 0 {
			fmt.Fprintf(tw, "%s\t%d\t\n", s, counts[string(s)])
		}
	}
	if failed > 0 {
		fmt.Fprintf(tw, "failed\t%d\t\n", failed)
	}
	fmt.Fprintf(tw, "total\t%d\t\n", len(rows))
	_ = tw.Flush()
	state := "done"
	if interrupted {
		state = "interrupted"
	}
	fmt.Fprintf(w, "%s in %s\n", state, elapsed.Round(time.Millisecond))
	return failed
}

func failuresPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".failures.csv"
}

func writeFailures(path string, header []string, rows []row, results []rowResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	_ = cw.Write(append(append([]string{}, header...), "error"))
	for i, r := range results {
		if r.err != nil {
			_ = cw.Write(append(append([]string{}, rows[i].record...), r.err.Error()))
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
