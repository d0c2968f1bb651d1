package looker

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
)

// User kinds and deprovision modes of a profile's looker section.
const (
	KindRegular = "regular"
	KindEmbed   = "embed"

	DeprovisionDisable = "disable"
	DeprovisionDelete  = "delete"
)

// Profile is what a profile grants in Looker (its looker: section).
type Profile struct {
	Kind        string            `yaml:"kind"`
	Roles       []string          `yaml:"roles"`
	Groups      []string          `yaml:"groups"`
	Attributes  map[string]string `yaml:"attributes"`
	Deprovision string            `yaml:"deprovision"`
}

// ProfileOf is the looker section of p, nil when p does not use Looker.
func ProfileOf(p *core.Profile) *Profile { return core.SectionOf[Profile](p, TargetName) }

func decodeProfile(node *yaml.Node, p *core.Profile) (any, error) {
	var lp Profile
	if err := core.DecodeYAML(node, &lp); err != nil {
		return nil, err
	}
	switch lp.Kind {
	case "":
		lp.Kind = KindRegular
	case KindRegular, KindEmbed:
	default:
		return nil, fmt.Errorf("kind: %q is not regular or embed", lp.Kind)
	}
	switch lp.Deprovision {
	case "":
		lp.Deprovision = DeprovisionDisable
	case DeprovisionDisable, DeprovisionDelete:
	default:
		return nil, fmt.Errorf("deprovision: %q is not disable or delete", lp.Deprovision)
	}
	if err := core.NonEmpty("roles", lp.Roles); err != nil {
		return nil, err
	}
	if err := core.NonEmpty("groups", lp.Groups); err != nil {
		return nil, err
	}
	for _, a := range p.AttributesAllowed {
		if _, fixed := lp.Attributes[a.Name]; fixed {
			// Otherwise a form could override a value the admin fixed.
			return nil, fmt.Errorf("attributes: %q is both fixed here and allowed from requests", a.Name)
		}
	}
	return &lp, nil
}

// CheckRequest implements core.RequestChecker: an embed user is keyed by
// the caller's external id, so a request without one cannot be served.
func (lp *Profile) CheckRequest(req core.Request, profile string) error {
	if lp.Kind == KindEmbed && req.ExternalUserID == "" {
		return core.Invalid("external_user_id", "required for profile %q, which provisions Looker embed users", profile)
	}
	return nil
}
