package core

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/mail"
	"reflect"
	"slices"
	"sort"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

// EmailNone is email.provider when no one sends a welcome.
const EmailNone = "none"

// Config is onboard.yaml: the server-side policy a request can only select from.
type Config struct {
	AllowedEmailDomains []string `yaml:"allowed_email_domains"`
	DefaultProfile      string   `yaml:"default_profile"`
	// MaxDeprovision is how many people may be deprovisioned in any rolling
	// hour, across every trigger and instance, and in one bulk request or
	// import: a pasted list of the whole company, or a feed gone wrong, must
	// not lock everyone out. nil means DefaultMaxDeprovision.
	MaxDeprovision *int `yaml:"max_deprovision"`
	// Protected people are never deprovisioned, by any trigger or the CLI.
	Protected []string            `yaml:"protected"`
	Email     EmailConfig         `yaml:"email"`
	Profiles  map[string]*Profile `yaml:"profiles"`

	// sections are the plug-ins' own top-level keys, decoded by them.
	sections       map[string]any
	rawSections    []yamlPair
	profileOrder   []string // profile names as the file lists them
	allowedDomains map[string]bool
	protected      map[string]bool
	textTemplate   *template.Template
}

// EmailConfig chooses how a new user gets their welcome: from onboard
// through a mailer (provider names it), from a target that sends its own
// (provider names the target), or not at all (none).
type EmailConfig struct {
	Provider   string `yaml:"provider"`
	From       string `yaml:"from"`
	Subject    string `yaml:"subject"`
	Text       string `yaml:"text"`
	TemplateID string `yaml:"template_id"`

	byMailer bool
}

// ByMailer says whether onboard sends the welcome itself, through the
// mailer email.provider names.
func (e EmailConfig) ByMailer() bool { return e.byMailer }

// Profile is the bundle of rights one kind of person gets. Requests name a
// profile; they never name roles, groups or workspaces. What it grants in
// each target is that target's section, decoded by the target's plug-in.
type Profile struct {
	Name string `yaml:"-"`
	// Requestable false keeps the profile out of reach of webhooks and
	// queues: only an operator on the CLI can give it. nil means true.
	Requestable       *bool              `yaml:"requestable"`
	AttributesAllowed []AllowedAttribute `yaml:"attributes_allowed"`
	// SCIMGroups are the identity provider's groups (by display name) whose
	// members the SCIM front door gives this profile.
	SCIMGroups []string `yaml:"scim_groups"`

	sections    map[string]any
	rawSections []yamlPair
}

type yamlPair struct{ key, value *yaml.Node }

// ConfigSchema is what the plug-ins add to onboard.yaml.
type ConfigSchema struct {
	// Profile decodes and checks one plug-in's key of a profile (its
	// roles, groups, workspace...), the profile's own keys already decoded.
	Profile map[string]func(node *yaml.Node, p *Profile) (any, error)
	// Policy decodes a plug-in's top-level key, after every profile, so it
	// can require what the profiles need; node is nil when the key is absent.
	Policy map[string]func(node *yaml.Node, c *Config) (any, error)
	// Mailers check the email section when email.provider names them.
	Mailers map[string]func(EmailConfig) error
	// OwnWelcome are the targets that can send their own welcome
	// (email.provider names one of them).
	OwnWelcome []string
}

// Section is what the plug-in key decoded from this profile; nil when the
// profile does not use it.
func (p *Profile) Section(key string) any {
	if p == nil {
		return nil
	}
	return p.sections[key]
}

// SectionOf is the section key decoded from p, typed as its plug-in made
// it; nil when p does not use that plug-in.
func SectionOf[T any](p *Profile, key string) *T {
	s, _ := p.Section(key).(*T)
	return s
}

// SectionKeys lists the plug-in keys the profile uses, sorted.
func (p *Profile) SectionKeys() []string { return slices.Sorted(maps.Keys(p.sections)) }

// Section is what the plug-in key decoded from the top level of the file.
func (c *Config) Section(key string) any { return c.sections[key] }

// UnmarshalYAML decodes the profile's own keys and keeps every other key for
// the plug-ins, which decode them in ParseConfig.
func (p *Profile) UnmarshalYAML(node *yaml.Node) error {
	type own Profile
	rest, err := splitOwnKeys(node, (*own)(p))
	p.rawSections = rest
	return err
}

