// Command onboard runs onboard locally: `onboard serve` is what `make run` runs.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/sandbox"
	"github.com/onboard-dev/onboard/core/sheets"
	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
	"github.com/onboard-dev/onboard/core/targets"
)

const usage = `onboard provisions people into analytics tools from form webhooks, queues and imports.

Usage:
  onboard <command> [flags]

Commands:
  serve      run the HTTP function on 127.0.0.1 (targets without settings are in-memory fakes)
  provision  provision (or --deprovision) one person and print what each target did
  import     provision every row of a CSV file, validated first, resumable
  plan       print what an import would change, writing nothing (import --dry-run)
  audit      print the audit log of every write onboard made to a target
  breaker    the deprovision breaker: status, release
  sheets     the Google Sheets onboard polls: check the columns, sync now
  scim       the SCIM directory Okta or Entra keeps in onboard: users
  task       maintenance tasks: list, run NAME (as the deployment's schedule does)
  settings   what a deployment of the policy needs (the deploy scripts check it)
  <target>   a target's admin commands, where it has some: onboard help <target>
  help       show this help, or a command's: onboard help import

Settings come from environment variables and onboard.yaml; see docs/reference.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd(args[1:], stdout, stderr)
	}
	switch args[0] {
	case "help", "-h", "--help":
		if len(args) > 1 {
			if cmd, ok := commands[args[1]]; ok {
				return cmd([]string{"-h"}, stdout, stderr)
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "onboard: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parseFlags parses a command's flags. When it says stop, the command
// returns code: 0 after --help (help asked for is not an error), 2 after a
// bad flag (the flag package has printed why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(flagsFirst(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

// flagsFirst lets flags come before or after positional arguments, as
// with git or kubectl (`onboard import people.csv --dry-run`): Go's flag
// package stops at the first positional one. A flag's value is taken when
// the flag takes one; "--" ends the flags; "-" alone is positional.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case arg == "-" || !strings.HasPrefix(arg, "-"):
			positional = append(positional, arg)
		default:
			flags = append(flags, arg)
			name := strings.TrimLeft(arg, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return append(append(flags, "--"), positional...)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// commands maps names to their runners, for dispatch and `onboard help NAME`.
var commands map[string]func([]string, io.Writer, io.Writer) int

// Filled at init: the runners' own help reaches back into this map.
func init() {
	commands = map[string]func([]string, io.Writer, io.Writer) int{
		"serve": serve, "audit": audit, "provision": provision, "task": taskCmd, "settings": settingsCmd, "import": importCmd, "plan": planCmd,
		"breaker": breakerCmd, "sheets": sheetsCmd, "scim": scimCmd,
	}
	for _, t := range targets.All {
		if len(t.Commands) > 0 {
			commands[t.Name] = targetCommand(t)
		}
	}
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.String("port", envOr("PORT", "8080"), "port to listen on at 127.0.0.1 (env PORT)")
	listen := fs.String("listen", "", "`HOST:PORT` to listen on instead of 127.0.0.1:PORT (0.0.0.0:8080: every interface)")
	outbox := fs.String("outbox", ".onboard/outbox", "sandbox mode: where captured emails are written")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard serve [--port N | --listen HOST:PORT] [--outbox DIR]

Serves the HTTP function at / and GET /healthz, and the event functions at
POST /_local/pubsub (a Pub/Sub push body) and POST /_local/lambda (any Lambda
event: SQS batch, API Gateway v1 or v2). Every POST, the event routes
included, needs the webhook credential (ONBOARD_WEBHOOK_SECRET).
It listens on 127.0.0.1:$PORT, so only this machine can reach it. --listen
HOST:PORT listens elsewhere, with a warning: off loopback, anyone who can
reach that address can send requests and only the webhook secret stops them,
so there it refuses to start with ONBOARD_INSECURE_NO_AUTH=1 and no secret.
Each target a profile uses is real when its settings are present (onboard
settings lists them) and an in-memory fake when they are not; the start-up
note lists each as real, with its host, or fake. A fake mailer writes every
email to --outbox instead of sending it. ONBOARD_SANDBOX=1 fakes everything;
ONBOARD_SANDBOX=0 refuses to start with any fake.

Example:
  PORT=9000 onboard serve
  onboard serve --listen 0.0.0.0:8080   # reachable from other machines
  ONBOARD_SANDBOX=0 ONBOARD_WEBHOOK_SECRET=... onboard serve   # every target real, from its settings

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	addr, err := listenAddress(fs, *listen, *port)
	if err != nil {
		fmt.Fprintf(stderr, "onboard serve: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	l, err := startLocal(ctx, stderr, *outbox, slog.LevelInfo)
	if err != nil {
		fmt.Fprintf(stderr, "onboard: %v\n", err)
		return 1
	}
	defer l.close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "onboard: %v\n", err)
		return 1
	}
	bound := ln.Addr().(*net.TCPAddr)
	if !bound.IP.IsLoopback() {
		// Named as asked (0.0.0.0 is bound as [::]), with the port chosen.
		host, _, _ := net.SplitHostPort(addr)
		shown := net.JoinHostPort(host, strconv.Itoa(bound.Port))
		if bound.IP.IsUnspecified() {
			shown += " (every interface)"
		}
		if err := checkExposure(ctx, l.app.Auth); err != nil {
			_ = ln.Close()
			fmt.Fprintf(stderr, "onboard: listening on %s: %v\n", shown, err)
			return 1
		}
		fmt.Fprintf(stderr, `onboard: WARNING: listening on %s, not on loopback: anyone who can reach
  this address can POST to / and to /_local/pubsub and /_local/lambda, which provision and
  deprovision people in the targets. Only the webhook secret (ONBOARD_WEBHOOK_SECRET) stops them:
  keep it secret, or listen on 127.0.0.1 (the default).
