// Package app assembles onboard from its configuration: the policy file,
// settings and secrets, the targets they enable, the engine and the HTTP
// handler. Every entry point (Cloud Functions, Lambda, the CLI) builds its
// instance here, so they cannot drift apart.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/secrets"
	"github.com/onboard-dev/onboard/core/sendgrid"
)

// SecretNames are the settings that come from ONBOARD_SECRETS's source
// rather than plain environment variables.
var SecretNames = []string{
	"LOOKERSDK_CLIENT_ID",
	"LOOKERSDK_CLIENT_SECRET",
	"SENDGRID_API_KEY",
	"ONBOARD_WEBHOOK_SECRET",
}

// SecretBackend opens a secret manager, configured from plain settings.
type SecretBackend func(ctx context.Context, getenv func(string) string) (secrets.Source, error)

// Options are what an entry point knows before the app exists.
type Options struct {
	Getenv func(string) string // plain settings; os.Getenv when nil
	// SecretBackends are the ONBOARD_SECRETS values this build supports
	// besides "env": each platform's entry point registers only its own
	// cloud's, so a Lambda binary never links Google's client or vice versa.
	SecretBackends map[string]SecretBackend
	Log            *slog.Logger // a JSON logger on stderr when nil
	// Redactor learns every secret value read, so the logger masks them.
	Redactor *logging.Redactor
}

// App is one ready onboard instance.
type App struct {
	Config  *core.Config
	Engine  *core.Engine
	Handler http.Handler
	Log     *slog.Logger

	looker *looker.Target
}

// New builds an App. Errors name the setting at fault and never its value.
func New(ctx context.Context, opts Options) (*App, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	redactor := opts.Redactor
	if redactor == nil {
		redactor = &logging.Redactor{}
	}
	log := opts.Log
	if log == nil {
		log = logging.New(os.Stderr, logging.ParseLevel(getenv("ONBOARD_LOG_LEVEL")), redactor)
	}
	cfg, err := core.LoadConfig(core.ConfigPath(getenv))
	if err != nil {
		return nil, err
	}
	src, err := secretSource(ctx, opts.SecretBackends, getenv)
	if err != nil {
		return nil, err
	}
	secretValues, err := readSecrets(ctx, src)
	if err != nil {
		return nil, err
	}
	for _, v := range secretValues {
		redactor.Add(v)
	}
	get := func(name string) string {
		if v, ok := secretValues[name]; ok {
			return v
		}
		return getenv(name)
	}

	a := &App{Config: cfg, Log: log}
	var targets []core.Target
	if getenv("LOOKERSDK_BASE_URL") != "" {
		lcfg, err := looker.ConfigFromEnv(get)
		if err != nil {
			return nil, err
		}
		a.looker = looker.NewTarget(looker.New(lcfg, nil), cfg.Email.Provider, log)
		targets = append(targets, a.looker)
	}
	if err := checkTargets(cfg, a.looker != nil); err != nil {
		return nil, err
	}
	var mailer core.Mailer
	if cfg.Email.Provider == core.EmailSendGrid {
		if mailer, err = newMailer(cfg, get); err != nil {
			return nil, err
		}
	}
	a.Engine = &core.Engine{Config: cfg, Targets: targets, Mailer: mailer, Log: log}
	a.Handler = &httpapi.Handler{
		Engine: a.Engine,
		Auth:   &core.WebhookAuth{Secret: get("ONBOARD_WEBHOOK_SECRET"), Insecure: getenv("ONBOARD_INSECURE_NO_AUTH") == "1"},
		Log:    log,
	}
	if get("ONBOARD_WEBHOOK_SECRET") == "" {
		if getenv("ONBOARD_INSECURE_NO_AUTH") == "1" {
			log.Warn("ONBOARD_INSECURE_NO_AUTH=1: HTTP requests are accepted without authentication; never set this on a deployed function")
		} else {
			log.Warn("ONBOARD_WEBHOOK_SECRET is not set: every HTTP request will be refused with 401")
		}
	}
	return a, nil
}