// UnmarshalYAML is Profile's for the top level. It also keeps the order of
// the profiles, which a map loses: the SCIM group mapping gives the first
// profile, in file order, whose groups a person is in.
func (c *Config) UnmarshalYAML(node *yaml.Node) error {
	type own Config
	rest, err := splitOwnKeys(node, (*own)(c))
	c.rawSections = rest
	for i := 0; i+1 < len(node.Content); i += 2 {
		if key, profiles := node.Content[i], node.Content[i+1]; key.Value == "profiles" && profiles.Kind == yaml.MappingNode {
			for j := 0; j < len(profiles.Content); j += 2 {
				c.profileOrder = append(c.profileOrder, profiles.Content[j].Value)
			}
		}
	}
	return err
}

// splitOwnKeys decodes into v the keys its type names and returns the others.
func splitOwnKeys(node *yaml.Node, v any) ([]yamlPair, error) {
	if node.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: expected a mapping of keys", node.Line)
	}
	fields := yamlFields(reflect.TypeOf(v).Elem())
	own := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: node.Line, Column: node.Column}
	var rest []yamlPair
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if _, ok := fields[key.Value]; ok {
			own.Content = append(own.Content, key, value)
		} else {
			rest = append(rest, yamlPair{key, value})
		}
	}
	return rest, DecodeYAML(own, v)
}

// WelcomeData is what the welcome text template can use.
type WelcomeData struct {
	FirstName, LastName, Email, SetupURL string
}

