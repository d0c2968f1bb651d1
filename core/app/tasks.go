package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/targets"
)

// Tasks are the maintenance jobs a platform timer may name: every target's.
func Tasks() []string {
	var names []string
	for _, t := range targets.All {
		names = append(names, t.Tasks...)
	}
	return names
}

// ErrUnknownTask is a task name no onboard task has: a mistyped schedule,
// which no retry can fix.
var ErrUnknownTask = errors.New("unknown task")

// RunTask runs a named maintenance job and logs its outcome to log (the
// trigger's fields on it; nil: the app's log). A job of a target that is
// not configured has nothing to do and succeeds; a job that failed returns
// an error saying why, after logging each fix; an unknown name returns
// ErrUnknownTask.
func (a *App) RunTask(ctx context.Context, name string, log *slog.Logger) error {
	if log == nil {
		log = a.Log
	}
	log = log.With("task", name)
	if source, arg, ok := sourceJob(name); ok {
		return a.runSourceJob(ctx, source, arg, log)
	}
	owner, ok := taskOwner(name)
	if !ok {
		known := knownTasks()
		log.Error("unknown task", "outcome", "unknown", "known_tasks", known)
		return fmt.Errorf("%w %q; known tasks: %s", ErrUnknownTask, name, known)
	}
	built := a.built[owner.Name]
	if built == nil {
		log.Info("task done", "outcome", "done", "target", owner.Name, "note", "the target is not configured here, so there was nothing to do")
		return nil
	}
	start := time.Now()
	if err := built.Tasks[name](ctx); err != nil {
		log.Error("task failed", "outcome", "failed", "error", err.Error())
		return fmt.Errorf("task %s failed: %w", name, err)
	}
	log.Info("task done", "outcome", "done", "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// runSourceJob runs a source's scheduled job. A job naming what the
// policy no longer lists is an unknown task: no retry can help it.
func (a *App) runSourceJob(ctx context.Context, source plugin.Source, arg string, log *slog.Logger) error {
	env := plugin.SourceEnv{Env: a.jobEnv, Engine: a.Engine}
	if connect := a.sourceClients[source.Name]; connect != nil {
		env.Connect = a.clients.reuse(source, connect)
	}
	env.Log = log
	start := time.Now()
	if err := source.Run(ctx, env, arg); err != nil {
		if errors.Is(err, plugin.ErrUnknownJob) {
			log.Error("unknown task", "outcome", "unknown", "error", err.Error())
			return fmt.Errorf("%w: %w", ErrUnknownTask, err)
		}
		log.Error("task failed", "outcome", "failed", "error", err.Error())
		return fmt.Errorf("task %s:%s failed: %w", source.Task, arg, err)
	}
	log.Info("task done", "outcome", "done", "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// sourceJob finds the source whose job name is: its Task, a colon and what
// to read.
func sourceJob(name string) (plugin.Source, string, bool) {
	task, arg, found := strings.Cut(name, ":")
	if !found {
		return plugin.Source{}, "", false
	}
	i := slices.IndexFunc(targets.Sources, func(s plugin.Source) bool { return s.Task != "" && s.Task == task })
	if i < 0 {
		return plugin.Source{}, "", false
	}
	return targets.Sources[i], arg, true
}

// knownTasks lists every task name for an error message, a source's as
// its pattern.
func knownTasks() string {
	names := Tasks()
	for _, s := range targets.Sources {
		if s.Task != "" {
			names = append(names, s.Task+":NAME")
		}
	}
	return strings.Join(names, ", ")
}

// Schedules are the source jobs a deployment of cfg schedules (a poll per
// sheet), besides the targets' fixed ones.
func Schedules(cfg *core.Config) []plugin.Schedule {
	var list []plugin.Schedule
	for _, s := range targets.Sources {
		if s.Schedules != nil {
			list = append(list, s.Schedules(cfg)...)
		}
	}
	return list
}

func taskOwner(name string) (plugin.Target, bool) {
	for _, t := range targets.All {
		if slices.Contains(t.Tasks, name) {
			return t, true
		}
	}
	return plugin.Target{}, false
}

// Built is the named target as built from its settings; nil when it has none.
func (a *App) Built(name string) *plugin.Built { return a.built[name] }

// NewForTarget opens only what administering one target needs: the
// policy, the store, the secrets and that target, built from its settings,
// so an admin's machine needs the deployment's settings of that target and
// ONBOARD_STORE, and no other target's. Close it like an App.
func NewForTarget(ctx context.Context, opts Options, name string) (*App, error) {
	i := slices.IndexFunc(targets.All, func(t plugin.Target) bool { return t.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("no target named %q", name)
	}
	target := targets.All[i]
	env, err := newEnvironment(ctx, opts)
	if err != nil {
		return nil, err
	}
	if env.get(target.Switch) == "" {
		return nil, fmt.Errorf("%s is not set: set it (and the target's other settings) as the deployment does", target.Switch)
	}
	a := &App{Config: env.cfg, Log: env.log}
	if a.Store, err = OpenStore(ctx, env.getenv, opts); err != nil {
		return nil, err
	}
	built, err := target.New(ctx, env.plugin(a.Store))
	if err != nil {
		_ = a.Store.Close()
		return nil, err
	}
	a.built = map[string]*plugin.Built{name: built}
	return a, nil
}

// NewForTask is NewForTarget for the target that owns the named task, and
// New for a source's job, which runs requests through every target.
func NewForTask(ctx context.Context, opts Options, task string) (*App, error) {
	if _, _, ok := sourceJob(task); ok {
		return New(ctx, opts)
	}
	owner, ok := taskOwner(task)
	if !ok {
		return nil, fmt.Errorf("%w %q; known tasks: %s", ErrUnknownTask, task, knownTasks())
	}
	return NewForTarget(ctx, opts, owner.Name)
}

// openClients keeps one client per source for the instance's life, so its
// access tokens are one chain the log redactor follows (a client per poll
// left every token it was ever given in the redactor), and opens it anew
// when the source's settings change: a rotated key is used without a
// redeploy.
type openClients struct {
	mu   sync.Mutex
	open map[string]openClient
}

type openClient struct {
	client any
	// settings is a digest of the source's settings the client was
	// opened with.
	settings [sha256.Size]byte
}

// reuse is connect, returning the client it opened before while the
// source's settings are what they were.
func (c *openClients) reuse(source plugin.Source, connect plugin.SourceClient) plugin.SourceClient {
	return func(ctx context.Context, env plugin.Env) (any, error) {
		h := sha256.New()
		for _, s := range source.Settings {
			v := env.Get(s.Name)
			fmt.Fprintf(h, "%d:%s%d:%s", len(s.Name), s.Name, len(v), v)
		}
		var settings [sha256.Size]byte
		h.Sum(settings[:0])
		c.mu.Lock()
		defer c.mu.Unlock()
		if o, ok := c.open[source.Name]; ok && o.settings == settings {
			return o.client, nil
		}
		client, err := connect(ctx, env)
		if err != nil {
			return nil, err
		}
		if c.open == nil {
			c.open = map[string]openClient{}
		}
		c.open[source.Name] = openClient{client: client, settings: settings}
		return client, nil
	}
}
