package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
)

const breakerUsage = `Usage: onboard breaker <command> [flags]

The deprovision breaker: once more than max_deprovision people are
deprovisioned within an hour (every trigger and instance counts, in the state
store), every further deprovision answers 503 until an operator releases it.

Commands:
  status    show whether it is open, since when, and the last hour's count
  release   close it and start a new hour's count (recorded in the audit log)

Both use the deployment's store: ONBOARD_STORE (default file:.onboard) and
its project or table. Before releasing, read what was deprovisioned:
  onboard audit --since 2h
`

func breakerCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, breakerUsage)
		return 2
	}
	switch args[0] {
	case "status", "release":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, breakerUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "onboard breaker: unknown command %q\n\n%s", args[0], breakerUsage)
		return 2
	}
	fs := flag.NewFlagSet("breaker "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	by := fs.String("by", operatorName(), "who releases it, for the audit log")
	fs.Usage = func() { fmt.Fprint(stderr, breakerUsage+"\nFlags of release:\n"); fs.PrintDefaults() }
	if code, ok := parseFlags(fs, args[1:]); !ok {
		return code
	}
	ctx := context.Background()
	store, err := app.OpenStore(ctx, os.Getenv, app.Options{StoreBackends: storeBackends})
	if err != nil {
		fmt.Fprintf(stderr, "onboard breaker: %v\n", err)
		return 1
	}
	defer store.Close()
	if args[0] == "status" {
		b, _, err := core.ReadBreaker(ctx, store)
		if err != nil {
			fmt.Fprintf(stderr, "onboard breaker: %v\n", err)
			return 1
		}
		if b.Open() {
			fmt.Fprintf(stdout, "open since %s (opened by request %s); deprovisions answer 503 until: onboard breaker release\n",
				b.OpenSince.Format(time.RFC3339), b.OpenedBy)
		} else {
			fmt.Fprintln(stdout, "closed")
		}
		fmt.Fprintf(stdout, "deprovisions in the last hour: %d\n", len(b.Recent))
		return 0
	}
	b, err := core.ReleaseBreaker(ctx, store, *by)
	if err != nil {
		fmt.Fprintf(stderr, "onboard breaker: release: %v\n", err)
		return 1
	}
	if !b.Open() {
		fmt.Fprintln(stdout, "the breaker was closed; its hour's count starts again")
		return 0
	}
	fmt.Fprintf(stdout, "released the breaker open since %s; deprovisions run again\n", b.OpenSince.Format(time.RFC3339))
	return 0
}

// operatorName is who runs the CLI, as the audit log should name them.
func operatorName() string {
	name := "operator"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		name += "@" + host
	}
	return name
}
