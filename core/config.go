package core

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

// Email providers.
const (
	EmailSendGrid = "sendgrid"
	EmailLooker   = "looker"
	EmailNone     = "none"
)

// Looker user kinds and deprovision modes.
const (
	LookerRegular = "regular"
	LookerEmbed   = "embed"

	DeprovisionDisable = "disable"
	DeprovisionDelete  = "delete"
)

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
	Periscope PeriscopeConfig     `yaml:"periscope"`
	Profiles  map[string]*Profile `yaml:"profiles"`

	allowedDomains map[string]bool
	protected      map[string]bool
	textTemplate   *template.Template
}

// EmailConfig chooses how a new user gets their welcome.
type EmailConfig struct {
	Provider   string `yaml:"provider"`
	From       string `yaml:"from"`
	Subject    string `yaml:"subject"`
	Text       string `yaml:"text"`
	TemplateID string `yaml:"template_id"`
}

// Profile is the bundle of rights one kind of person gets. Requests name a
// profile; they never name roles, groups or workspaces.
type Profile struct {
	Name string `yaml:"-"`
	// Requestable false keeps the profile out of reach of webhooks and
	// queues: only an operator on the CLI can give it. nil means true.
	Requestable       *bool              `yaml:"requestable"`
	AttributesAllowed []AllowedAttribute `yaml:"attributes_allowed"`
	Looker            *LookerProfile     `yaml:"looker"`
	AAC               *AACProfile        `yaml:"aac"`
	Periscope         *PeriscopeProfile  `yaml:"periscope"`
}

// LookerProfile is what a profile grants in Looker.
type LookerProfile struct {
	Kind        string            `yaml:"kind"`
	Roles       []string          `yaml:"roles"`
	Groups      []string          `yaml:"groups"`
	Attributes  map[string]string `yaml:"attributes"`
	Deprovision string            `yaml:"deprovision"`
}

// AACProfile is what a profile grants in Alteryx Analytics Cloud.
type AACProfile struct {
	Workspace string   `yaml:"workspace"`
	Roles     []string `yaml:"roles"`
}

// PeriscopeProfile is what a profile grants in Periscope / Sisense for Cloud Data Teams.
type PeriscopeProfile struct {
	Sites  []string `yaml:"sites"`
	Groups []string `yaml:"groups"`
}

// PeriscopeConfig is the top-level periscope section: how onboard talks to
// every Periscope site, as opposed to what a profile grants there.
type PeriscopeConfig struct {
	// TestMode sends test_mode=true with every write, the API's switch for
	// trying a setup out. It is instance-wide, like the API key, because it
	// is about the installation being tried, not about a kind of person.
	TestMode bool `yaml:"test_mode"`
	// InvitedByEmail is the Periscope user named as the inviter of new users
	// (invited_by_email) and the creator of new groups (created_by_email).
	InvitedByEmail string `yaml:"invited_by_email"`
	// GroupAccess is the access level given to groups onboard creates;
	// empty leaves it to Periscope.
	GroupAccess string `yaml:"group_access"`
}

