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
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/scim"
	"github.com/onboard-dev/onboard/core/secrets"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
	"github.com/onboard-dev/onboard/core/targets"
)

// The settings of onboard itself (each target's are in its package).
const (
	SettingWebhookSecret  = "ONBOARD_WEBHOOK_SECRET"
	SettingSCIMToken      = "ONBOARD_SCIM_TOKEN"
	SettingInsecureNoAuth = "ONBOARD_INSECURE_NO_AUTH"
	SettingLogLevel       = "ONBOARD_LOG_LEVEL"
	SettingSecrets        = "ONBOARD_SECRETS"
	SettingSecretsTTL     = "ONBOARD_SECRETS_TTL"
	SettingStore          = "ONBOARD_STORE"
)

// SecretNames are the settings that come from ONBOARD_SECRETS's source
// rather than plain environment variables: onboard's own and every target's.
func SecretNames() []string {
	names := []string{SettingWebhookSecret, SettingSCIMToken}
	var settings []plugin.Setting
	for _, t := range targets.All {
		settings = append(settings, t.Settings...)
	}
	for _, m := range targets.Mailers {
		settings = append(settings, m.Settings...)
	}
	for _, s := range targets.Sources {
		settings = append(settings, s.Settings...)
	}
	for _, s := range settings {
		if s.Secret {
			names = append(names, s.Name)
		}
	}
	return names
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
	// StoreBackends are the ONBOARD_STORE schemes this build supports
	// besides "file", registered per platform for the same reason.
	StoreBackends map[string]state.Backend
	// DefaultStore is the ONBOARD_STORE used when it is unset: the embedded
	// file store locally; a cloud entry point names its cloud's database.
	DefaultStore string
	Log          *slog.Logger // a JSON logger on stderr when nil
	// Redactor learns every secret value read, so the logger masks them.
	Redactor *logging.Redactor
	// Pinned settings win over every source, secrets included: a sandbox's
	// fakes pin their own credentials, so a secret manager's real ones for
	// a faked target are never read, let alone sent to the fake.
	Pinned map[string]string
	// Deployed is set by the cloud entry points: a deployed function never
	// honours ONBOARD_INSECURE_NO_AUTH, whatever its environment says.
	Deployed bool
	// SourceClients open the clients of the sources this build reads on a
	// schedule, by source name; a source missing here cannot run its job
	// in this build (the webhook Lambda links no Google Sheets client).
	SourceClients map[string]plugin.SourceClient
}

// App is one ready onboard instance.
type App struct {
	Config  *core.Config
	Engine  *core.Engine
	Handler http.Handler
	// Auth is the webhook authentication Handler applies; other HTTP routes
	// in front of the engine (serve's /_local/*) must use this very one, so
	// its replay memory covers them too.
	Auth  *httpapi.WebhookAuth
	Log   *slog.Logger
	Store state.Store

	// built are the configured targets by plug-in name.
	built map[string]*plugin.Built
	// jobEnv and sourceClients are what sources' scheduled jobs run with.
	jobEnv        plugin.Env
	sourceClients map[string]plugin.SourceClient
	clients       openClients
}

// environment is what every part of an App reads its settings through.
type environment struct {
	getenv   func(string) string
	log      *slog.Logger
	redactor *logging.Redactor
	cfg      *core.Config
	// secret reads a secret now (cached for ONBOARD_SECRETS_TTL); get reads
	// a setting, secret or not, as it is at start-up.
	secret func(context.Context, string) (string, error)
	get    func(string) string
}

func (opts Options) getenv() func(string) string {
	if opts.Getenv == nil {
		return os.Getenv
	}
	return opts.Getenv
}

func newEnvironment(ctx context.Context, opts Options) (*environment, error) {
	getenv := opts.getenv()
	redactor := opts.Redactor
	if redactor == nil {
		redactor = &logging.Redactor{}
	}
	log := opts.Log
	if log == nil {
		log = logging.New(os.Stderr, logging.ParseLevel(getenv(SettingLogLevel)), redactor)
	}
	cfg, err := targets.LoadConfig(targets.ConfigPath(getenv))
	if err != nil {
		return nil, err
	}
	src, err := secretSource(ctx, opts.SecretBackends, getenv)
	if err != nil {
		return nil, err
	}
	ttl, err := secretsTTL(getenv(SettingSecretsTTL))
	if err != nil {
		return nil, err
	}
	cache := secrets.NewCache(src, ttl, secrets.WithRefreshErrorHandler(func(name string, err error) {
		log.Warn("re-reading a secret failed; still using the value read before", "secret", name, "error", err.Error())
	}))
	if err := prefetch(ctx, cache, SecretNames()); err != nil {
		return nil, err
	}
	secretNames := SecretNames()
	// Registered together: every registration builds the log redactor's
	// matcher anew, which took a third of a millisecond of each cold start
	// when each secret came in on its own.
	var read []string
	for _, name := range secretNames {
		if v, _, err := cache.Lookup(ctx, name); err == nil {
			read = append(read, v)
		}
	}
	redactor.Add(read...)
	secret := func(ctx context.Context, name string) (string, error) {
		if v, ok := opts.Pinned[name]; ok {
			return v, nil
		}
		v, _, err := cache.Lookup(ctx, name)
		redactor.Add(v)
		return v, err
	}
	// Values at start-up decide which targets exist and are checked now;
	// consumers re-read through secret, so a rotation needs no redeploy.
	get := func(name string) string {
		if slices.Contains(secretNames, name) {
			v, _ := secret(ctx, name)
			return v
		}
		return getenv(name)
	}
	return &environment{getenv: getenv, log: log, redactor: redactor, cfg: cfg, secret: secret, get: get}, nil
}

