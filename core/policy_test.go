package core

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// stubSchema gives core's tests a target section without any real target:
// the plug-ins' own sections are tested in their packages and in targets.
var stubSchema = ConfigSchema{
	Profile: map[string]func(*yaml.Node, *Profile) (any, error){
		"stub": func(n *yaml.Node, _ *Profile) (any, error) {
			var section map[string]any
			return section, n.Decode(&section)
		},
	},
	Mailers: map[string]func(EmailConfig) error{
		"stubmail": func(e EmailConfig) error {
			if e.TemplateID == "legacy" {
				return errors.New("template_id: not one stubmail sends")
			}
			return nil
		},
	},
	OwnWelcome: []string{"stub"},
}

// examplePolicy has testdata/onboard.yaml's policy with stub sections.
const examplePolicy = `
allowed_email_domains: [example.com]
default_profile: analyst
protected: [data@example.com]
email:
  provider: stubmail
  from: "Data Team <data@example.com>"
  subject: "Welcome"
  text: "Hi {{.FirstName}}, set up your account: {{.SetupURL}}"
profiles:
  analyst:
    attributes_allowed:
      - {name: region, values: [EMEA, AMER, APAC]}
    stub: {}
  admin-lite:
    requestable: false
    stub: {}
  customer:
    attributes_allowed:
      - {name: region, pattern: '[A-Z]{4}'}
    stub: {}
`

