// Package targets is the one list of onboard's targets (and welcome-email
// providers). Adding a target is a new package registering a
// plugin.Target, and one line here.
package targets

import (
	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/periscope"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/sendgrid"
)

// All are the targets this build knows, in the order they are reported.
var All = []plugin.Target{
	looker.Plugin,
	aac.Plugin,
	periscope.Plugin,
}

// Mailers are the welcome-email providers this build knows.
var Mailers = []plugin.Mailer{sendgrid.Mailer}

// Schema is what the targets and mailers add to onboard.yaml.
func Schema() core.ConfigSchema { return plugin.Schema(All, Mailers) }

// LoadConfig reads onboard.yaml with every target's sections.
func LoadConfig(path string) (*core.Config, error) { return core.LoadConfig(path, Schema()) }

// ParseConfig is LoadConfig for bytes.
func ParseConfig(data []byte) (*core.Config, error) { return core.ParseConfig(data, Schema()) }
