package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/targets"
)

// attrFlags collects repeated --attr key=value flags.
type attrFlags map[string]string

func (a attrFlags) String() string { return fmt.Sprint(map[string]string(a)) }

func (a attrFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", v)
	}
	a[k] = val
	return nil
}

func provision(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var req core.Request
	attrs := attrFlags{}
	fs.StringVar(&req.Email, "email", "", "the person's email (required)")
	fs.StringVar(&req.Name, "name", "", `full name, split on the first space ("Ada Lovelace")`)
	fs.StringVar(&req.FirstName, "first-name", "", "first name (instead of --name)")
	fs.StringVar(&req.LastName, "last-name", "", "last name (instead of --name)")
	fs.StringVar(&req.Profile, "profile", "", "profile from onboard.yaml (default: default_profile)")
	fs.StringVar(&req.ExternalUserID, "external-user-id", "", "embed user key, for kind: embed profiles")
	fs.StringVar(&req.IdempotencyKey, "idempotency-key", "", "key to deduplicate on (default: a hash of the request)")
	fs.Var(attrs, "attr", "user attribute key=value, repeatable (only keys the profile allows)")
	deprovision := fs.Bool("deprovision", false, "disable (or delete, as the profile they were given says) instead of provisioning")
	adopt := fs.Bool("adopt", false, "with --deprovision: also for someone onboard never provisioned, by --profile (or default_profile)")
	force := fs.Bool("force", false, "with --deprovision: go through an open deprovision breaker (still counted)")
	asJSON := fs.Bool("json", false, "print the answer as JSON, as the HTTP function would")
	dryRun := fs.Bool("dry-run", false, "read every target and print what would change, without writing anything")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard provision --email ADDRESS [--name "First Last"] [--profile NAME] [--attr k=v]... [--deprovision]

Provisions one person with the same engine, policy and state store as the
functions, and prints what each target did. A target without settings is an
in-memory fake (ONBOARD_SANDBOX=0 refuses that); the note says which are real.

As an operator you may give any profile, also one marked requestable: false.
A deprovision acts by the profile onboard gave the person (its record), never
by --profile; someone onboard has no record of needs --adopt, and a person on
the protected list is never deprovisioned.

Examples:
  onboard provision --email ada@example.com --name "Ada Lovelace" --attr region=EMEA
  onboard provision --email ada@example.com --name "Ada Lovelace" --dry-run
  onboard provision --email ada@example.com --deprovision
  onboard provision --email bob@example.com --deprovision --adopt --profile analyst

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "onboard provision: unexpected argument %q (flags go before nothing else)\n", fs.Arg(0))
		return 2
	}
	if (*adopt || *force) && !*deprovision {
		fmt.Fprintln(stderr, "onboard provision: --adopt and --force go with --deprovision")
		return 2
	}
	if *deprovision {
		req.Action = core.ActionDeprovision
	}
	if len(attrs) > 0 {
		req.Attributes = attrs
	}
	norm, verr := req.Normalize()
	if verr == nil {
		// Policy first, as import does: a refused request starts nothing.
		cfg, err := targets.LoadConfig(targets.ConfigPath(os.Getenv))
		if err != nil {
			fmt.Fprintf(stderr, "onboard provision: %v\n", err)
			return 1
		}
		_, _, verr = cfg.Authorize(norm, true)
	}
	if verr != nil {
		fmt.Fprintf(stderr, "onboard provision: %s\n", flagError(verr))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, ok := startLocalFor(ctx, "onboard provision", stderr, slog.LevelError)
	if !ok {
		return 1
	}
	defer l.close()
	var plan *core.Plan
	if *dryRun {
		plan = &core.Plan{}
		ctx = core.WithPlan(ctx, plan)
	}
	res, herr := l.handle(ctx, norm, core.Meta{Trigger: "cli", Operator: true, Adopt: *adopt, Force: *force})
	if *asJSON {
		_ = json.NewEncoder(stdout).Encode(res)
	} else {
		printResult(stdout, norm.Email, res, plan)
	}
	if herr != nil {
		hint := ""
		if core.AsError(herr).Retryable() {
			hint = " (safe to run again)"
		}
		fmt.Fprintf(stderr, "onboard provision: %s%s\n", herr.Error(), hint)
		return 1
	}
	return 0
}

// flagError names the flag behind a request field, so the message points
// at what the user typed.
func flagError(err error) string {
	e := core.AsError(err)
	if e.Field == "" {
		return e.Message
	}
	flagName := "--" + strings.ReplaceAll(e.Field, "_", "-")
	if k, ok := strings.CutPrefix(e.Field, "attributes."); ok {
		flagName = "--attr " + k
	}
	return flagName + ": " + e.Message
}

// printResult shows what each target did, or with a plan what each would
// do and the writes it would send.
func printResult(w io.Writer, email string, res core.Result, plan *core.Plan) {
	if plan != nil {
		fmt.Fprintf(w, "%s: would be %s (dry run: nothing was written)\n", email, res.Status)
	} else {
		fmt.Fprintf(w, "%s: %s\n", email, res.Status)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	names := make([]string, 0, len(res.Targets))
	for n := range res.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := res.Targets[n]
		id := ""
		if t.ID != "" {
			id = "id " + t.ID
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n, t.Status, id, strings.Join(t.Changes, ", "))
	}
	if res.Email != "" {
		fmt.Fprintf(tw, "  welcome email\t%s\t\t\n", res.Email)
	}
	_ = tw.Flush()
	if plan != nil {
		for _, pw := range plan.Writes() {
			what := pw.Operation
			if strings.HasPrefix(pw.Detail, "/") {
				// The detail starts with the concrete path, which says more
				// than the operation's template: keep only its method.
				what, _, _ = strings.Cut(pw.Operation, " ")
			}
			fmt.Fprintf(w, "  would %s %s %s\n", pw.Target, what, pw.Detail)
		}
	}
}
