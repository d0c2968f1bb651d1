package periscope

import (
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core"
)

// The periscope section of onboard.yaml lives in core; these cases pin what
// this target relies on.
func TestPeriscopeConfig(t *testing.T) {
	const profile = "profiles:\n  bi:\n    periscope:\n      sites: [acme]\n      groups: [Analysts]\n"
	ok, err := core.ParseConfig([]byte("periscope:\n  invited_by_email: data@example.com\n  test_mode: true\n  group_access: View\n" + profile))
	if err != nil {
		t.Fatal(err)
	}
	if p := ok.Periscope; !p.TestMode || p.InvitedByEmail != "data@example.com" || p.GroupAccess != "View" {
		t.Errorf("parsed %+v", p)
	}
	if _, err := core.ParseConfig([]byte("profiles:\n  looker-only:\n    looker:\n      roles: [Viewer]\n")); err != nil {
		t.Errorf("no periscope profile, no periscope section: %v", err)
	}
	for yaml, want := range map[string]string{
		profile: `periscope.invited_by_email: required because profile "bi" configures periscope`,
		"periscope:\n  invited_by_email: Data <data@example.com>\n" + profile:            "is not a bare address",
		"periscope:\n  invited_by_email: data@example.com\n  testmode: true\n" + profile: `unknown key "testmode"`,
	} {
		_, err := core.ParseConfig([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
}