// WelcomeData is what the welcome text template can use.
type WelcomeData struct {
	FirstName, LastName, Email, SetupURL string
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ConfigPath says which file to load: ONBOARD_CONFIG, else onboard.yaml in the
// working directory, else the example under testdata/.
func ConfigPath(getenv func(string) string) string {
	if p := getenv("ONBOARD_CONFIG"); p != "" {
		return p
	}
	if _, err := os.Stat("onboard.yaml"); err == nil {
		return "onboard.yaml"
	}
	return "testdata/onboard.yaml"
}

var yamlUnknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type`)

// ParseConfig decodes YAML strictly: an unknown key is an error naming the key
// and its line, because a misspelt "rolse:" must not silently grant nothing.
func ParseConfig(data []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config is empty")
		}
		if m := yamlUnknownField.FindAllStringSubmatch(err.Error(), -1); m != nil {
			parts := make([]string, len(m))
			for i, sm := range m {
				parts[i] = fmt.Sprintf("line %s: unknown key %q", sm[1], sm[2])
			}
			return nil, errors.New(strings.Join(parts, "; "))
		}
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// DefaultMaxDeprovision is max_deprovision when the config does not set it.
const DefaultMaxDeprovision = 10

func (c *Config) validate() error {
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
		if err := p.validate(); err != nil {
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
	if err := c.Periscope.validate(c); err != nil {
		return err
	}
	return c.Email.validate(c)
}

func (e *EmailConfig) validate(c *Config) error {
	switch e.Provider {
	case "":
		e.Provider = EmailNone
	case EmailSendGrid:
		if _, err := mail.ParseAddress(e.From); err != nil {
			return fmt.Errorf("email.from: %q is not an address like \"Data Team <data@example.com>\"", e.From)
		}
		if e.TemplateID != "" && !strings.HasPrefix(e.TemplateID, "d-") {
			return fmt.Errorf("email.template_id: %q is not a SendGrid dynamic template id (they start with d-)", e.TemplateID)
		}
		if e.TemplateID == "" {
			if e.Subject == "" || e.Text == "" {
				return errors.New("email: sendgrid needs subject and text, or template_id")
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
	case EmailLooker, EmailNone:
	default:
		return fmt.Errorf("email.provider: %q is not one of sendgrid, looker, none", e.Provider)
	}
	return nil
}

// validate requires an inviter once a profile uses Periscope, because the
// API's create-user call names one.
func (pc *PeriscopeConfig) validate(c *Config) error {
	if pc.InvitedByEmail == "" {
		for _, name := range c.ProfileNames() {
			if c.Profiles[name].Periscope != nil {
				return fmt.Errorf("periscope.invited_by_email: required because profile %q configures periscope (a Periscope user of every site, named as the inviter)", name)
			}
		}
		return nil
	}
	if a, err := mail.ParseAddress(pc.InvitedByEmail); err != nil || a.Name != "" || a.Address != pc.InvitedByEmail {
		return fmt.Errorf("periscope.invited_by_email: %q is not a bare address like data@example.com", pc.InvitedByEmail)
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

func (p *Profile) validate() error {
	allowed := map[string]bool{}
	for _, a := range p.AttributesAllowed {
		if allowed[a.Name] {
			return fmt.Errorf("attributes_allowed: %q is listed twice", a.Name)
		}
		allowed[a.Name] = true
	}
	if p.Looker == nil && p.AAC == nil && p.Periscope == nil {
		return errors.New("looker: a profile must configure at least one target (looker, aac or periscope)")
	}
	if l := p.Looker; l != nil {
		switch l.Kind {
		case "":
			l.Kind = LookerRegular
		case LookerRegular, LookerEmbed:
		default:
			return fmt.Errorf("looker.kind: %q is not regular or embed", l.Kind)
		}
		switch l.Deprovision {
		case "":
			l.Deprovision = DeprovisionDisable
		case DeprovisionDisable, DeprovisionDelete:
		default:
			return fmt.Errorf("looker.deprovision: %q is not disable or delete", l.Deprovision)
		}
		if err := nonEmpty("looker.roles", l.Roles); err != nil {
			return err
		}
		if err := nonEmpty("looker.groups", l.Groups); err != nil {
			return err
		}
		for k := range l.Attributes {
			if allowed[k] {
				// Otherwise a form could override a value the admin fixed.
				return fmt.Errorf("looker.attributes: %q is both fixed here and allowed from requests", k)
			}
		}
	}
	if a := p.AAC; a != nil {
		if strings.TrimSpace(a.Workspace) == "" {
			return errors.New("aac.workspace: required")
		}
		if err := nonEmpty("aac.roles", a.Roles); err != nil {
			return err
		}
	}
	if ps := p.Periscope; ps != nil {
		if len(ps.Sites) == 0 {
			return errors.New("periscope.sites: name at least one site")
		}
		if err := nonEmpty("periscope.sites", ps.Sites); err != nil {
			return err
		}
		if err := nonEmpty("periscope.groups", ps.Groups); err != nil {
			return err
		}
	}
	return nil
}

func nonEmpty(field string, refs []string) error {
	for _, r := range refs {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("%s: empty entry", field)
		}
	}
	return nil
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
