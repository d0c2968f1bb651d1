package targets

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/looker"
)

// FuzzParseConfig feeds onboard.yaml variants to the policy decoder with
// every target's sections. A rejected policy comes back as an error that
// names unknown keys as such; an accepted one holds everything the rest of
// onboard relies on without checking again: defaults filled, enums known,
// the default profile requestable, a target in every profile, the welcome
// text renderable, and every attribute pattern anchored as a whole.
func FuzzParseConfig(f *testing.F) {
	for _, path := range []string{"../../testdata/onboard.yaml", "../../testdata/onboard-aac.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		"profiles:\n  a:\n    looker: {}\n",
		"default_profile: a\nprofiles:\n  a:\n    looker:\n      rolse: [x]\n",
		"profiles:\n  a:\n    attributes_allowed: [{name: r, pattern: '[0-9]{4}'}, nick]\n    periscope: {sites: [acme], groups: [G]}\nperiscope: {invited_by_email: data@example.com}\n",
		"max_deprovision: 0\nprotected: [Ops@Example.COM]\nallowed_email_domains: [Bücher.example]\nprofiles:\n  a:\n    aac: {workspace: W, roles: [R]}\n",
		"email: {provider: looker}\nprofiles:\n  a:\n    looker: {kind: embed, deprovision: delete}\n",
		"profiles:\n  a:\n    attributes_allowed: [{name: r, pattern: '[A-Z]{4})|(.*'}]\n    looker: {}\n",
		"profiles:\n  a:\n    looker: {}\n---\nprofiles: {}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("a rejected policy came back with a config: %v", err)
			}
			if msg := err.Error(); msg == "" || strings.Contains(msg, "not found in type") {
				t.Fatalf("unclear error: %q", msg)
			}
			return
		}
		checkAcceptedConfig(t, cfg)
	})
}

func checkAcceptedConfig(t *testing.T, cfg *core.Config) {
	t.Helper()
	if cfg.MaxDeprovision == nil || *cfg.MaxDeprovision < 0 {
		t.Fatalf("max_deprovision %v", cfg.MaxDeprovision)
	}
	if len(cfg.Profiles) == 0 {
		t.Fatal("accepted with no profile")
	}
	for name, p := range cfg.Profiles {
		if p == nil || p.Name != name || len(p.SectionKeys()) == 0 {
			t.Fatalf("profile %q: %+v, want a named profile with a target", name, p)
		}
		if lp := looker.ProfileOf(p); lp != nil {
			if lp.Kind != looker.KindRegular && lp.Kind != looker.KindEmbed {
				t.Fatalf("profile %q: looker.kind %q", name, lp.Kind)
			}
			if lp.Deprovision != looker.DeprovisionDisable && lp.Deprovision != looker.DeprovisionDelete {
				t.Fatalf("profile %q: looker.deprovision %q", name, lp.Deprovision)
			}
		}
		for _, a := range p.AttributesAllowed {
			if a.Name == "" {
				t.Fatalf("profile %q allows an attribute with no name", name)
			}
			if a.Pattern == nil {
				continue
			}
			// The anchors must hold the admin's whole pattern: one that closes
			// the wrapping group early ("x)|(.*") would let any value through.
			written := strings.TrimSuffix(strings.TrimPrefix(a.Pattern.String(), "^(?:"), ")$")
			if _, err := regexp.Compile(written); err != nil {
				t.Fatalf("profile %q: attribute %q: pattern %q only compiles inside the anchors: %v", name, a.Name, written, err)
			}
		}
	}
	if d := cfg.DefaultProfile; d != "" && (cfg.Profiles[d] == nil || !cfg.Profiles[d].IsRequestable()) {
		t.Fatalf("default_profile %q is missing or not requestable", d)
	}
	if cfg.Email.ByMailer() && cfg.Email.TemplateID == "" {
		if _, err := cfg.RenderWelcomeText(core.WelcomeData{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", SetupURL: "https://l.example/setup"}); err != nil {
			t.Fatalf("the welcome text validated at start-up but does not render: %v", err)
		}
	}
}