// secretSource picks the secret backend ONBOARD_SECRETS names.
func secretSource(ctx context.Context, backends map[string]SecretBackend, getenv func(string) string) (secrets.Source, error) {
	mode := getenv("ONBOARD_SECRETS")
	if mode == "" || mode == "env" {
		return secrets.Env{Lookup: func(k string) (string, bool) { v := getenv(k); return v, v != "" }}, nil
	}
	open, ok := backends[mode]
	if !ok {
		names := []string{"env"}
		for n := range backends {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("ONBOARD_SECRETS=%q is not available in this build; use one of: %s", mode, strings.Join(names, ", "))
	}
	src, err := open(ctx, getenv)
	if err != nil {
		return nil, fmt.Errorf("ONBOARD_SECRETS=%s: %w", mode, err)
	}
	return src, nil
}

// readSecrets fetches every secret concurrently; only the webhook secret and
// the credentials of targets in use are required, so absent ones are skipped.
func readSecrets(ctx context.Context, src secrets.Source) (map[string]string, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		out  = map[string]string{}
	)
	for _, name := range SecretNames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := src.Fetch(ctx, name)
			mu.Lock()
			defer mu.Unlock()
			var nf *secrets.NotFoundError
			switch {
			case errors.As(err, &nf):
			case err != nil:
				errs = append(errs, fmt.Errorf("reading secret %s: %w", name, err))
			default:
				out[name] = v
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// checkTargets refuses to start when a profile needs a target this instance
// has no settings for: better a clear start-up error than a 500 per request.
func checkTargets(cfg *core.Config, haveLooker bool) error {
	var problems []string
	for _, name := range cfg.ProfileNames() {
		p := cfg.Profiles[name]
		if p.Looker != nil && !haveLooker {
			problems = append(problems, fmt.Sprintf("profile %q configures looker but LOOKERSDK_BASE_URL is not set", name))
		}
		if p.AAC != nil {
			problems = append(problems, fmt.Sprintf("profile %q configures aac, which this version does not support yet", name))
		}
		if p.Periscope != nil {
			problems = append(problems, fmt.Sprintf("profile %q configures periscope, which this version does not support yet", name))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func newMailer(cfg *core.Config, get func(string) string) (core.Mailer, error) {
	key := get("SENDGRID_API_KEY")
	if key == "" {
		return nil, errors.New("email.provider is sendgrid but SENDGRID_API_KEY is not set")
	}
	client, err := sendgrid.New(sendgrid.Config{APIKey: key, BaseURL: get("SENDGRID_BASE_URL"), Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	return sendgrid.NewWelcomer(client, cfg.Email.From)
}

// Warm does at start-up what the first request would otherwise wait for:
// the Looker login. A failure is logged, not fatal: the first request retries it.
func (a *App) Warm(ctx context.Context) {
	if a.looker == nil {
		return
	}
	if err := a.looker.Warm(ctx); err != nil {
		a.Log.Warn("Looker login at start-up failed; the first request will retry it", "error", err.Error())
		return
	}
	a.Log.Info("Looker token ready")
}

// Instance builds an App in the background as soon as a process starts, so
// that a cold start's config, secrets and Looker login overlap the platform's
// own start-up, and hands it to requests once ready.
type Instance struct {
	ready chan struct{}
	app   *App
	err   error
}

// Start begins building an App with opts.
func Start(opts Options) *Instance {
	in := &Instance{ready: make(chan struct{})}
	go func() {
		defer close(in.ready)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		in.app, in.err = New(ctx, opts)
		if in.err != nil {
			log := opts.Log
			if log == nil {
				log = logging.New(os.Stderr, slog.LevelInfo, opts.Redactor)
			}
			log.Error("onboard failed to start", "error", in.err.Error())
			return
		}
		in.app.Warm(ctx)
	}()
	return in
}

// App waits for the instance to be built.
func (in *Instance) App(ctx context.Context) (*App, error) {
	select {
	case <-in.ready:
		return in.app, in.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ServeHTTP serves requests once the App is ready, and a 503 that names no
// secret when it could not be built (the reason is in the log).
func (in *Instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, err := in.App(r.Context())
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"onboard is not configured correctly; see the function's logs"}` + "\n"))
		return
	}
	a.Handler.ServeHTTP(w, r)
}
