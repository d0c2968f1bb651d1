// Package plugin is what a target package registers with onboard: one
// Target value, listed once in package targets. The rest of onboard learns
// every target from that list and names none of them.
package plugin

import (
	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
)

// Target is one target's registration.
type Target struct {
	// Name is the target's key in a profile and its name in answers.
	Name string
	// Profile decodes and checks the target's section of one profile. The
	// value it returns is what the target reads back with Profile.Section.
	Profile func(node *yaml.Node, p *core.Profile) (any, error)
	// Policy decodes the target's own top-level key of onboard.yaml, if it
	// has one; node is nil when the key is absent.
	Policy func(node *yaml.Node, cfg *core.Config) (any, error)
}

// Schema is what targets add to onboard.yaml.
func Schema(targets ...Target) core.ConfigSchema {
	schema := core.ConfigSchema{
		Profile: map[string]func(*yaml.Node, *core.Profile) (any, error){},
		Policy:  map[string]func(*yaml.Node, *core.Config) (any, error){},
	}
	for _, t := range targets {
		schema.Profile[t.Name] = t.Profile
		if t.Policy != nil {
			schema.Policy[t.Name] = t.Policy
		}
	}
	return schema
}
