package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/onboard-dev/onboard/core/sheets"
	"github.com/onboard-dev/onboard/core/sheets/gsheets"
)

func sheetsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sheets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "sync: say what each row would do; write nothing to the sheet or any target")
	only := fs.String("sheet", "", "only the sheet with this spreadsheet_id")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: onboard sheets check [--sheet ID]
       onboard sheets sync [--dry-run] [--sheet ID]

The Google Sheets that onboard.yaml lists under sources.sheets.

  check  reads each sheet's header and says which column feeds which request
         field, which is the status column, and how many rows a poll would run.
  sync   runs one poll now, as the deployed schedule does: every row whose
         status cell is empty (or says retrying) is provisioned, and its outcome
         written into that cell; prints what happened to each row.

Credentials: GOOGLE_SHEETS_CREDENTIALS (a service account's key file, the JSON
itself), else GOOGLE_APPLICATION_CREDENTIALS or gcloud's application-default
credentials. Share each sheet with that account as Editor. SHEETS_BASE_URL
points at another Sheets API (tests). The targets' settings are those of
onboard provision; without them the sandbox's fakes are used, as it says.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	rest := fs.Args()
	if len(rest) != 1 || (rest[0] != "check" && rest[0] != "sync") {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, ok := startLocalFor(ctx, "onboard sheets", stderr, slog.LevelWarn)
	if !ok {
		return 2
	}
	defer l.close()
	var list []sheets.Sheet
	for _, s := range sheets.Of(l.app.Engine.Config) {
		if *only == "" || s.SpreadsheetID == *only {
			list = append(list, s)
		}
	}
	if len(list) == 0 {
		fmt.Fprintln(stderr, "onboard sheets: onboard.yaml lists no such sheet under sources.sheets")
		return 2
	}
	cfg, err := gsheets.ConfigFromEnv(l.getenv)
	if err != nil {
		fmt.Fprintf(stderr, "onboard sheets: %s\n", err)
		return 2
	}
	cfg.TokenIssued = func(token string) { l.redactor.Add(token) }
	client, err := gsheets.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "onboard sheets: %s\n", l.instance.Redact(err.Error()))
		return 2
	}
	failed := false
	for _, sheet := range list {
		var err error
		if rest[0] == "check" {
			err = checkSheet(ctx, client, sheet, stdout)
		} else {
			poller := &sheets.Poller{Client: client, Engine: l.app.Engine, Store: l.app.Engine.Store, Concurrency: 4, Log: l.log}
			err = syncSheet(ctx, poller, sheet, *dryRun, stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "onboard sheets %s: %s\n", rest[0], l.instance.Redact(err.Error()))
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

func checkSheet(ctx context.Context, client sheets.Spreadsheets, sheet sheets.Sheet, stdout io.Writer) error {
	table, err := client.ReadTable(ctx, sheet.SpreadsheetID, sheet.Tab)
	if err != nil {
		return err
	}
	fields, status, pendingRows, err := sheet.Mapping(table)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s (tab %q): %d rows, %d to run on the next poll\n", sheet.SpreadsheetID, table.Tab, len(table.Rows), pendingRows)
	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for i, header := range table.Header {
		use := "ignored"
		switch {
		case i == status:
			use = "status (onboard writes here)"
		case fields[i] != "":
			use = "→ " + fields[i]
		}
		fmt.Fprintf(w, "  %s\t%s\n", header, use)
	}
	if status == len(table.Header) {
		fmt.Fprintf(w, "  (none yet)\tstatus column, added by the first poll\n")
	}
	return w.Flush()
}

func syncSheet(ctx context.Context, poller *sheets.Poller, sheet sheets.Sheet, dryRun bool, stdout io.Writer) error {
	outcomes, err := poller.Poll(ctx, sheet, dryRun)
	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for _, o := range outcomes {
		fmt.Fprintf(w, "row %d\t%s\t%s\n", o.Row, o.Email, o.Status)
		for _, pw := range o.Writes {
			fmt.Fprintf(w, "\t\twould: %s %s %s\n", pw.Target, pw.Operation, pw.Detail)
		}
	}
	_ = w.Flush()
	verb := "ran"
	if dryRun {
		verb = "would run (dry run: nothing written)"
	}
	fmt.Fprintf(stdout, "%s: %s %d rows\n", strings.TrimSpace(sheet.Name()), verb, len(outcomes))
	return err
}
