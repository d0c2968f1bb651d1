//go:build !onboard_nofakes

package looker

import (
	"crypto/rand"
	"net/http"
	"slices"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/plugin"
)

func init() {
	plugin.RegisterFake(Plugin.Name, func(cfg *core.Config, _ string) (*plugin.Fake, error) { return StartFake(cfg) })
}

// StartFake starts the sandbox's Looker, seeded for cfg's profiles.
func StartFake(cfg *core.Config) (*plugin.Fake, error) {
	// A fresh secret per fake, so a leak of it is unmistakable.
	secret := "sandbox-" + rand.Text()
	srv := lookertest.NewServer(lookertest.Options{ClientSecret: secret})
	SeedFake(srv, cfg)
	return &plugin.Fake{
		Settings: map[string]string{
			SettingBaseURL:      srv.URL,
			SettingClientID:     lookertest.DefaultClientID,
			SettingClientSecret: secret,
		},
		Server: srv, Close: srv.Close,
		Writes: func() []string {
			var writes []string
			for _, r := range srv.Requests() {
				if r.Method != http.MethodGet && r.Path != "/login" {
					writes = append(writes, r.Method+" "+r.Path)
				}
			}
			return writes
		},
	}, nil
}

// SeedFake creates in the fake every role, group and user attribute that
// cfg's profiles name, so a policy works against it as is.
func SeedFake(l *lookertest.Server, cfg *core.Config) {
	var roles, groups, attrs []string
	for _, name := range cfg.ProfileNames() {
		p := cfg.Profiles[name]
		for _, a := range p.AttributesAllowed {
			attrs = append(attrs, a.Name)
		}
		lp := ProfileOf(p)
		if lp == nil {
			continue
		}
		roles = append(roles, lp.Roles...)
		groups = append(groups, lp.Groups...)
		for k := range lp.Attributes {
			attrs = append(attrs, k)
		}
	}
	// An Admin role exists on every instance; seeding it lets a newcomer see
	// that onboard adds roles without touching others.
	for _, r := range sortedUnique(append(roles, "Admin")) {
		l.AddRole(r)
	}
	for _, g := range sortedUnique(groups) {
		l.AddGroup(g)
	}
	for _, a := range sortedUnique(attrs) {
		l.AddUserAttribute(a, false)
	}
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
