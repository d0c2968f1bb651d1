package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
)

func aacStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("aac status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard aac status

Shows every AAC token chain the deployment uses: each workspace a profile
names (or AAC_REFRESH_TOKENS seeds), and the account chain when it exists.
For each: whether the store holds its live head, where that head came from
(secret, seed-token, refresh), when and by which instance it was last
rotated, and until when its access token is valid. It reads the store and
the seeds only: it calls AAC for nothing and spends no token. No token is
ever printed.

A chain that is stored but shows an expired access token and an old
rotation is simply unused; run onboard aac keep-alive to rotate it, and
mind the refresh token's lifetime (chosen when it was generated).
`)
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	a, code := openAACAdmin(stderr, "status")
	if a == nil {
		return code
	}
	defer a.Close()
	reports, err := a.AAC().Status(context.Background(), aac.Workspaces(a.Config))
	if err != nil {
		fmt.Fprintf(stderr, "onboard aac status: %v\n", err)
		return 1
	}
	printChains(stdout, reports, false)
	return 0
}

func aacKeepAlive(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("aac keep-alive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	maxIdle := fs.Duration("max-idle", aac.DefaultKeepAliveIdle, "rotate chains not rotated for this long; 0 rotates every chain now")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard aac keep-alive [--max-idle DURATION]

Rotates every AAC token chain not rotated within --max-idle (default 168h,
a week), through the same protocol as any request (lease, compare-and-swap
before use), so it is safe while the deployment runs. A chain known only
from its seed secret is started from it. The deployment runs this daily on
its own (task aac-keep-alive); run it by hand after a long pause, or to
check a chain: a broken one is reported with the command that fixes it.
Exits 1 when some chain could not be rotated.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *maxIdle < 0 {
		fmt.Fprintln(stderr, "onboard aac keep-alive: --max-idle cannot be negative")
		return 2
	}
	a, code := openAACAdmin(stderr, "keep-alive")
	if a == nil {
		return code
	}
	defer a.Close()
	reports, err := a.AAC().KeepAlive(context.Background(), aac.Workspaces(a.Config), *maxIdle)
	if err != nil {
		fmt.Fprintf(stderr, "onboard aac keep-alive: %v\n", err)
		return 1
	}
	printChains(stdout, reports, true)
	failed := 0
	for _, r := range reports {
		if r.Outcome == aac.KeepAliveFailed {
			failed++
			fmt.Fprintf(stderr, "onboard aac keep-alive: %s: %v\n", r.Chain, r.Err)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// openAACAdmin opens the deployment's AAC chains from the environment,
// logging only warnings (to stderr) so the table stays readable.
func openAACAdmin(stderr io.Writer, command string) (*app.App, int) {
	redactor := &logging.Redactor{}
	a, err := app.NewForTarget(context.Background(), app.Options{
		Log:           logging.New(stderr, slog.LevelWarn, redactor),
		Redactor:      redactor,
		StoreBackends: storeBackends,
	}, aac.TargetName)
	if err != nil {
		fmt.Fprintf(stderr, "onboard aac %s: %v\n", command, err)
		return nil, 2
	}
	return a, 0
}

func printChains(w io.Writer, reports []aac.ChainReport, withOutcome bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "CHAIN\tSTORED HEAD\tLAST ROTATED\tACCESS TOKEN\tSEED SECRET"
	if withOutcome {
		head += "\tKEEP-ALIVE"
	}
	fmt.Fprintln(tw, head)
	now := time.Now()
	for _, r := range reports {
		stored, rotated, access := "none", "-", "-"
		if r.Stored {
			stored = r.Source
			rotated = fmt.Sprintf("%s ago (%s, by %s)", now.Sub(r.UpdatedAt).Round(time.Second), r.UpdatedAt.UTC().Format(time.RFC3339), r.UpdatedBy)
			access = "expired"
			if r.AccessExpiry.After(now) {
				access = "valid until " + r.AccessExpiry.UTC().Format(time.RFC3339)
			} else if r.AccessExpiry.IsZero() {
				access = "none yet"
			}
		}
		seed := "no"
		if r.Seeded {
			seed = "yes"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Chain, stored, rotated, access, seed)
		if withOutcome {
			line += "\t" + r.Outcome
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	for _, r := range reports {
		if !r.Stored && !r.Seeded {
			fmt.Fprintf(w, "\n%s has no token: generate one in AAC and run %s\n", r.Chain, r.Fix)
		}
	}
}