`, shown)
	}
	base := servingURL(bound)
	mux := localHandler(l.instance, l.app.Auth, l.log)
	fakeSheets := l.box.Fakes[sheets.Plugin.Name]
	if fakeSheets != nil {
		view := sheetsView(fakeSheets.Server.(*sheetstest.Server), sheets.Of(l.app.Config))
		mux.HandleFunc("GET /_local/sheets", authenticated(l.app.Auth, l.log, func(w http.ResponseWriter, r *http.Request, _ []byte) { view(w, r) }))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stopPolls := pollSheets(ctx, l.app, fakeSheets != nil)
	defer stopPolls()
	if l.box.Faking() {
		printSandboxBanner(stdout, base, l.box, l.getenv, sheets.Of(l.app.Config))
	} else {
		fmt.Fprintf(stdout, "onboard: serving %s/\n", base)
		l.targetsNote(stdout)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "onboard: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return 0
}

// listenAddress is where serve listens: --listen as given, else --port (or
// PORT) on 127.0.0.1, so nothing off this machine reaches a local run
// unless asked to.
func listenAddress(fs *flag.FlagSet, listen, port string) (string, error) {
	if listen == "" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	portSet := false
	fs.Visit(func(f *flag.Flag) { portSet = portSet || f.Name == "port" })
	if portSet {
		return "", errors.New("use --listen HOST:PORT or --port N, not both")
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return "", fmt.Errorf("--listen %q: want HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080", listen)
	}
	return listen, nil
}

// checkExposure refuses to serve off loopback without authentication:
// ONBOARD_INSECURE_NO_AUTH=1 with no webhook secret would let anyone on the
// network provision and deprovision people.
func checkExposure(ctx context.Context, auth *httpapi.WebhookAuth) error {
	if !auth.Insecure {
		return nil
	}
	secret, err := auth.Secret(ctx)
	if err != nil {
		return fmt.Errorf("reading the webhook secret: %w", err)
	}
	if secret == "" {
		return errors.New("ONBOARD_INSECURE_NO_AUTH=1 with no ONBOARD_WEBHOOK_SECRET would let anyone on the network provision people; set the secret, or listen on 127.0.0.1")
	}
	return nil
}

// servingURL is how this machine reaches the listener: an unspecified
// address (every interface) at localhost.
func servingURL(addr *net.TCPAddr) string {
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// bannerCredential is what a sandbox banner's curl line authenticates
// with for setting (the webhook secret, the SCIM token): the value
// generated for this run, which guards nothing else, or, for one the user
// set (possibly a real one), a reference to it that their shell expands,
// so it is never printed.
func bannerCredential(getenv func(string) string, setting string) string {
	switch {
	case getenv(setting) == "":
		return ""
	case os.Getenv(setting) != "":
		return "$" + setting
	}
	return getenv(setting)
}

// bearer is the curl flag sending credential, none without one.
func bearer(credential string) string {
	if credential == "" {
		return ""
	}
	return fmt.Sprintf(` -H "Authorization: Bearer %s"`, credential)
}

// printSandboxBanner tells a newcomer what is fake and how to try it. The
// credentials shown are throwaways made for this run, never real ones.
func printSandboxBanner(w io.Writer, base string, box *sandbox.Sandbox, getenv func(string) string, sheetList []sheets.Sheet) {
	auth := bearer(bannerCredential(getenv, app.SettingWebhookSecret))
	fmt.Fprintf(w, "onboard: SANDBOX MODE: what is fake stays on this machine; what is real is changed for real\n")
	for _, line := range box.Note() {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintf(w, "  Serving %s/  (GET /healthz for health)\n\n", base)
	if box.Fakes[sheets.Plugin.Name] != nil {
		for _, s := range sheetList {
			fmt.Fprintf(w, "Sheets: the fake sheet %s holds a form's answers; onboard polls it every %s (deployed: every %s)\n",
				s.Name(), shortDuration(sandboxPollEvery), shortDuration(s.Every))
		}
		fmt.Fprintf(w, `and writes each row's outcome into its status column ("sheet row done" in the log). See it:
  curl -sS %[1]s/_local/sheets%[2]s

`, base, auth)
	}
	fmt.Fprintf(w, `SCIM (Okta, Microsoft Entra ID): base URL %[1]s/scim/v2, bearer token %[2]s, e.g.
  curl -sS %[1]s/scim/v2/Users -H 'Content-Type: application/scim+json'%[3]s \
    --data '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"grace@example.com","name":{"givenName":"Grace","familyName":"Hopper"},"emails":[{"value":"grace@example.com","type":"work","primary":true}],"active":true}'
  go run ./cmd/onboard scim users   # the directory, and what onboard made of it

`, base, cmp.Or(bannerCredential(getenv, app.SettingSCIMToken), "(unset: set ONBOARD_SCIM_TOKEN)"), bearer(bannerCredential(getenv, app.SettingSCIMToken)))
	fmt.Fprintf(w, `Events: POST /_local/pubsub (Pub/Sub push body), POST /_local/lambda (SQS or API Gateway event),
with the same credential as POST /, e.g.
  curl -sS %[1]s/_local/pubsub%[2]s --data-binary @testdata/events/pubsub-push.json
  curl -sS %[1]s/_local/lambda%[2]s --data-binary @testdata/events/sqs.json

Try it:
  curl -sS %[1]s/ -H 'Content-Type: application/json'%[2]s \
    -d '{"email":"ada@example.com","name":"Ada Lovelace","attributes":{"region":"EMEA"}}'

`, base, auth)
}

// shortDuration writes 5m for 5m0s and 1h for 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
