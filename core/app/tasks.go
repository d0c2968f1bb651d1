package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/aac"
)

// TaskAACKeepAlive rotates AAC token chains that went unused for a week, so
// a quiet workspace's refresh token does not reach its lifetime. The
// deployments run it daily (Cloud Scheduler, EventBridge).
const TaskAACKeepAlive = "aac-keep-alive"

// Tasks are the maintenance jobs a platform timer may name.
var Tasks = []string{TaskAACKeepAlive}

// ErrUnknownTask is a task name no onboard task has: a mistyped schedule,
// which no retry can fix.
var ErrUnknownTask = errors.New("unknown task")

// RunTask runs a named maintenance job and logs its outcome to log (the
// trigger's fields on it; nil: the app's log). A job with nothing to do (no
// AAC configured) succeeds; a job that failed for some chain returns an
// error naming them, after logging each with its fix; an unknown name
// returns ErrUnknownTask.
func (a *App) RunTask(ctx context.Context, name string, log *slog.Logger) error {
	if log == nil {
		log = a.Log
	}
	log = log.With("task", name)
	if !slices.Contains(Tasks, name) {
		log.Error("unknown task", "outcome", "unknown", "known_tasks", strings.Join(Tasks, ", "))
		return fmt.Errorf("%w %q; known tasks: %s", ErrUnknownTask, name, strings.Join(Tasks, ", "))
	}
	start := time.Now()
	if err := a.runTask(ctx, name); err != nil {
		log.Error("task failed", "outcome", "failed", "error", err.Error())
		return fmt.Errorf("task %s failed: %w", name, err)
	}
	log.Info("task done", "outcome", "done", "duration_ms", time.Since(start).Milliseconds())
	return nil
}

func (a *App) runTask(ctx context.Context, name string) error {
	switch name {
	case TaskAACKeepAlive:
		if a.aac == nil {
			a.Log.Info("AAC keep-alive: AAC is not configured; nothing to do")
			return nil
		}
		reports, err := a.aac.KeepAlive(ctx, a.AACWorkspaces(), aac.DefaultKeepAliveIdle)
		if err != nil {
			return err
		}
		var failed []string
		for _, r := range reports {
			if r.Outcome == aac.KeepAliveFailed {
				failed = append(failed, r.Chain)
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("AAC keep-alive failed for %s (see the log for each fix)", strings.Join(failed, ", "))
		}
		a.Log.Info("AAC keep-alive done", "chains", len(reports))
	}
	return nil
}

// AAC returns the AAC target, or nil when AAC_BASE_URL is not set.
func (a *App) AAC() *aac.Target { return a.aac }

// AACWorkspaces lists the AAC workspaces the profiles name.
func (a *App) AACWorkspaces() []string {
	var out []string
	for _, name := range a.Config.ProfileNames() {
		if ap := aac.ProfileOf(a.Config.Profiles[name]); ap != nil {
			out = append(out, ap.Workspace)
		}
	}
	return out
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
	if a.aac, err = env.aacTarget(a.Store); err != nil {
		_ = a.Store.Close()
		return nil, err
	}
	return a, nil
}