// plugin is what a target is built from in this environment.
func (env *environment) plugin(store state.Store) plugin.Env {
	return plugin.Env{Config: env.cfg, Get: env.get, Secret: env.secret, Redactor: env.redactor, Store: store, Log: env.log}
}

// New builds an App. Errors name the setting at fault and never its value.
func New(ctx context.Context, opts Options) (_ *App, err error) {
	// Opening the store needs no policy and no secret, and may take a while
	// of its own (a new file's fsyncs, a cloud client finding its project),
	// so it runs while the policy is read and the secrets fetched. Errors
	// keep their order: the environment's first, then the store's.
	opened := make(chan error, 1)
	var store state.Store
	go func() {
		var err error
		store, err = OpenStore(ctx, opts.getenv(), opts)
		opened <- err
	}()
	env, err := newEnvironment(ctx, opts)
	if storeErr := <-opened; err == nil {
		err = storeErr
	}
	defer func() {
		if err != nil && store != nil {
			_ = store.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	getenv, log, redactor, cfg, secret, get := env.getenv, env.log, env.redactor, env.cfg, env.secret, env.get

	a := &App{Config: cfg, Log: log, Store: auditRedacting{Store: store, redactor: redactor}, sourceClients: opts.SourceClients}
	a.jobEnv = env.plugin(a.Store)
	engineTargets, err := a.buildTargets(ctx, env)
	if err != nil {
		return nil, err
	}
	var mailer core.Mailer
	for _, m := range targets.Mailers {
		if m.Name == cfg.Email.Provider {
			if mailer, err = m.New(ctx, env.plugin(a.Store)); err != nil {
				return nil, err
			}
		}
	}
	a.Engine = &core.Engine{Config: cfg, Targets: engineTargets, Mailer: mailer, Log: log, Store: a.Store}
	insecure := getenv(SettingInsecureNoAuth) == "1"
	if insecure && opts.Deployed {
		log.Error("ONBOARD_INSECURE_NO_AUTH=1 is ignored: this is a deployed function, where every HTTP request needs the webhook secret (ONBOARD_WEBHOOK_SECRET); remove the setting")
		insecure = false
	}
	a.Auth = &httpapi.WebhookAuth{
		Secret:   func(ctx context.Context) (string, error) { return secret(ctx, SettingWebhookSecret) },
		Insecure: insecure,
		Replays:  a.Store,
	}
	a.Handler = &httpapi.Handler{Engine: a.Engine, Auth: a.Auth, Log: log, Redactor: redactor, SCIM: &scim.Server{
		Engine: a.Engine, Store: a.Store, Log: log, Redactor: redactor,
		Token: func(ctx context.Context) (string, error) { return secret(ctx, SettingSCIMToken) },
	}}
	if get(SettingWebhookSecret) == "" {
		if insecure {
			log.Warn("ONBOARD_INSECURE_NO_AUTH=1: HTTP requests are accepted without authentication; never set this on a deployed function")
		} else {
			log.Warn("ONBOARD_WEBHOOK_SECRET is not set: every HTTP request will be refused with 401")
		}
	}
	return a, nil
}

// secretSource picks the secret backend ONBOARD_SECRETS names.
func secretSource(ctx context.Context, backends map[string]SecretBackend, getenv func(string) string) (secrets.Source, error) {
	mode := getenv(SettingSecrets)
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

// prefetch reads every secret concurrently at cold start. Absent ones are
// fine here (only the credentials of targets in use are required, and those
// are checked by whoever needs them); a secret store that cannot be read is not.
func prefetch(ctx context.Context, cache *secrets.Cache, names []string) error {
	err := cache.Prefetch(ctx, names)
	var pe *secrets.PrefetchError
	if !errors.As(err, &pe) {
		return err
	}
	var failed []error
	for _, e := range pe.Errs {
		if !secrets.IsNotFound(e) {
			failed = append(failed, e)
		}
	}
	return errors.Join(failed...)
}

// DefaultSecretsTTL is how long a secret is used before it is read again.
const DefaultSecretsTTL = 5 * time.Minute

func secretsTTL(v string) (time.Duration, error) {
	if v == "" {
		return DefaultSecretsTTL, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("ONBOARD_SECRETS_TTL: %q is not a duration like 5m (0 reads secrets once)", v)
	}
	return d, nil
}

// buildTargets builds every target whose settings are present, and refuses
// to start when a profile needs one that has none: better a clear start-up
// error than a 500 per request.
func (a *App) buildTargets(ctx context.Context, env *environment) ([]core.Target, error) {
	a.built = map[string]*plugin.Built{}
	var all []core.Target
	var problems []string
	for _, t := range targets.All {
		if env.get(t.Switch) == "" {
			for _, profile := range plugin.Uses(env.cfg, t.Name) {
				problems = append(problems, fmt.Sprintf("profile %q configures %s but %s is not set", profile, t.Name, t.Switch))
			}
			continue
		}
		b, err := t.New(ctx, env.plugin(a.Store))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		a.built[t.Name] = b
		all = append(all, b.Targets...)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return all, nil
}

// OpenStore opens the state store ONBOARD_STORE names, with the file
// backend always available. The CLI uses it alone for `onboard audit`.
func OpenStore(ctx context.Context, getenv func(string) string, opts Options) (state.Store, error) {
	backends := map[string]state.Backend{"file": filestore.Backend}
	for k, v := range opts.StoreBackends {
		backends[k] = v
	}
	spec := getenv(SettingStore)
	if spec == "" {
		spec = opts.DefaultStore
	}
	return state.Open(ctx, spec, getenv, backends)
}

// Close releases the store.
func (a *App) Close() error {
	if a.Store == nil {
		return nil
	}
	return a.Store.Close()
}

// Warm does at start-up what the first request would otherwise wait for
// (a login). A failure is logged, not fatal: the first request retries it.
func (a *App) Warm(ctx context.Context) {
	for name, b := range a.built {
		if b.Warm == nil {
			continue
		}
		if err := b.Warm(ctx); err != nil {
			a.Log.Warn("readying a target at start-up failed; the first request will retry it", "target", name, "error", err.Error())
			continue
		}
		a.Log.Info("target ready", "target", name)
	}
}

// Instance builds an App in the background as soon as a process starts, so
// that a cold start's config, secrets and Looker login overlap the platform's
// own start-up, and hands it to requests once built. Its warm-up (the Looker
// login) need not end first: a request reaches Looker only after its own
// state-store round trips, and a call that finds the login still under
// way waits for it rather than logging in again.
type Instance struct {
	built    chan struct{} // closed when app or err is set
	warmed   chan struct{} // closed once the warm-up has ended too
	app      *App
	err      error
	redactor *logging.Redactor
}

// Start begins building an App with opts.
func Start(opts Options) *Instance {
	if opts.Redactor == nil {
		opts.Redactor = &logging.Redactor{}
	}
	in := &Instance{built: make(chan struct{}), warmed: make(chan struct{}), redactor: opts.Redactor}
	go func() {
		defer close(in.warmed)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		in.app, in.err = New(ctx, opts)
		if in.err != nil {
			log := opts.Log
			if log == nil {
				log = logging.New(os.Stderr, slog.LevelInfo, opts.Redactor)
			}
			// Before any request hears of the failure, so its log has the reason.
			log.Error("onboard failed to start", "error", in.err.Error())
		}
		close(in.built)
		if in.err == nil {
			in.app.Warm(ctx)
		}
	}()
	return in
}

// App waits for the instance to be built and warmed up: what a command
// wants whose own output must not interleave with the warm-up's log.
func (in *Instance) App(ctx context.Context) (*App, error) {
	return in.await(ctx, in.warmed)
}

// ForRequest waits only for the instance to be built (see Instance): what
// a request wants.
func (in *Instance) ForRequest(ctx context.Context) (*App, error) {
	return in.await(ctx, in.built)
}

func (in *Instance) await(ctx context.Context, stage <-chan struct{}) (*App, error) {
	select {
	case <-stage:
		return in.app, in.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ServeHTTP serves requests once the App is ready, and a 503 that names no
// secret when it could not be built (the reason is in the log).
func (in *Instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, err := in.ForRequest(r.Context())
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"onboard is not configured correctly; see the function's logs"}` + "\n"))
		return
	}
	a.Handler.ServeHTTP(w, r)
}
