package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Start-up refuses AAC settings it cannot use, naming the setting and
// never echoing a secret value.
func TestAACStartupChecks(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "onboard.yaml")
	if err := os.WriteFile(cfgFile, []byte("default_profile: a\nprofiles:\n  a:\n    aac: {workspace: W, roles: [R]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "rt-LEAKCHECK-5e1f"
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"aac profile without AAC_BASE_URL": {map[string]string{}, `profile "a" configures aac but AAC_BASE_URL is not set`},
		"malformed AAC_REFRESH_TOKENS":     {map[string]string{"AAC_BASE_URL": "https://us1.alteryxcloud.com", "AAC_REFRESH_TOKENS": secret}, "AAC_REFRESH_TOKENS: not a JSON object"},
		"account token without account":    {map[string]string{"AAC_BASE_URL": "https://us1.alteryxcloud.com", "AAC_ACCOUNT_REFRESH_TOKEN": secret}, "AAC_ACCOUNT_ID is not"},
		"bad AAC_BASE_URL":                 {map[string]string{"AAC_BASE_URL": "us1.alteryxcloud.com"}, "AAC_BASE_URL"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"ONBOARD_CONFIG": cfgFile, "ONBOARD_STORE": "file:" + t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := New(context.Background(), Options{Getenv: func(k string) string { return env[k] }})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Error("the error echoes a secret value")
			}
		})
	}
	// Well-formed settings start, with the AAC target in the engine.
	env := map[string]string{"ONBOARD_CONFIG": cfgFile, "ONBOARD_STORE": "file:" + t.TempDir(),
		"AAC_BASE_URL": "https://us1.alteryxcloud.com/v4/", "AAC_REFRESH_TOKENS": `{"W":"` + secret + `"}`}
	a, err := New(context.Background(), Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(a.Engine.Targets) != 1 || a.Engine.Targets[0].Name() != "aac" {
		t.Errorf("targets = %v, want the AAC target", a.Engine.Targets)
	}
}
