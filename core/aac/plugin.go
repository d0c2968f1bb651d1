package aac

import (
	"context"
	"fmt"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// TaskKeepAlive rotates token chains that went unused for a week, so a
// quiet workspace's refresh token does not reach its lifetime. The
// deployments run it daily (Cloud Scheduler, EventBridge).
const TaskKeepAlive = "aac-keep-alive"

// Plugin registers the Alteryx Analytics Cloud target with onboard.
var Plugin = plugin.Target{
	Name:    TargetName,
	Profile: decodeProfile,
	Settings: []plugin.Setting{
		{Name: "AAC_BASE_URL"}, {Name: "AAC_ACCOUNT_ID"}, {Name: "AAC_TOKEN_URL"},
		{Name: "AAC_CLIENT_ID", Secret: true}, {Name: "AAC_REFRESH_TOKENS", Secret: true},
		{Name: "AAC_ACCOUNT_REFRESH_TOKEN", Secret: true},
	},
	Switch:   "AAC_BASE_URL",
	New:      newFromSettings,
	Tasks:    []string{TaskKeepAlive},
	Commands: commands,
	Host:     func(get func(string) string) string { return get("AAC_BASE_URL") },
	Fake:     startFake,
	Example:  "{workspace: Sales Analytics, roles: [Auto Insights Creator]}",
}

func newFromSettings(_ context.Context, env plugin.Env) (*plugin.Built, error) {
	t, err := FromSettings(env)
	if err != nil {
		return nil, err
	}
	keepAlive := func(ctx context.Context) error {
		reports, err := t.KeepAlive(ctx, Workspaces(env.Config), DefaultKeepAliveIdle)
		if err != nil {
			return err
		}
		var failed []string
		for _, r := range reports {
			if r.Outcome == KeepAliveFailed {
				failed = append(failed, r.Chain)
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("AAC keep-alive failed for %s (see the log for each fix)", strings.Join(failed, ", "))
		}
		env.Log.Info("AAC keep-alive done", "chains", len(reports))
		return nil
	}
	return &plugin.Built{Targets: []core.Target{t}, Tasks: map[string]func(context.Context) error{TaskKeepAlive: keepAlive}}, nil
}

// Workspaces lists the workspaces cfg's profiles name, in profile order.
func Workspaces(cfg *core.Config) []string {
	var out []string
	for _, name := range cfg.ProfileNames() {
		if ap := ProfileOf(cfg.Profiles[name]); ap != nil {
			out = append(out, ap.Workspace)
		}
	}
	return out
}
