package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/targets"
)

const aacUsage = `Usage: onboard aac <command> [flags]

Alteryx Analytics Cloud administration.

Commands:
  status       show every token chain: where its live head came from, when
               it was last rotated, whether its access token is current
  keep-alive   rotate the chains not rotated for a week (what the deployment's
               daily schedule runs), so no refresh token reaches its lifetime
  seed-token   store a new refresh token as the live head of a workspace's
               (or the account's) token chain: onboard aac seed-token -h

status and keep-alive read the deployment's settings from the environment:
AAC_BASE_URL, ONBOARD_STORE (and its project or table), ONBOARD_CONFIG for
the workspaces the profiles name, and AAC_REFRESH_TOKENS if you have it.
`

// stdin is where seed-token reads a token unless --token-file says; a
// variable so tests can feed it.
var stdin io.Reader = os.Stdin

func aacCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, aacUsage)
		return 2
	}
	switch args[0] {
	case "seed-token":
		return seedToken(args[1:], stdout, stderr)
	case "status":
		return aacStatus(args[1:], stdout, stderr)
	case "keep-alive":
		return aacKeepAlive(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, aacUsage)
		return 0
	}
	fmt.Fprintf(stderr, "onboard aac: unknown command %q\n\n%s", args[0], aacUsage)
	return 2
}

func seedToken(args []string, stdout, stderr io.Writer) int {
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
	if code, ok := parseFlags(fs, args); !ok {
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
	if os.Getenv("AAC_BASE_URL") == "" {
		return fail(2, "AAC_BASE_URL is not set: set it as the deployment does (e.g. https://us1.alteryxcloud.com); chains are kept per AAC host")
	}
	base, err := aac.BaseURL(os.Getenv("AAC_BASE_URL"))
	if err != nil {
		return fail(2, "%v", err)
	}
	creds, err := readCredentials(*tokenFile, stderr)
	if err != nil {
		return fail(2, "%v", err)
	}

	key, what := aac.AccountChainKey(base), "the AAC account"
	if *workspace != "" {
		key, what = aac.WorkspaceChainKey(base, *workspace), fmt.Sprintf("AAC workspace %q", *workspace)
		if !profileNames(*workspace) {
			fmt.Fprintf(stderr, "onboard aac seed-token: note: no profile in %s names workspace %q; check the spelling (it must match exactly)\n",
				core.ConfigPath(os.Getenv), *workspace)
		}
	}
	ctx := context.Background()
	store, err := app.OpenStore(ctx, os.Getenv, app.Options{StoreBackends: storeBackends})
	if err != nil {
		return fail(1, "%v", err)
	}
	defer store.Close()
	replaced, err := aac.Seed(ctx, store, key, creds, "onboard aac seed-token")
	if err != nil {
		return fail(1, "storing the token: %v", err)
	}
	fmt.Fprintf(stdout, "Stored a new refresh token for %s (key %q).\n", what, key)
	if replaced != nil {
		fmt.Fprintf(stdout, "It replaces the head written by %s at %s.\n", replaced.Source, replaced.UpdatedAt.Format(time.RFC3339))
	}
	fmt.Fprintln(stdout, "onboard rotates it from now on: do not use this token anywhere else.")
	if creds.AccessToken == "" && (os.Getenv("AAC_TOKEN_URL") == "" || os.Getenv("AAC_CLIENT_ID") == "") {
		fmt.Fprintln(stdout, "Without the access token, the deployment needs AAC_TOKEN_URL and AAC_CLIENT_ID to refresh it.")
	}
	return 0
}

// readCredentials reads the pasted token from a file or standard input,
// prompting when standard input is a terminal.
func readCredentials(path string, stderr io.Writer) (aac.Credentials, error) {
	var r io.Reader = stdin
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return aac.Credentials{}, fmt.Errorf("--token-file: %w", err)
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
		return aac.Credentials{}, fmt.Errorf("reading the token: %w", err)
	}
	creds, err := aac.ParseCredentials(string(b))
	if err != nil {
		return creds, fmt.Errorf("the token: %w", err)
	}
	return creds, nil
}

// profileNames reports whether a profile names the workspace, or the policy
// cannot be read here (the admin may run this away from the deployment).
func profileNames(workspace string) bool {
	cfg, err := targets.LoadConfig(core.ConfigPath(os.Getenv))
	if err != nil {
		return true
	}
	for _, name := range cfg.ProfileNames() {
		if ap := aac.ProfileOf(cfg.Profiles[name]); ap != nil && ap.Workspace == workspace {
			return true
		}
	}
	return false
}
