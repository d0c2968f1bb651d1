package aac

import (
	"context"
	"fmt"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// DefaultMaxRPS is AAC_MAX_RPS unset. AAC's quotas are per minute and
// per endpoint (30 a user, 60 a workspace in its examples); the pace is
// learned from its 429s and x-rate-limit-* headers under this cap.
const DefaultMaxRPS = 5

// The settings the target reads.
const (
	SettingBaseURL             = "AAC_BASE_URL"
	SettingTokenURL            = "AAC_TOKEN_URL"
	SettingClientID            = "AAC_CLIENT_ID"
	SettingRefreshTokens       = "AAC_REFRESH_TOKENS"
	SettingAccountRefreshToken = "AAC_ACCOUNT_REFRESH_TOKEN"
	SettingAccountID           = "AAC_ACCOUNT_ID"
	SettingMaxRPS              = "AAC_MAX_RPS"
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
		{Name: SettingBaseURL}, {Name: SettingAccountID}, {Name: SettingMaxRPS}, {Name: SettingTokenURL},
		{Name: SettingClientID, Secret: true}, {Name: SettingRefreshTokens, Secret: true},
		{Name: SettingAccountRefreshToken, Secret: true},
	},
	Switch:   SettingBaseURL,
	New:      newFromSettings,
	Tasks:    []string{TaskKeepAlive},
	Commands: commands,
	Host:     func(get func(string) string) string { return get(SettingBaseURL) },
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
