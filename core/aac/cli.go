package aac

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// commands are AAC's admin commands: onboard aac status|keep-alive|seed-token.
var commands = []plugin.Command{
	{Name: "status", Summary: "show every token chain: where its live head came from, when it was last rotated, whether its access token is current", Run: statusCmd},
	{Name: "keep-alive", Summary: "rotate the chains not rotated for a week (what the daily schedule runs), so no refresh token reaches its lifetime", Run: keepAliveCmd},
	{Name: "seed-token", Summary: "store a new refresh token as the live head of a workspace's (or the account's) token chain", Run: seedTokenCmd},
}

// openTarget builds the AAC target from the deployment's settings.
func openTarget(ctx context.Context, cli plugin.CLI) (*Target, *core.Config, func(), error) {
	cfg, built, done, err := cli.Open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return built.Targets[0].(*Target), cfg, done, nil
}

func statusCmd(ctx context.Context, args []string, cli plugin.CLI) int {
	stdout, stderr := cli.Stdout, cli.Stderr
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
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	t, cfg, done, err := openTarget(ctx, cli)
	if err != nil {
		fmt.Fprintf(stderr, "onboard aac status: %v\n", err)
		return 2
	}
	defer done()
	reports, err := t.Status(ctx, Workspaces(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "onboard aac status: %v\n", err)
		return 1
	}
	printChains(stdout, reports, false)
	return 0
}