func exampleConfig(t *testing.T) *Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(examplePolicy), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestExampleConfigLoads(t *testing.T) {
	cfg := exampleConfig(t)
	if cfg.DefaultProfile != "analyst" || cfg.Profiles["admin-lite"].IsRequestable() || !cfg.IsProtected("DATA@example.com") || !cfg.Email.ByMailer() {
		t.Errorf("example config decoded wrong: %+v", cfg)
	}
	if got := cfg.Profiles["analyst"].SectionKeys(); len(got) != 1 || got[0] != "stub" {
		t.Errorf("analyst's sections: %v", got)
	}
	text, err := cfg.RenderWelcomeText(WelcomeData{FirstName: "Ada", SetupURL: "https://l.example/account/setup/x"})
	if err != nil || text != "Hi Ada, set up your account: https://l.example/account/setup/x" {
		t.Errorf("welcome text = %q, %v", text, err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key names key and line", "default_profile: a\nprofiles:\n  a:\n    stub: {}\n    requestabel: true\n", `line 5: unknown key "requestabel"`},
		{"unknown key in a section", "email:\n  provder: none\nprofiles:\n  a:\n    stub: {}\n", `line 2: unknown key "provder"`},
		{"unknown top-level key", "profils: {}\n", `line 1: unknown key "profils"`},
		{"empty", "", "config is empty"},
		{"no profiles", "default_profile: a\n", "at least one profile"},
		{"default profile missing", "default_profile: b\nprofiles:\n  a:\n    stub: {}\n", `no profile named "b"`},
		{"no target", "profiles:\n  a:\n    attributes_allowed: [x]\n", "at least one target"},
		{"bad provider", "profiles:\n  a:\n    stub: {}\nemail: {provider: pigeon}\n", "email.provider"},
		{"mailer without from", "profiles:\n  a:\n    stub: {}\nemail: {provider: stubmail, subject: s, text: t}\n", "email.from"},
		{"mailer without text", "profiles:\n  a:\n    stub: {}\nemail: {provider: stubmail, from: a@example.com, subject: s}\n", "stubmail needs subject and text"},
		{"template typo", "profiles:\n  a:\n    stub: {}\nemail: {provider: stubmail, from: a@example.com, subject: s, text: '{{.Frist}}'}\n", "email.text"},
		{"the mailer's own check", "profiles:\n  a:\n    stub: {}\nemail: {provider: stubmail, from: a@example.com, template_id: legacy}\n", "email.template_id: not one stubmail sends"},
		{"bad provider lists the options", "profiles:\n  a:\n    stub: {}\nemail: {provider: pigeon}\n", `"pigeon" is not one of stubmail, stub, none`},
		{"bad domain", "allowed_email_domains: ['exa mple.com']\nprofiles:\n  a:\n    stub: {}\n", "allowed_email_domains"},
		{"default not requestable", "default_profile: a\nprofiles:\n  a:\n    requestable: false\n    stub: {}\n", "requestable: false"},
		{"protected not an email", "protected: [bob]\nprofiles:\n  a:\n    stub: {}\n", "protected"},
		{"attribute values and pattern", "profiles:\n  a:\n    attributes_allowed: [{name: r, values: [x], pattern: y}]\n    stub: {}\n", "not both"},
		{"attribute values empty", "profiles:\n  a:\n    attributes_allowed: [{name: r, values: []}]\n    stub: {}\n", "values is empty"},
		{"attribute pattern escaping its anchors", "profiles:\n  a:\n    attributes_allowed: [{name: r, pattern: '[A-Z]{4})|(.*'}]\n    stub: {}\n", "unexpected )"},
		{"second document", "profiles:\n  a:\n    stub: {}\n---\nprofiles: {}\n", "more than one document"},
		{"unknown key with a space", "profiles:\n  a:\n    stub: {}\n    look er: {}\n", `line 4: unknown key "look er"`},
		{"attribute pattern invalid", "profiles:\n  a:\n    attributes_allowed: [{name: r, pattern: '('}]\n    stub: {}\n", "pattern"},
		{"attribute entry unknown key", "profiles:\n  a:\n    attributes_allowed: [{name: r, value: x}]\n    stub: {}\n", "unknown key"},
		{"attribute listed twice", "profiles:\n  a:\n    attributes_allowed: [r, {name: r, values: [x]}]\n    stub: {}\n", "listed twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), stubSchema)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	cfg := exampleConfig(t)
	cases := []struct {
		name     string
		req      Request
		operator bool
		status   int
		field    string
	}{
		{"lookalike domain", Request{Email: "ada@evil-example.com"}, false, 403, "email"},
		{"subdomain", Request{Email: "ada@sub.example.com"}, false, 403, "email"},
		{"unknown profile", Request{Email: "ada@example.com", Profile: "root"}, false, 403, "profile"},
		{"unknown profile, operator", Request{Email: "ada@example.com", Profile: "root"}, true, 403, "profile"},
		{"profile not requestable", Request{Email: "ada@example.com", Profile: "admin-lite"}, false, 403, "profile"},
		{"attribute not allowed", Request{Email: "ada@example.com", Attributes: map[string]string{"department": "finance"}}, false, 400, "attributes.department"},
		{"attribute allowed elsewhere only", Request{Email: "ada@example.com", Profile: "admin-lite", Attributes: map[string]string{"region": "EU"}}, true, 400, "attributes.region"},
		{"value not in the list", Request{Email: "ada@example.com", Attributes: map[string]string{"region": "emea"}}, false, 400, "attributes.region"},
		{"value not matching the pattern", Request{Email: "ada@example.com", Profile: "customer", ExternalUserID: "c-1", Attributes: map[string]string{"region": "EMEA1"}}, false, 400, "attributes.region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, nerr := tc.req.Normalize()
			if nerr != nil {
				t.Fatal(nerr)
			}
			_, _, err := cfg.Authorize(req, tc.operator)
			if err == nil || AsError(err).Status != tc.status || AsError(err).Field != tc.field {
				t.Errorf("got %+v, want %d on %q", err, tc.status, tc.field)
			}
		})
	}
	req, _ := Request{Email: "Ada@EXAMPLE.com", Attributes: map[string]string{"region": "EMEA"}}.Normalize()
	person, profile, err := cfg.Authorize(req, false)
	if err != nil || profile.Name != "analyst" || person.Attributes["region"] != "EMEA" {
		t.Errorf("default profile: %v %v %+v", err, profile, person)
	}
	// An operator on the CLI may give a profile no request can choose.
	req, _ = Request{Email: "ada@example.com", Profile: "admin-lite"}.Normalize()
	if _, profile, err := cfg.Authorize(req, true); err != nil || profile.Name != "admin-lite" {
		t.Errorf("operator giving admin-lite: %v", err)
	}
	req, _ = Request{Email: "ada@example.com", Profile: "customer", ExternalUserID: "c-1", Attributes: map[string]string{"region": "EMEA"}}.Normalize()
	if _, _, err := cfg.Authorize(req, false); err != nil {
		t.Errorf("a value matching the pattern was refused: %v", err)
	}
}

func TestCheckBulk(t *testing.T) {
	cfg := exampleConfig(t)
	reqs := make([]Request, 11)
	for i := range reqs {
		reqs[i] = Request{Action: ActionDeprovision}
	}
	if err := cfg.CheckBulk(reqs[:10], false); err != nil {
		t.Errorf("10 deprovisions with the default limit of 10: %v", err)
	}
	err := cfg.CheckBulk(reqs, false)
	if err == nil || AsError(err).Status != 403 || !strings.Contains(AsError(err).Message, "force") {
		t.Errorf("11 deprovisions: %v", err)
	}
	if err := cfg.CheckBulk(reqs, true); err != nil {
		t.Errorf("forced: %v", err)
	}
	zero, err2 := ParseConfig([]byte("max_deprovision: 0\nprofiles:\n  a:\n    stub: {}\n"), stubSchema)
	if err2 != nil || zero.CheckBulk(reqs[:1], false) == nil {
		t.Errorf("max_deprovision 0 must refuse any bulk deprovision: %v", err2)
	}
}

// The SCIM mapping reads profiles in file order, which Go's map loses:
// "zeta" is listed first and wins for someone in both groups.
func TestProfileForGroups(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
default_profile: alpha
profiles:
  zeta:
    scim_groups: [Looker Admins]
    stub: {}
  alpha:
    scim_groups: [Looker Analysts, Looker Admins]
    stub: {}
`), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		groups []string
		want   string
	}{
		{[]string{"Looker Analysts", "looker admins"}, "zeta"},
		{[]string{"LOOKER ANALYSTS"}, "alpha"},
		{[]string{"Sales"}, "alpha"}, // the default
		{nil, "alpha"},
	} {
		if got := cfg.ProfileForGroups(tc.groups); got == nil || got.Name != tc.want {
			t.Errorf("ProfileForGroups(%q) = %v, want %s", tc.groups, got, tc.want)
		}
	}
	noDefault, err := ParseConfig([]byte("profiles:\n  a:\n    scim_groups: [X]\n    stub: {}\n"), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	if got := noDefault.ProfileForGroups([]string{"Y"}); got != nil {
		t.Errorf("without default_profile, an unmapped person got %s", got.Name)
	}
	if _, err := ParseConfig([]byte("profiles:\n  a:\n    scim_groups: [X, ' ']\n    stub: {}\n"), stubSchema); err == nil || !strings.Contains(err.Error(), "profiles.a.scim_groups: empty entry") {
		t.Errorf("a blank scim_groups entry: %v", err)
	}
}
