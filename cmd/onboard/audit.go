package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/sheets/gsheets"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/dynamostore"
	"github.com/onboard-dev/onboard/core/state/firestorestore"
)

// storeBackends are every store the CLI can read: it runs on an admin's
// machine, where linking both clouds' clients costs nothing.
var storeBackends = map[string]state.Backend{"firestore": firestorestore.Backend, "dynamodb": dynamostore.Backend(loadAWSConfig)}

// sourceClients open the clients of the sources onboard reads on a
// schedule: `onboard task run sheets-poll:…` runs one as a deployment does.
var sourceClients = map[string]plugin.SourceClient{"sheets": gsheets.Connect}

// loadAWSConfig is the SDK's whole configuration chain (profiles, SSO,
// assumed roles), which an admin's machine needs and the Lambda does
// without. getenv's AWS_REGION wins over the process's.
func loadAWSConfig(ctx context.Context, getenv func(string) string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region := getenv("AWS_REGION"); region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

func audit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "", "only records at or after this time: a duration back from now (24h, 30m) or an RFC 3339 time")
	email := fs.String("email", "", "only records about this person")
	limit := fs.Int("limit", 0, "at most this many records (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object per line instead of a table")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard audit [--since 24h|2026-11-22T09:00:00Z] [--email ADDRESS] [--limit N] [--json]

Prints the audit log: every write onboard made to a target (time, request id,
trigger, target, operation, person, outcome, error), oldest first, from the
store ONBOARD_STORE names (default file:.onboard, what make run writes).

Examples:
  onboard audit --since 24h
  onboard audit --email ada@example.com --json | jq .
  ONBOARD_STORE=dynamodb:onboard-state onboard audit --since 2026-11-01T00:00:00Z

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	q := state.AuditQuery{Limit: *limit}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "onboard audit: --since: %v\n", err)
			return 2
		}
		q.Since = t
	}
	if *email != "" {
		e, err := core.NormalizeEmail(*email)
		if err != nil {
			fmt.Fprintf(stderr, "onboard audit: --email: %s\n", core.AsError(err).Message)
			return 2
		}
		q.Person = e
	}
	recs, ok := readFromStore(stderr, "onboard audit", "the audit log", func(ctx context.Context, store state.Store) ([]state.AuditRecord, error) {
		return store.Audit(ctx, q)
	})
	if !ok {
		return 1
	}
	if *asJSON {
		jsonLines(stdout, recs)
		return 0
	}
	if len(recs) == 0 {
		fmt.Fprintln(stderr, "onboard audit: no records match")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tREQUEST\tTRIGGER\tTARGET\tOPERATION\tRESOURCE\tPERSON\tOUTCOME")
	for _, r := range recs {
		outcome := r.Outcome
		if r.Error != "" {
			outcome += ": " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), r.RequestID, r.Trigger,
			r.Target, r.Operation, cmp.Or(r.Resource, "-"), r.Person, strings.ReplaceAll(outcome, "\n", " "))
	}
	_ = tw.Flush()
	return 0
}

// parseSince reads "24h"-style durations back from now, or RFC 3339 times.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: use a positive duration back from now", v)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration like 24h nor a time like 2026-11-22T09:00:00Z", v)
	}
	return t, nil
}

// readFromStore opens the store ONBOARD_STORE names, reads what it holds
// with read and closes it; a failure is printed as command's, what naming
// what was being read.
func readFromStore[T any](stderr io.Writer, command, what string, read func(context.Context, state.Store) (T, error)) (T, bool) {
	var none T
	ctx := context.Background()
	store, err := app.OpenStore(ctx, os.Getenv, app.Options{StoreBackends: storeBackends})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", command, err)
		return none, false
	}
	defer store.Close()
	v, err := read(ctx, store)
	if err != nil {
		fmt.Fprintf(stderr, "%s: reading %s: %v\n", command, what, err)
		return none, false
	}
	return v, true
}

// jsonLines writes one JSON object per line, for jq and scripts.
func jsonLines[T any](w io.Writer, list []T) {
	enc := json.NewEncoder(w)
	for _, v := range list {
		_ = enc.Encode(v)
	}
}
