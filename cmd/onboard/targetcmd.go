package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/targets"
)

// stdin is where a command reads what it must not take from a flag (a
// token); a variable so tests can feed it.
var stdin io.Reader = os.Stdin

// targetCommand runs a target's admin commands: onboard NAME COMMAND.
func targetCommand(t plugin.Target) func([]string, io.Writer, io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		var usage strings.Builder
		fmt.Fprintf(&usage, "Usage: onboard %s <command> [flags]\n\nCommands:\n", t.Name)
		for _, c := range t.Commands {
			fmt.Fprintf(&usage, "  %-12s %s\n", c.Name, c.Summary)
		}
		fmt.Fprintf(&usage, "\nEach reads the deployment's settings from the environment: the target's\n"+
			"(onboard settings lists them), ONBOARD_STORE and ONBOARD_CONFIG.\nonboard %s COMMAND -h explains one.\n", t.Name)
		if len(args) == 0 {
			fmt.Fprint(stderr, usage.String())
			return 2
		}
		for _, c := range t.Commands {
			if c.Name == args[0] {
				return c.Run(context.Background(), args[1:], cliFor(t, stdout, stderr))
			}
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdout, usage.String())
			return 0
		}
		fmt.Fprintf(stderr, "onboard %s: unknown command %q\n\n%s", t.Name, args[0], usage.String())
		return 2
	}
}

// cliFor is what a target's command may use of the deployment, logging
// only warnings (to stderr) so its own output stays readable.
func cliFor(t plugin.Target, stdout, stderr io.Writer) plugin.CLI {
	return plugin.CLI{
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, ParseFlags: parseFlags,
		Policy:     func() (*core.Config, error) { return targets.LoadConfig(targets.ConfigPath(os.Getenv)) },
		PolicyPath: targets.ConfigPath(os.Getenv),
		OpenStore: func(ctx context.Context) (state.Store, error) {
			return app.OpenStore(ctx, os.Getenv, app.Options{StoreBackends: storeBackends})
		},
		Open: func(ctx context.Context) (*core.Config, *plugin.Built, func(), error) {
			redactor := &logging.Redactor{}
			a, err := app.NewForTarget(ctx, app.Options{
				Log: logging.New(stderr, slog.LevelWarn, redactor), Redactor: redactor, StoreBackends: storeBackends,
			}, t.Name)
			if err != nil {
				return nil, nil, nil, err
			}
			return a.Config, a.Built(t.Name), func() { _ = a.Close() }, nil
		},
	}
}
