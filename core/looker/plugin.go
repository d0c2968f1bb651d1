package looker

import (
	"context"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// DefaultMaxRPS is LOOKERSDK_MAX_RPS unset: a pace a Looker instance's
// API threads, shared with the people using Looker, bear without notice.
const DefaultMaxRPS = 20

// The settings the target reads.
const (
	SettingBaseURL      = "LOOKERSDK_BASE_URL"
	SettingClientID     = "LOOKERSDK_CLIENT_ID"
	SettingClientSecret = "LOOKERSDK_CLIENT_SECRET"
	SettingVerifySSL    = "LOOKERSDK_VERIFY_SSL"
	SettingTimeout      = "LOOKERSDK_TIMEOUT"
	SettingMaxRPS       = "LOOKERSDK_MAX_RPS"
)

// Plugin registers the Looker target with onboard.
var Plugin = plugin.Target{
	Name: TargetName,
	// email.provider: looker has Looker send its own setup email.
	SendsOwnWelcome: true,
	Profile:         decodeProfile,
	Settings: []plugin.Setting{
		{Name: SettingBaseURL}, {Name: SettingClientID, Secret: true, Required: true}, {Name: SettingClientSecret, Secret: true, Required: true},
		{Name: SettingVerifySSL}, {Name: SettingTimeout}, {Name: SettingMaxRPS},
	},
	Switch:  SettingBaseURL,
	New:     newFromSettings,
	Host:    func(get func(string) string) string { return get(SettingBaseURL) },
	Example: "{roles: [Viewer], groups: [Analysts]}",
}

// tokenSlot is the redactor's rotating slot for Looker access tokens: the
// current one and the one before stay masked.
const tokenSlot = "looker access token"

func newFromSettings(_ context.Context, env plugin.Env) (*plugin.Built, error) {
	cfg, err := ConfigFromEnv(env.Get)
	if err != nil {
		return nil, err
	}
	// Read at each login, so a rotated client secret needs no redeploy.
	cfg.Credentials = func(ctx context.Context) (string, string, error) {
		id, err := env.Secret(ctx, SettingClientID)
		if err != nil {
			return "", "", err
		}
		secret, err := env.Secret(ctx, SettingClientSecret)
		return id, secret, err
	}
	if env.Redactor != nil {
		cfg.LoggedIn = func(token string) { env.Redactor.Rotate(tokenSlot, token) }
	}
	t := NewTarget(New(cfg, nil), welcomeOf(env.Config.Email), env.Log)
	t.warmLists = t.warmListsOf(env.Config)
	return &plugin.Built{Targets: []core.Target{t}, Warm: t.Warm}, nil
}
