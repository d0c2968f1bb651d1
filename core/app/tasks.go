package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

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
	owner, ok := taskOwner(name)
	if !ok {
		known := strings.Join(Tasks(), ", ")
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

// NewForTask is NewForTarget for the target that owns the named task.
func NewForTask(ctx context.Context, opts Options, task string) (*App, error) {
	owner, ok := taskOwner(task)
	if !ok {
		return nil, fmt.Errorf("%w %q; known tasks: %s", ErrUnknownTask, task, strings.Join(Tasks(), ", "))
	}
	return NewForTarget(ctx, opts, owner.Name)
}
