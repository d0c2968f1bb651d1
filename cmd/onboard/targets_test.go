package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/periscope/periscopetest"
)

const lookerAndPeriscope = `default_profile: both
periscope: {invited_by_email: data@example.com}
profiles:
  both:
    looker: {roles: [Viewer]}
    periscope: {sites: [acme], groups: [Analysts]}
`

// A profile using Looker and Periscope, with Periscope's settings given and
// Looker's not: the CLI provisions on the real Periscope and a fake Looker,
// and says exactly that. ONBOARD_SANDBOX=1 fakes both; =0 refuses the fake.
func TestProvisionMixesRealAndFakeTargets(t *testing.T) {
	bin, dir := buildCLI(t), t.TempDir()
	config := filepath.Join(dir, "onboard.yaml")
	if err := os.WriteFile(config, []byte(lookerAndPeriscope), 0o600); err != nil {
		t.Fatal(err)
	}
	real := periscopetest.NewTestServer(t, periscopetest.Options{Sites: map[string]string{"acme": "real-site-key"}})
	sites, _ := json.Marshal(map[string]string{"acme": "real-site-key"})
	provision := func(email string, env ...string) (string, string, int) {
		cmd := exec.Command(bin, "provision", "--email", email)
		cmd.Dir = dir
		cmd.Env = append(cleanEnv(), append([]string{
			"ONBOARD_CONFIG=" + config, "ONBOARD_STORE=file:" + filepath.Join(dir, "store"),
			"PERISCOPE_BASE_URL=" + real.URL, "PERISCOPE_SITES=" + string(sites),
		}, env...)...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		code := 0
		if err := cmd.Run(); err != nil {
			code = 1
		}
		return out.String(), errOut.String(), code
	}

	out, errOut, code := provision("ada@example.com")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"onboard: looker: in-memory fake (no LOOKERSDK_BASE_URL)", "onboard: periscope: real, " + real.URL} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the note lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "real-site-key") {
		t.Error("the note printed a Periscope key")
	}
	if _, ok := real.User("acme", "ada@example.com"); !ok {
		t.Errorf("ada is not on the real Periscope:\n%s", out)
	}

	_, errOut, code = provision("bob@example.com", "ONBOARD_SANDBOX=1")
	if code != 0 || !strings.Contains(errOut, "periscope: in-memory fake (ONBOARD_SANDBOX=1)") {
		t.Fatalf("ONBOARD_SANDBOX=1: exit %d\n%s", code, errOut)
	}
	if _, ok := real.User("acme", "bob@example.com"); ok {
		t.Error("ONBOARD_SANDBOX=1 still wrote to the real Periscope")
	}

	_, errOut, code = provision("eve@example.com", "ONBOARD_SANDBOX=0")
	if code == 0 || !strings.Contains(errOut, "ONBOARD_SANDBOX=0 refuses in-memory fakes, and looker (profile both) has no LOOKERSDK_BASE_URL") {
		t.Fatalf("ONBOARD_SANDBOX=0: exit %d\n%s", code, errOut)
	}
	if _, ok := real.User("acme", "eve@example.com"); ok {
		t.Error("a refused run wrote to the real Periscope")
	}
}
