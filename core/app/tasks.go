package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
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

// AAC returns the AAC target, or nil when AAC_BASE_URL is not set.
func (a *App) AAC() *aac.Target {
	if b := a.built[aac.TargetName]; b != nil {
		return b.Targets[0].(*aac.Target)
	}
	return nil
}

// NewAACAdmin opens only what AAC administration needs (the policy, the
// store, the secrets and the AAC target), so an admin's machine needs the
// deployment's AAC_BASE_URL and ONBOARD_STORE but no Looker or SendGrid
// settings. Close it like an App.
func NewAACAdmin(ctx context.Context, opts Options) (*App, error) {
	env, err := newEnvironment(ctx, opts)
	if err != nil {
		return nil, err
	}
	if env.getenv("AAC_BASE_URL") == "" {
		return nil, errors.New("AAC_BASE_URL is not set: set it as the deployment does (e.g. https://us1.alteryxcloud.com); chains are kept per AAC host")
	}
	a := &App{Config: env.cfg, Log: env.log}
	if a.Store, err = OpenStore(ctx, env.getenv, opts); err != nil {
		return nil, err
	}
	t, err := aac.FromSettings(env.plugin(a.Store))
	if err != nil {
		_ = a.Store.Close()
		return nil, err
	}
	a.built = map[string]*plugin.Built{aac.TargetName: {Targets: []core.Target{t}}}
	return a, nil
}
