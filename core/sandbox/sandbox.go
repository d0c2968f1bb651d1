// Package sandbox runs onboard against in-memory fakes of its targets, so
// `make run` works on a laptop with no credentials and nothing to clean up.
package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/periscope"
	"github.com/onboard-dev/onboard/core/periscope/periscopetest"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
)

// Sandbox is a running set of fakes.
type Sandbox struct {
	Looker    *lookertest.Server
	SendGrid  *sendgridtest.Server
	Periscope *periscopetest.Server // every site the config's profiles name; nil when none does
	AAC       *aactest.Server       // every workspace the profiles name; nil when none does
	OutboxDir string
	// Env holds the settings that point onboard at the fakes.
	Env map[string]string
}

// Start runs the fakes, seeded with every role, group and user attribute
// that cfg's profiles name, and writes captured emails under outboxDir.
func Start(cfg *core.Config, outboxDir string) (*Sandbox, error) {
	if err := os.MkdirAll(outboxDir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox outbox: %w", err)
	}
	apiKey := "SG.sandbox-" + randomHex(8)
	s := &Sandbox{
		Looker:    lookertest.NewServer(lookertest.Options{}),
		SendGrid:  sendgridtest.NewServer(sendgridtest.Options{APIKey: apiKey, OutboxDir: outboxDir}),
		OutboxDir: outboxDir,
	}
	Seed(s.Looker, cfg)
	s.Env = map[string]string{
		"LOOKERSDK_BASE_URL":      s.Looker.URL,
		"LOOKERSDK_CLIENT_ID":     lookertest.DefaultClientID,
		"LOOKERSDK_CLIENT_SECRET": lookertest.DefaultClientSecret,
		"SENDGRID_API_KEY":        apiKey,
		"SENDGRID_BASE_URL":       s.SendGrid.URL,
	}
	if sites := periscope.Sites(cfg); len(sites) > 0 {
		// Groups are not seeded: onboard ensures them, which the sandbox shows.
		keys := map[string]string{}
		for _, site := range sites {
			keys[site] = "sandbox-" + randomHex(8)
		}
		s.Periscope = periscopetest.NewServer(periscopetest.Options{Sites: keys})
		doc, _ := json.Marshal(keys) // a map of strings always encodes
		s.Env["PERISCOPE_BASE_URL"] = s.Periscope.URL
		s.Env["PERISCOPE_SITES"] = string(doc)
	}
	s.startAAC(cfg)
	return s, nil
}

// Close stops the fakes.
func (s *Sandbox) Close() {
	s.Looker.Close()
	s.SendGrid.Close()
	if s.Periscope != nil {
		s.Periscope.Close()
	}
	if s.AAC != nil {
		s.AAC.Close()
	}
}

// Seed creates in the fake every role, group and user attribute that cfg's
// profiles name, so the example config works against it as is.
func Seed(l *lookertest.Server, cfg *core.Config) {
	var roles, groups, attrs []string
	for _, name := range cfg.ProfileNames() {
		p := cfg.Profiles[name]
		for _, a := range p.AttributesAllowed {
			attrs = append(attrs, a.Name)
		}
		lp := looker.ProfileOf(p)
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
	for _, r := range unique(append(roles, "Admin")) {
		l.AddRole(r)
	}
	for _, g := range unique(groups) {
		l.AddGroup(g)
	}
	for _, a := range unique(attrs) {
		l.AddUserAttribute(a, false)
	}
}

func unique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WebhookSecret returns a fresh secret for a sandbox run that has none, so
// the printed curl line exercises real authentication.
func WebhookSecret() string { return "sandbox-" + randomHex(12) }
