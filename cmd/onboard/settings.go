package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/targets"
)

func settingsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("settings", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "the policy file (default: ONBOARD_CONFIG, else onboard.yaml, else testdata/onboard.yaml)")
	check := fs.Bool("check", false, "exit 1, naming each, when a required plain setting is not set in this environment")
	secrets := fs.Bool("secrets", false, "print only the names of the secrets the deployment needs, one per line")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard settings [--config PATH] [--check | --secrets]

Prints what a deployment of the policy needs: onboard's own settings and
those of every target (and mailer) the policy uses, each marked required or
optional, plain or secret, and why. Targets no profile uses need nothing, so
a policy using one target needs only that target's settings. The deploy
scripts run it: --check refuses a missing required plain setting (secrets go
to the secret manager after the deploy, so they are listed, not checked);
--secrets lists the secrets to set.

Example:
  onboard settings --config onboard.yaml
  ONBOARD_CONFIG=onboard.yaml onboard settings --check
`)
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	path := *config
	if path == "" {
		path = targets.ConfigPath(os.Getenv)
	}
	cfg, err := targets.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "onboard settings: %v\n", err)
		return 2
	}
	needs := deploymentSettings(cfg)
	switch {
	case *secrets:
		for _, n := range needs {
			if n.Secret {
				fmt.Fprintln(stdout, n.Name)
			}
		}
	case *check:
		missing := 0
		for _, n := range needs {
			if n.required && !n.Secret && os.Getenv(n.Name) == "" {
				fmt.Fprintf(stderr, "onboard settings: %s is not set: %s\n", n.Name, n.why)
				missing++
			}
		}
		if missing > 0 {
			return 1
		}
	default:
		for _, n := range needs {
			fmt.Fprintf(stdout, "%-28s %-9s %-6s %s\n", n.Name, map[bool]string{true: "required", false: "optional"}[n.required],
				map[bool]string{true: "secret", false: "plain"}[n.Secret], n.why)
		}
	}
	return 0
}

// need is one setting a deployment of the policy reads.
type need struct {
	plugin.Setting
	required bool
	why      string
}

// deploymentSettings lists onboard's own settings, then each used target's
// and the mailer's, from the plug-ins' own registrations.
func deploymentSettings(cfg *core.Config) []need {
	needs := []need{
		{Setting: plugin.Setting{Name: app.SettingWebhookSecret, Secret: true}, required: true, why: "authenticates every HTTP request"},
		{Setting: plugin.Setting{Name: app.SettingSCIMToken, Secret: true}, why: "authenticates the SCIM front door (Okta, Entra); unset refuses every SCIM request"},
	}
	add := func(sw string, settings []plugin.Setting, why string) {
		for _, s := range settings {
			needs = append(needs, need{Setting: s, required: s.Required || s.Name == sw, why: why})
		}
	}
	for _, t := range targets.All {
		if profiles := plugin.Uses(cfg, t.Name); len(profiles) > 0 {
			add(t.Switch, t.Settings, fmt.Sprintf("%s (profiles %s)", t.Name, strings.Join(profiles, ", ")))
		}
	}
	for _, m := range targets.Mailers {
		if m.Name == cfg.Email.Provider {
			add(m.Switch, m.Settings, "email.provider: "+m.Name)
		}
	}
	for _, src := range targets.Sources {
		if src.Schedules != nil && len(src.Schedules(cfg)) > 0 {
			add("", src.Settings, "sources."+src.Name)
		}
	}
	return needs
}
