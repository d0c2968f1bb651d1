package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
)

func taskCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("task", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: onboard task list
       onboard task run NAME

Runs a maintenance task now, as the deployment's schedule does (Cloud
Scheduler, EventBridge), against the deployment's store and the settings of
the target that owns it; no other target's settings are needed. A task of a
target that is not configured has nothing to do. The exit code is 0 when
the task succeeded, 1 when it failed (the log says why and what to fix).

Example:
  onboard task list
  ONBOARD_STORE=dynamodb:onboard onboard task run NAME   # with the owning target's settings
`)
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	switch rest := fs.Args(); {
	case len(rest) == 1 && rest[0] == "list":
		for _, name := range app.Tasks() {
			fmt.Fprintln(stdout, name)
		}
		return 0
	case len(rest) == 2 && rest[0] == "run":
		return runTask(rest[1], stderr)
	}
	fs.Usage()
	return 2
}

func runTask(name string, stderr io.Writer) int {
	ctx := context.Background()
	redactor := &logging.Redactor{}
	log := logging.New(stderr, slog.LevelInfo, redactor)
	a, err := app.NewForTask(ctx, app.Options{Log: log, Redactor: redactor, StoreBackends: storeBackends}, name)
	if err != nil {
		fmt.Fprintf(stderr, "onboard task run %s: %s\n", name, redactor.Redact(err.Error()))
		return 2
	}
	defer a.Close()
	if err := a.RunTask(ctx, name, nil); err != nil {
		fmt.Fprintf(stderr, "onboard task run %s: %s\n", name, redactor.Redact(err.Error()))
		return 1
	}
	return 0
}
