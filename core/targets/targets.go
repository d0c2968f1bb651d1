// Package targets is the one list of onboard's targets (and welcome-email
// providers). Adding a target is a new package registering a
// plugin.Target (and, from its sandbox file, its fake), and one line in All.
package targets

import (
	"fmt"
	"os"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/periscope"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/scim"
	"github.com/onboard-dev/onboard/core/sendgrid"
	"github.com/onboard-dev/onboard/core/sheets"
)

// All are the targets this build knows, in the order they are reported.
var All = []plugin.Target{
	looker.Plugin,
	aac.Plugin,
	periscope.Plugin,
}

// Mailers are the welcome-email providers this build knows.
var Mailers = []plugin.Mailer{sendgrid.Mailer}

// Sources are the configured ways requests arrive this build knows.
var Sources = []plugin.Source{sheets.Plugin, scim.Plugin}

// Schema is what the targets, mailers and sources add to onboard.yaml.
func Schema() core.ConfigSchema { return plugin.Schema(All, Mailers, Sources) }

// ConfigSetting names the policy file.
const ConfigSetting = "ONBOARD_CONFIG"

// LoadConfig reads and validates the policy file with every target's sections.
func LoadConfig(path string) (*core.Config, error) {
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

// ConfigPath says which policy file to load: ONBOARD_CONFIG, else
// onboard.yaml in the working directory, else the example under testdata/.
func ConfigPath(getenv func(string) string) string {
	if p := getenv(ConfigSetting); p != "" {
		return p
	}
	if _, err := os.Stat("onboard.yaml"); err == nil {
		return "onboard.yaml"
	}
	return "testdata/onboard.yaml"
}

// ParseConfig is LoadConfig for bytes.
func ParseConfig(data []byte) (*core.Config, error) { return core.ParseConfig(data, Schema()) }
