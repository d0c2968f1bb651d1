package periscope

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/plugin"
)

// DefaultMaxRPS is PERISCOPE_MAX_RPS unset: its limits are not published,
// so a modest pace, learned down from any 429.
const DefaultMaxRPS = 10

// The settings the target reads.
const (
	SettingBaseURL = "PERISCOPE_BASE_URL"
	SettingMaxRPS  = "PERISCOPE_MAX_RPS"
)

// Plugin registers the Periscope target with onboard.
var Plugin = plugin.Target{
	Name:     PluginName,
	Profile:  decodeProfile,
	Policy:   decodePolicy,
	Settings: []plugin.Setting{{Name: SettingBaseURL}, {Name: SettingName, Secret: true}, {Name: SettingMaxRPS}},
	Switch:   SettingName,
	New:      newFromSettings,
	Host: func(get func(string) string) string {
		if base := get(SettingBaseURL); base != "" {
			return base
		}
		return DefaultBaseURL
	},
	Example:       "{sites: [acme], groups: [Analysts]}",
	ExamplePolicy: "{invited_by_email: data@example.com}",
}

// newFromSettings builds one target per site the profiles name. The keys
// are re-read on use, so a rotation needs no redeploy, and each is
// registered with the redactor: the logger only knows the whole JSON
// value, which no error would ever quote in full.
func newFromSettings(ctx context.Context, env plugin.Env) (*plugin.Built, error) {
	add := func(...string) {}
	if env.Redactor != nil {
		add = env.Redactor.Add
	}
	keys := NewSiteKeys(func(ctx context.Context) (string, error) { return env.Secret(ctx, SettingName) }, add)
	names, err := keys.Sites(ctx)
	if err != nil {
		return nil, err
	}
	// Site names are configuration, not secrets, so the known ones are
	// listed to make a typo obvious; keys are never printed.
	var problems []string
	for _, name := range env.Config.ProfileNames() {
		ps := ProfileOf(env.Config.Profiles[name])
		if ps == nil {
			continue
		}
		for _, site := range ps.Sites {
			if !slices.Contains(names, site) {
				problems = append(problems, fmt.Sprintf("profile %q names periscope site %q, which is not a key of %s (its sites: %s)",
					name, site, SettingName, strings.Join(slices.Sorted(slices.Values(names)), ", ")))
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	policy := PolicyOf(env.Config)
	maxRPS, err := httpretry.MaxRateSetting(env.Get, SettingMaxRPS, DefaultMaxRPS)
	if err != nil {
		return nil, err
	}
	client, err := New(Config{BaseURL: env.Get(SettingBaseURL), Keys: keys.Key, TestMode: policy.TestMode, MaxRPS: maxRPS}, nil)
	if err != nil {
		return nil, err
	}
	if policy.TestMode {
		env.Log.Warn("periscope.test_mode is on: every write to Periscope carries test_mode=true, so users and groups are only tried, not made")
	}
	return &plugin.Built{Targets: NewTargets(client, env.Config, env.Log)}, nil
}
