package periscope

import (
	"errors"
	"fmt"
	"net/mail"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
)

// PluginName is the key of Periscope's sections in onboard.yaml; each site
// is its own target in answers (TargetName).
const PluginName = "periscope"

// Profile is what a profile grants in Periscope (its periscope: section).
type Profile struct {
	Sites  []string `yaml:"sites"`
	Groups []string `yaml:"groups"`
}

// ProfileOf is the periscope section of p, nil when p does not use Periscope.
func ProfileOf(p *core.Profile) *Profile { return core.SectionOf[Profile](p, PluginName) }

func decodeProfile(node *yaml.Node, _ *core.Profile) (any, error) {
	var ps Profile
	if err := core.DecodeYAML(node, &ps); err != nil {
		return nil, err
	}
	if len(ps.Sites) == 0 {
		return nil, errors.New("sites: name at least one site")
	}
	if err := core.NonEmpty("sites", ps.Sites); err != nil {
		return nil, err
	}
	if err := core.NonEmpty("groups", ps.Groups); err != nil {
		return nil, err
	}
	return &ps, nil
}

// Policy is the top-level periscope section: how onboard talks to every
// Periscope site, as opposed to what a profile grants there.
type Policy struct {
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

// PolicyOf is cfg's top-level periscope section.
func PolicyOf(cfg *core.Config) *Policy {
	pc, _ := cfg.Section(PluginName).(*Policy)
	if pc == nil {
		return &Policy{}
	}
	return pc
}

// decodePolicy requires an inviter once a profile uses Periscope, because
// the API's create-user call names one.
func decodePolicy(node *yaml.Node, cfg *core.Config) (any, error) {
	var pc Policy
	if node != nil {
		if err := core.DecodeYAML(node, &pc); err != nil {
			return nil, err
		}
	}
	if pc.InvitedByEmail == "" {
		for _, name := range cfg.ProfileNames() {
			if ProfileOf(cfg.Profiles[name]) != nil {
				return nil, fmt.Errorf("invited_by_email: required because profile %q configures periscope (a Periscope user of every site, named as the inviter)", name)
			}
		}
		return &pc, nil
	}
	if a, err := mail.ParseAddress(pc.InvitedByEmail); err != nil || a.Name != "" || a.Address != pc.InvitedByEmail {
		return nil, fmt.Errorf("invited_by_email: %q is not a bare address like data@example.com", pc.InvitedByEmail)
	}
	return &pc, nil
}
