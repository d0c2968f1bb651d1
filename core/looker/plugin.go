package looker

import (
	"context"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// Plugin registers the Looker target with onboard.
var Plugin = plugin.Target{
	Name: TargetName,
	// email.provider: looker has Looker send its own setup email.
	SendsOwnWelcome: true,
	Profile:         decodeProfile,
	Settings: []plugin.Setting{
		{Name: "LOOKERSDK_BASE_URL"}, {Name: "LOOKERSDK_CLIENT_ID", Secret: true, Required: true}, {Name: "LOOKERSDK_CLIENT_SECRET", Secret: true, Required: true},
		{Name: "LOOKERSDK_VERIFY_SSL"}, {Name: "LOOKERSDK_TIMEOUT"},
	},
	Switch:  "LOOKERSDK_BASE_URL",
	New:     newFromSettings,
	Host:    func(get func(string) string) string { return get("LOOKERSDK_BASE_URL") },
	Fake:    startFake,
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
		id, err := env.Secret(ctx, "LOOKERSDK_CLIENT_ID")
		if err != nil {
			return "", "", err
		}
		secret, err := env.Secret(ctx, "LOOKERSDK_CLIENT_SECRET")
		return id, secret, err
	}
	if env.Redactor != nil {
		cfg.LoggedIn = func(token string) { env.Redactor.Rotate(tokenSlot, token) }
	}
	t := NewTarget(New(cfg, nil), welcomeOf(env.Config.Email), env.Log)
	return &plugin.Built{Targets: []core.Target{t}, Warm: t.Warm}, nil
}
