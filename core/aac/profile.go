package aac

import (
	"errors"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
)

// Profile is what a profile grants in AAC (its aac: section).
type Profile struct {
	Workspace string   `yaml:"workspace"`
	Roles     []string `yaml:"roles"`
}

// ProfileOf is the aac section of p, nil when p does not use AAC.
func ProfileOf(p *core.Profile) *Profile { return core.SectionOf[Profile](p, TargetName) }

func decodeProfile(node *yaml.Node, _ *core.Profile) (any, error) {
	var ap Profile
	if err := core.DecodeYAML(node, &ap); err != nil {
		return nil, err
	}
	if strings.TrimSpace(ap.Workspace) == "" {
		return nil, errors.New("workspace: required")
	}
	if err := core.NonEmpty("roles", ap.Roles); err != nil {
		return nil, err
	}
	return &ap, nil
}
