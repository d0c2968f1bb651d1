// Command onboard runs onboard locally: `onboard serve` is what `make run` runs.
package main

import (
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
	"strings"
	"syscall"
	"time"

	"github.com/onboard-dev/onboard/core/sandbox"
)

const usage = `onboard provisions people into Looker and friends from form webhooks.

Usage:
  onboard <command> [flags]

Commands:
  serve      run the HTTP function on localhost (sandbox mode without LOOKERSDK_BASE_URL)
  provision  provision (or --deprovision) one person and print what each target did
  import     provision every row of a CSV file, validated first, resumable
  plan       print what an import would change, writing nothing (import --dry-run)
  audit      print the audit log of every write onboard made to a target
  aac        Alteryx Analytics Cloud: seed-token stores a new token chain head
  help       show this help, or a command's: onboard help import

Settings come from environment variables and onboard.yaml; see README.md.
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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

// commands maps names to their runners, for dispatch and `onboard help NAME`.
var commands map[string]func([]string, io.Writer, io.Writer) int

// Filled at init: the runners' own help reaches back into this map.
func init() {
	commands = map[string]func([]string, io.Writer, io.Writer) int{
		"serve": serve, "audit": audit, "aac": aacCmd, "provision": provision, "import": importCmd, "plan": planCmd,
	}
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.String("port", envOr("PORT", "8080"), "port to listen on (env PORT)")
	outbox := fs.String("outbox", ".onboard/outbox", "sandbox mode: where captured emails are written")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard serve [--port N] [--outbox DIR]

Serves the HTTP function at http://localhost:$PORT/ and GET /healthz, and the
event functions at POST /_local/pubsub (a Pub/Sub push body) and
POST /_local/lambda (any Lambda event: SQS batch, API Gateway v1 or v2).
With LOOKERSDK_BASE_URL set it talks to that Looker; without it, it starts in
sandbox mode: Looker, SendGrid, AAC and Periscope are in-memory fakes, and every email is
written to --outbox instead of being sent.

Example:
  PORT=9000 onboard serve
  LOOKERSDK_BASE_URL=https://acme.cloud.looker.com LOOKERSDK_CLIENT_ID=... \
    LOOKERSDK_CLIENT_SECRET=... ONBOARD_WEBHOOK_SECRET=... onboard serve

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	l, err := startLocal(ctx, stderr, *outbox, slog.LevelInfo)
	if err != nil {
		fmt.Fprintf(stderr, "onboard: %v\n", err)
		return 1
	}
	defer l.close()

	ln, err := net.Listen("tcp", ":"+*port)
	if err != nil {
		fmt.Fprintf(stderr, "onboard: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: localHandler(l.instance, l.app.Auth, l.log), ReadHeaderTimeout: 10 * time.Second}
	if l.box != nil {
		printSandboxBanner(stdout, *port, l.box, bannerCredential(l.getenv))
	} else {
		fmt.Fprintf(stdout, "onboard: serving http://localhost:%s/ against %s\n", *port, os.Getenv("LOOKERSDK_BASE_URL"))
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

// printSandboxBanner tells a newcomer what is fake and how to try it. The
// webhook secret shown is a throwaway made for this run, never a real one.
// bannerCredential is what the sandbox banner's curl line authenticates
// with: the secret generated for this run, which guards nothing else, or,
// for a secret the user set (possibly a real one), a reference to it that
// their shell expands, so it is never printed.
func bannerCredential(getenv func(string) string) string {
	switch {
	case getenv("ONBOARD_WEBHOOK_SECRET") == "":
		return ""
	case os.Getenv("ONBOARD_WEBHOOK_SECRET") != "":
		return "$ONBOARD_WEBHOOK_SECRET"
	}
	return getenv("ONBOARD_WEBHOOK_SECRET")
}

func printSandboxBanner(w io.Writer, port string, box *sandbox.Sandbox, secret string) {
	auth := ""
	if secret != "" {
		auth = fmt.Sprintf(` -H "Authorization: Bearer %s"`, secret)
	}
	fmt.Fprintf(w, `onboard: SANDBOX MODE (no LOOKERSDK_BASE_URL set)
  Looker, SendGrid, AAC and Periscope are in-memory fakes; nothing leaves this machine.
  Welcome emails are written to %[1]s/
  Serving http://localhost:%[2]s/  (GET /healthz for health)

Events: POST /_local/pubsub (Pub/Sub push body), POST /_local/lambda (SQS or API Gateway event),
with the same credential as POST /, e.g.
  curl -sS http://localhost:%[2]s/_local/pubsub%[3]s --data-binary @testdata/events/pubsub-push.json
  curl -sS http://localhost:%[2]s/_local/lambda%[3]s --data-binary @testdata/events/sqs.json

Try it:
  curl -sS http://localhost:%[2]s/ -H 'Content-Type: application/json'%[3]s \
    -d '{"email":"ada@example.com","name":"Ada Lovelace","attributes":{"region":"EMEA"}}'

`, strings.TrimRight(box.OutboxDir, "/"), port, auth)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
