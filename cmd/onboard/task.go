package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/targets"
)

func taskCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("task", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "list: one JSON array, each task with its schedule when the policy sets one (the deploy scripts read it)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: onboard task list [--json]
       onboard task run NAME

Runs a maintenance task now, as the deployment's schedule does (Cloud
Scheduler, EventBridge), against the deployment's store and the settings of
the target that owns it; no other target's settings are needed. A task of a
target that is not configured has nothing to do. The exit code is 0 when
the task succeeded, 1 when it failed (the log says why and what to fix).

list names every task: the targets' own (scheduled by the deployment
itself) and those the policy (ONBOARD_CONFIG) schedules, with their interval:
a poll per Google Sheet, named sheets-poll:SPREADSHEET_ID/TAB. A sheet's
poll runs every target, so it needs the settings of all of them.

Example:
  onboard task list
  ONBOARD_STORE=dynamodb:onboard onboard task run NAME   # with the owning target's settings
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	switch rest := fs.Args(); {
	case len(rest) == 1 && rest[0] == "list":
		return listTasks(stdout, stderr, *asJSON)
	case len(rest) == 2 && rest[0] == "run":
		return runTask(rest[1], stderr)
	}
	fs.Usage()
	return 2
}

// scheduledTask is one line of `onboard task list --json`.
type scheduledTask struct {
	Name string `json:"name"`
	// Every, Cron and Rate are set for a task the policy schedules; the
	// deployment schedules the targets' own.
	Every string `json:"every,omitempty"`
	Cron  string `json:"cron,omitempty"`
	Rate  string `json:"rate,omitempty"`
}

func listTasks(stdout, stderr io.Writer, asJSON bool) int {
	cfg, err := targets.LoadConfig(targets.ConfigPath(os.Getenv))
	if err != nil {
		fmt.Fprintf(stderr, "onboard task list: %s\n", err)
		return 2
	}
	list := []scheduledTask{}
	for _, name := range app.Tasks() {
		list = append(list, scheduledTask{Name: name})
	}
	for _, s := range app.Schedules(cfg) {
		list = append(list, scheduledTask{Name: s.Task, Every: shortDuration(s.Every), Cron: s.Cron(), Rate: s.Rate()})
	}
	if asJSON {
		out, _ := json.MarshalIndent(list, "", "  ")
		fmt.Fprintf(stdout, "%s\n", out)
		return 0
	}
	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for _, t := range list {
		if t.Every == "" {
			fmt.Fprintf(w, "%s\n", t.Name)
		} else {
			fmt.Fprintf(w, "%s\tevery %s\n", t.Name, t.Every)
		}
	}
	_ = w.Flush()
	return 0
}

func runTask(name string, stderr io.Writer) int {
	ctx := context.Background()
	redactor := &logging.Redactor{}
	log := logging.New(stderr, slog.LevelInfo, redactor)
	a, err := app.NewForTask(ctx, app.Options{Log: log, Redactor: redactor, StoreBackends: storeBackends, SourceClients: sourceClients}, name)
	if err != nil {
		fmt.Fprintf(stderr, "onboard task run %s: %s\n", name, redactor.Redact(err.Error()))
		return 2
	}
	defer a.Close()
	if err := a.RunTask(ctx, name, nil); err != nil {
		fmt.Fprintf(stderr, "onboard task run %s: %s\n", name, redactor.Redact(err.Error()))
		if errors.Is(err, app.ErrUnknownTask) {
			return 2
		}
		return 1
	}
	return 0
}
