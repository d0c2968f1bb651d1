package periscope

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// Periscope's sections of onboard.yaml: its top-level settings, required
// once a profile uses it, and each profile's sites and groups.
func TestPeriscopeConfig(t *testing.T) {
	schema := plugin.Schema([]plugin.Target{Plugin, {Name: "other", Profile: func(*yaml.Node, *core.Profile) (any, error) { return struct{}{}, nil }}}, nil, nil)
	const profile = "profiles:\n  bi:\n    periscope:\n      sites: [acme]\n      groups: [Analysts]\n"
	ok, err := core.ParseConfig([]byte("periscope:\n  invited_by_email: data@example.com\n  test_mode: true\n  group_access: View\n"+profile), schema)
	if err != nil {
		t.Fatal(err)
	}
	if p := PolicyOf(ok); !p.TestMode || p.InvitedByEmail != "data@example.com" || p.GroupAccess != "View" {
		t.Errorf("parsed %+v", p)
	}
	if _, err := core.ParseConfig([]byte("profiles:\n  other-only:\n    other: {}\n"), schema); err != nil {
		t.Errorf("no periscope profile, no periscope section: %v", err)
	}
	for yaml, want := range map[string]string{
		profile: `periscope.invited_by_email: required because profile "bi" configures periscope`,
		"periscope:\n  invited_by_email: Data <data@example.com>\n" + profile:            "is not a bare address",
		"periscope:\n  invited_by_email: data@example.com\n  testmode: true\n" + profile: `unknown key "testmode"`,
	} {
		_, err := core.ParseConfig([]byte(yaml), schema)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
}