func keepAliveCmd(ctx context.Context, args []string, cli plugin.CLI) int {
	stdout, stderr := cli.Stdout, cli.Stderr
	fs := flag.NewFlagSet("aac keep-alive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	maxIdle := fs.Duration("max-idle", DefaultKeepAliveIdle, "rotate chains not rotated for this long; 0 rotates every chain now")
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
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if *maxIdle < 0 {
		fmt.Fprintln(stderr, "onboard aac keep-alive: --max-idle cannot be negative")
		return 2
	}
	t, cfg, done, err := openTarget(ctx, cli)
	if err != nil {
		fmt.Fprintf(stderr, "onboard aac keep-alive: %v\n", err)
		return 2
	}
	defer done()
	reports, err := t.KeepAlive(ctx, Workspaces(cfg), *maxIdle)
	if err != nil {
		fmt.Fprintf(stderr, "onboard aac keep-alive: %v\n", err)
		return 1
	}
	printChains(stdout, reports, true)
	failed := 0
	for _, r := range reports {
		if r.Outcome == KeepAliveFailed {
			failed++
			fmt.Fprintf(stderr, "onboard aac keep-alive: %s: %v\n", r.Chain, r.Err)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func printChains(w io.Writer, reports []ChainReport, withOutcome bool) {
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

func seedTokenCmd(ctx context.Context, args []string, cli plugin.CLI) int {
	stdout, stderr := cli.Stdout, cli.Stderr
	fs := flag.NewFlagSet("aac seed-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workspace := fs.String("workspace", "", "the AAC workspace whose chain this token starts, exactly as profiles name it")
	account := fs.Bool("account", false, "seed the account-level chain (AAC_ACCOUNT_REFRESH_TOKEN's), used to create workspaces")
	tokenFile := fs.String("token-file", "", "read the token from this file instead of standard input")
	fs.Usage = func() {
		// WriteString: the example's printf %s is no format directive here.
		_, _ = io.WriteString(stderr, `Usage: onboard aac seed-token (--workspace NAME | --account) [--token-file PATH]

Stores a refresh token as the live head of a token chain in the state store
(ONBOARD_STORE, default file:.onboard), replacing what is there. Use it for a
workspace onboard created (AAC issues its first token only in the UI), or
when onboard logs "AAC token chain broken". AAC_BASE_URL must be the
deployment's: chains are kept per AAC host.

The token is read from standard input (or --token-file), never from a flag,
so it stays out of shell history and process lists. Paste either the refresh
token alone, or both tokens of AAC's Generate dialog as JSON:
  {"access_token":"…","refresh_token":"…"}
With the access token, onboard also learns the token endpoint and client id
from it (otherwise set AAC_TOKEN_URL and AAC_CLIENT_ID). From now on onboard
rotates this token: do not use it anywhere else, each use spends it.

Examples:
  read -rs T && printf %s "$T" | AAC_BASE_URL=https://us1.alteryxcloud.com \
    ONBOARD_STORE=firestore ONBOARD_GCP_PROJECT=my-project \
    onboard aac seed-token --workspace 'Sales Analytics'
  AAC_BASE_URL=https://us1.alteryxcloud.com ONBOARD_STORE=dynamodb:onboard-state \
    onboard aac seed-token --account --token-file ~/Downloads/creds.json

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "onboard aac seed-token: "+format+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, "unexpected argument %q: the token is read from standard input or --token-file, never from the command line", fs.Arg(0))
	}
	if (*workspace == "") == !*account {
		return fail(2, "give exactly one of --workspace NAME or --account")
	}
	if cli.Getenv(SettingBaseURL) == "" {
		return fail(2, "AAC_BASE_URL is not set: set it as the deployment does (e.g. https://us1.alteryxcloud.com); chains are kept per AAC host")
	}
	base, err := BaseURL(cli.Getenv(SettingBaseURL))
	if err != nil {
		return fail(2, "%v", err)
	}
	creds, err := readCredentials(cli.Stdin, *tokenFile, stderr)
	if err != nil {
		return fail(2, "%v", err)
	}

	key, what := AccountChainKey(base), "the AAC account"
	if *workspace != "" {
		key, what = WorkspaceChainKey(base, *workspace), fmt.Sprintf("AAC workspace %q", *workspace)
		if !profileNames(cli, *workspace) {
			fmt.Fprintf(stderr, "onboard aac seed-token: note: no profile in %s names workspace %q; check the spelling (it must match exactly)\n",
				cli.PolicyPath, *workspace)
		}
	}
	store, err := cli.OpenStore(ctx)
	if err != nil {
		return fail(1, "%v", err)
	}
	defer store.Close()
	replaced, err := Seed(ctx, store, key, creds, "onboard aac seed-token")
	if err != nil {
		return fail(1, "storing the token: %v", err)
	}
	fmt.Fprintf(stdout, "Stored a new refresh token for %s (key %q).\n", what, key)
	if replaced != nil {
		fmt.Fprintf(stdout, "It replaces the head written by %s at %s.\n", replaced.Source, replaced.UpdatedAt.Format(time.RFC3339))
	}
	fmt.Fprintln(stdout, "onboard rotates it from now on: do not use this token anywhere else.")
	if creds.AccessToken == "" && (cli.Getenv(SettingTokenURL) == "" || cli.Getenv(SettingClientID) == "") {
		fmt.Fprintln(stdout, "Without the access token, the deployment needs AAC_TOKEN_URL and AAC_CLIENT_ID to refresh it.")
	}
	return 0
}

// readCredentials reads the pasted token from a file or standard input,
// prompting when standard input is a terminal.
func readCredentials(stdin io.Reader, path string, stderr io.Writer) (Credentials, error) {
	r := stdin
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return Credentials{}, fmt.Errorf("--token-file: %w", err)
		}
		defer f.Close()
		r = f
	} else if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(stderr, "Paste the refresh token (or the JSON with both tokens), then press Enter and Ctrl-D:\n")
		}
	}
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return Credentials{}, fmt.Errorf("reading the token: %w", err)
	}
	creds, err := ParseCredentials(string(b))
	if err != nil {
		return creds, fmt.Errorf("the token: %w", err)
	}
	return creds, nil
}

// profileNames reports whether a profile names the workspace, or the policy
// cannot be read here (the admin may run this away from the deployment).
func profileNames(cli plugin.CLI, workspace string) bool {
	cfg, err := cli.Policy()
	if err != nil {
		return true
	}
	for _, name := range cfg.ProfileNames() {
		if ap := ProfileOf(cfg.Profiles[name]); ap != nil && ap.Workspace == workspace {
			return true
		}
	}
	return false
}
