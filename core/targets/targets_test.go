package targets

import (
	"os"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/looker"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../../testdata/onboard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	analyst, customer, admin := looker.ProfileOf(cfg.Profiles["analyst"]), looker.ProfileOf(cfg.Profiles["customer"]), looker.ProfileOf(cfg.Profiles["admin-lite"])
	if analyst.Kind != looker.KindRegular || customer.Kind != looker.KindEmbed || admin.Deprovision != looker.DeprovisionDelete ||
		analyst.Deprovision != looker.DeprovisionDisable || analyst.Attributes["department"] != "analytics" {
		t.Errorf("example config decoded wrong: %+v %+v %+v", analyst, customer, admin)
	}
}

// Each target decodes and checks its own sections; the errors still name
// the profile, the section and the key.
func TestTargetSectionErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key names key and line", "default_profile: a\nprofiles:\n  a:\n    looker:\n      rolse: [x]\n", `line 5: unknown key "rolse"`},
		{"unknown target", "profiles:\n  a:\n    tableau: {}\n", `profiles.a.tableau: line 3: unknown key "tableau"; a profile holds requestable, attributes_allowed, scim_groups and its targets (aac, looker, periscope)`},
		{"no target", "profiles:\n  a:\n    attributes_allowed: [x]\n", "at least one target (aac, looker, periscope)"},
		{"empty section configures nothing", "profiles:\n  a:\n    looker:\n", "at least one target"},
		{"bad kind", "profiles:\n  a:\n    looker: {kind: super}\n", "profiles.a.looker.kind"},
		{"bad deprovision", "profiles:\n  a:\n    looker: {deprovision: shred}\n", "looker.deprovision"},
		{"blank role", "profiles:\n  a:\n    looker: {roles: ['']}\n", "looker.roles: empty entry"},
		{"fixed and allowed attribute", "profiles:\n  a:\n    attributes_allowed: [region]\n    looker: {attributes: {region: EU}}\n", "both fixed"},
		{"aac without workspace", "profiles:\n  a:\n    aac: {roles: [x]}\n", "aac.workspace"},
		{"aac unknown key", "profiles:\n  a:\n    aac: {workspace: w, role: [x]}\n", `line 3: unknown key "role"`},
		{"periscope without sites", "periscope: {invited_by_email: a@example.com}\nprofiles:\n  a:\n    periscope: {groups: [x]}\n", "periscope.sites"},
		{"periscope without inviter", "profiles:\n  a:\n    periscope: {sites: [s]}\n", "periscope.invited_by_email: required"},
		{"legacy sendgrid template id", "profiles:\n  a:\n    looker: {}\nemail: {provider: sendgrid, from: a@example.com, template_id: '1234'}\n", "email.template_id"},
		{"a provider that is no mailer and no target", "profiles:\n  a:\n    looker: {}\nemail: {provider: aac}\n", `"aac" is not one of sendgrid, looker, none`},
		{"periscope unknown top-level key", "periscope: {test_mod: true}\nprofiles:\n  a:\n    looker: {}\n", `line 1: unknown key "test_mod"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// email.provider names a mailer (onboard sends the welcome) or a target
// that sends its own.
func TestEmailProviders(t *testing.T) {
	for provider, byMailer := range map[string]bool{"sendgrid": true, "looker": false, "none": false} {
		cfg, err := ParseConfig([]byte("profiles:\n  a:\n    looker: {}\nemail: {provider: " + provider + ", from: a@example.com, subject: s, text: t}\n"))
		if err != nil || cfg.Email.ByMailer() != byMailer {
			t.Errorf("%s: ByMailer %v, %v", provider, cfg != nil && cfg.Email.ByMailer(), err)
		}
	}
}

// A section may refuse requests its target cannot serve: a Looker embed
// profile needs the caller's external id.
func TestSectionChecksRequests(t *testing.T) {
	cfg, err := LoadConfig("../../testdata/onboard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := core.Request{Email: "ada@example.com", Profile: "customer"}.Normalize()
	if _, _, aerr := cfg.Authorize(req, false); aerr == nil || core.AsError(aerr).Field != "external_user_id" {
		t.Errorf("embed profile without external_user_id: %v", aerr)
	}
	req.ExternalUserID = "c-1"
	if _, _, aerr := cfg.Authorize(req, false); aerr != nil {
		t.Errorf("embed profile with external_user_id: %v", aerr)
	}
}

func TestConfigPath(t *testing.T) {
	env := map[string]string{ConfigSetting: "/etc/onboard.yaml"}
	if got := ConfigPath(func(k string) string { return env[k] }); got != "/etc/onboard.yaml" {
		t.Errorf("ONBOARD_CONFIG ignored: %q", got)
	}
	t.Chdir(t.TempDir())
	if got := ConfigPath(func(string) string { return "" }); got != "testdata/onboard.yaml" {
		t.Errorf("fallback = %q", got)
	}
	if err := os.WriteFile("onboard.yaml", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ConfigPath(func(string) string { return "" }); got != "onboard.yaml" {
		t.Errorf("working-directory file ignored: %q", got)
	}
}
