package app

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/periscope"
)

// periscopeTargets builds one target per Periscope site that the profiles
// name, when PERISCOPE_SITES is set. It also returns the site names that
// PERISCOPE_SITES holds (nil when it is unset) for checkTargets. The keys
// are re-read through secret on use, so a rotation needs no redeploy, and
// each is registered with the redactor: the logger only knows the whole
// JSON value, which no error would ever quote in full.
func periscopeTargets(ctx context.Context, cfg *core.Config, getenv, get func(string) string,
	secret func(context.Context, string) (string, error), redactor *logging.Redactor, log *slog.Logger,
) ([]core.Target, map[string]bool, error) {
	if get(periscope.SettingName) == "" {
		return nil, nil, nil
	}
	keys := periscope.NewSiteKeys(func(ctx context.Context) (string, error) { return secret(ctx, periscope.SettingName) }, redactor.Add)
	names, err := keys.Sites(ctx)
	if err != nil {
		return nil, nil, err
	}
	client, err := periscope.New(periscope.Config{
		BaseURL: getenv("PERISCOPE_BASE_URL"), Keys: keys.Key, TestMode: periscope.PolicyOf(cfg).TestMode,
	}, nil)
	if err != nil {
		return nil, nil, err
	}
	if periscope.PolicyOf(cfg).TestMode {
		log.Warn("periscope.test_mode is on: every write to Periscope carries test_mode=true, so users and groups are only tried, not made")
	}
	sites := map[string]bool{}
	for _, n := range names {
		sites[n] = true
	}
	return periscope.NewTargets(client, cfg, log), sites, nil
}

// periscopeProblems says what keeps profile p from reaching its Periscope
// sites: PERISCOPE_SITES unset, or a site it names missing from it. Site
// names are configuration, not secrets, so the known ones are listed to
// make a typo obvious; keys are never printed.
func periscopeProblems(name string, p *core.Profile, sites map[string]bool) []string {
	ps := periscope.ProfileOf(p)
	if ps == nil {
		return nil
	}
	if sites == nil {
		return []string{fmt.Sprintf("profile %q configures periscope but %s is not set", name, periscope.SettingName)}
	}
	var problems []string
	for _, s := range ps.Sites {
		if !sites[s] {
			problems = append(problems, fmt.Sprintf("profile %q names periscope site %q, which is not a key of %s (its sites: %s)",
				name, s, periscope.SettingName, strings.Join(slices.Sorted(maps.Keys(sites)), ", ")))
		}
	}
	return problems
}