// ParseConfig decodes YAML strictly (DecodeYAML): every key is one onboard
// or a plug-in of schema knows.
// The policy is one document: a second one would be ignored, whatever it says.
func ParseConfig(data []byte, schema ConfigSchema) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config is empty")
		}
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("config is empty")
	}
	for {
		var more yaml.Node // an empty document (a trailing ---) has no content
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || len(more.Content) > 0 {
			return nil, errors.New("invalid YAML: the file holds more than one document (a line with ---); put the whole policy in one")
		}
	}
	var cfg Config
	if err := DecodeYAML(&doc, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(schema); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// DefaultMaxDeprovision is max_deprovision when the config does not set it.
const DefaultMaxDeprovision = 10

func (c *Config) validate(schema ConfigSchema) error {
	var unknown []string
	for _, kv := range c.rawSections {
		if schema.Policy[kv.key.Value] == nil {
			unknown = append(unknown, fmt.Sprintf("line %d: unknown key %q", kv.key.Line, kv.key.Value))
		}
	}
	if len(unknown) > 0 {
		return errors.New(strings.Join(unknown, "; "))
	}
	if c.MaxDeprovision == nil {
		n := DefaultMaxDeprovision
		c.MaxDeprovision = &n
	} else if *c.MaxDeprovision < 0 {
		return errors.New("max_deprovision: must be 0 or more")
	}
	c.protected = map[string]bool{}
	for _, p := range c.Protected {
		email, err := NormalizeEmail(p)
		if err != nil {
			return fmt.Errorf("protected: %q is not an email address", p)
		}
		c.protected[strings.ToLower(email)] = true
	}
	c.allowedDomains = map[string]bool{}
	for _, d := range c.AllowedEmailDomains {
		ascii, err := NormalizeDomain(d)
		if err != nil || ascii == "" {
			return fmt.Errorf("allowed_email_domains: %q is not a domain", d)
		}
		c.allowedDomains[ascii] = true
	}
	if len(c.Profiles) == 0 {
		return errors.New("profiles: at least one profile is required")
	}
	for _, name := range c.ProfileNames() {
		p := c.Profiles[name]
		if p == nil {
			return fmt.Errorf("profiles.%s: empty profile", name)
		}
		p.Name = name
		if err := p.validate(schema); err != nil {
			return fmt.Errorf("profiles.%s.%w", name, err)
		}
	}
	if c.DefaultProfile != "" && c.Profiles[c.DefaultProfile] == nil {
		return fmt.Errorf("default_profile: no profile named %q", c.DefaultProfile)
	}
	if c.DefaultProfile != "" && !c.Profiles[c.DefaultProfile].IsRequestable() {
		// Every request without a profile would get it: that is requesting it.
		return fmt.Errorf("default_profile: profile %q is requestable: false, so it cannot be what every request without a profile gets", c.DefaultProfile)
	}
	if err := c.decodeSections(schema); err != nil {
		return err
	}
	return c.Email.validate(c, schema)
}

// decodeSections hands every plug-in its top-level key, present or not.
func (c *Config) decodeSections(schema ConfigSchema) error {
	given := map[string]*yaml.Node{}
	for _, kv := range c.rawSections {
		given[kv.key.Value] = kv.value
	}
	c.sections = map[string]any{}
	for _, key := range slices.Sorted(maps.Keys(schema.Policy)) {
		section, err := schema.Policy[key](given[key], c)
		if err != nil {
			return fmt.Errorf("%s.%w", key, err)
		}
		c.sections[key] = section
	}
	return nil
}

func (e *EmailConfig) validate(c *Config, schema ConfigSchema) error {
	check, isMailer := schema.Mailers[e.Provider]
	switch {
	case e.Provider == "":
		e.Provider = EmailNone
	case isMailer:
		if _, err := mail.ParseAddress(e.From); err != nil {
			return fmt.Errorf("email.from: %q is not an address like \"Data Team <data@example.com>\"", e.From)
		}
		if err := check(*e); err != nil {
			return fmt.Errorf("email.%w", err)
		}
		if e.TemplateID == "" {
			if e.Subject == "" || e.Text == "" {
				return fmt.Errorf("email: %s needs subject and text, or template_id", e.Provider)
			}
			tmpl, err := template.New("email.text").Option("missingkey=error").Parse(e.Text)
			if err != nil {
				return fmt.Errorf("email.text: %w", err)
			}
			// Render once now so a typo like {{.Frist}} fails at start-up, not on the first signup.
			if err := tmpl.Execute(new(bytes.Buffer), WelcomeData{}); err != nil {
				return fmt.Errorf("email.text: %w", err)
			}
			c.textTemplate = tmpl
		}
		e.byMailer = true
	case e.Provider == EmailNone || slices.Contains(schema.OwnWelcome, e.Provider):
	default:
		options := append(slices.Sorted(maps.Keys(schema.Mailers)), schema.OwnWelcome...)
		return fmt.Errorf("email.provider: %q is not one of %s, %s", e.Provider, strings.Join(options, ", "), EmailNone)
	}
	return nil
}

// RenderWelcomeText fills the configured text template.
func (c *Config) RenderWelcomeText(d WelcomeData) (string, error) {
	if c.textTemplate == nil {
		return "", errors.New("no email text template configured")
	}
	var buf bytes.Buffer
	if err := c.textTemplate.Execute(&buf, d); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// IsRequestable says whether a webhook or queue request may choose the profile.
func (p *Profile) IsRequestable() bool { return p.Requestable == nil || *p.Requestable }

// IsProtected says whether the policy forbids deprovisioning email.
func (c *Config) IsProtected(email string) bool { return c.protected[strings.ToLower(email)] }

func (p *Profile) validate(schema ConfigSchema) error {
	if err := NonEmpty("scim_groups", p.SCIMGroups); err != nil {
		return err
	}
	allowed := map[string]bool{}
	for _, a := range p.AttributesAllowed {
		if allowed[a.Name] {
			return fmt.Errorf("attributes_allowed: %q is listed twice", a.Name)
		}
		allowed[a.Name] = true
	}
	p.sections = map[string]any{}
	for _, kv := range p.rawSections {
		decode := schema.Profile[kv.key.Value]
		if decode == nil {
			return fmt.Errorf("%s: line %d: unknown key %q; a profile holds requestable, attributes_allowed, scim_groups and its targets (%s)", kv.key.Value, kv.key.Line,
				kv.key.Value, strings.Join(slices.Sorted(maps.Keys(schema.Profile)), ", "))
		}
		if kv.value.Tag == "!!null" {
			continue // "looker:" with nothing under it configures nothing
		}
		section, err := decode(kv.value, p)
		if err != nil {
			return fmt.Errorf("%s.%w", kv.key.Value, err)
		}
		p.sections[kv.key.Value] = section
	}
	if len(p.sections) == 0 {
		return fmt.Errorf("%s: a profile must configure at least one target (%s)", "targets",
			strings.Join(slices.Sorted(maps.Keys(schema.Profile)), ", "))
	}
	return nil
}

// NonEmpty refuses a list with a blank entry, which would name no role,
// group or site.
func NonEmpty(field string, refs []string) error {
	for _, r := range refs {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("%s: empty entry", field)
		}
	}
	return nil
}

// ProfileForGroups is the profile SCIM group membership gives: the first
// profile, in file order, listing one of groups (display names, compared
// case-insensitively as SCIM compares them) in scim_groups; else the
// default profile; nil with neither.
func (c *Config) ProfileForGroups(groups []string) *Profile {
	for _, name := range c.profileOrder {
		for _, mapped := range c.Profiles[name].SCIMGroups {
			if slices.ContainsFunc(groups, func(g string) bool { return strings.EqualFold(g, mapped) }) {
				return c.Profiles[name]
			}
		}
	}
	return c.Profiles[c.DefaultProfile]
}

// ProfileNames lists profiles in a stable order.
func (c *Config) ProfileNames() []string {
	names := make([]string, 0, len(c.Profiles))
	for n := range c.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
