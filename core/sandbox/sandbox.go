// Package sandbox runs `make run` and the CLI against in-memory fakes of the
// targets that have no settings, so onboard works on a laptop with no
// credentials and nothing to clean up, and a mixed setup (a real Periscope,
// a fake Looker) says exactly which is which. Deployed functions never use it.
package sandbox

import (
	"crypto/rand"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/targets"
)

// ModeSetting is the setting that chooses what is faked: unset fakes the
// targets without settings, 1 fakes every target, 0 refuses any fake.
const ModeSetting = "ONBOARD_SANDBOX"

// Sandbox is the set of fakes one local run uses.
type Sandbox struct {
	// Fakes are the targets (and the welcome-email mailer) served by
	// in-memory fakes, by name.
	Fakes     map[string]*plugin.Fake
	OutboxDir string
	// Env holds the settings that point onboard at the fakes, and blanks
	// every other setting of a faked target so none of the real one's mixes in.
	Env     map[string]string
	secrets map[string]string
	note    []string
}

// Start fakes what cfg's profiles use and getenv has no settings for (or
// everything, or nothing, as ONBOARD_SANDBOX says), seeded from cfg, with
// captured emails written under outboxDir.
func Start(cfg *core.Config, outboxDir string, getenv func(string) string) (*Sandbox, error) {
	mode := getenv(ModeSetting)
	if mode != "" && mode != "0" && mode != "1" {
		return nil, fmt.Errorf("%s=%q: use 1 (fake every target), 0 (never fake) or leave it unset (fake what has no settings)", ModeSetting, mode)
	}
	s := &Sandbox{Fakes: map[string]*plugin.Fake{}, OutboxDir: outboxDir, Env: map[string]string{}, secrets: map[string]string{}}
	var refused []string
	isSet := func(sw string, secret bool) bool {
		return getenv(sw) != "" || (secret && keepsSecretsElsewhere(getenv))
	}
	// fake says whether to fake name, which sw would make real.
	fake := func(name, sw string, configured bool, profiles []string) bool {
		switch {
		case mode == "1" || (mode == "" && !configured):
			return true
		case !configured:
			refused = append(refused, fmt.Sprintf("%s (profile %s) has no %s", name, strings.Join(profiles, ", "), sw))
		}
		return false
	}
	for _, t := range targets.All {
		profiles := plugin.Uses(cfg, t.Name)
		if len(profiles) == 0 {
			continue
		}
		if !fake(t.Name, t.Switch, isSet(t.Switch, isSecret(t.Settings, t.Switch)), profiles) {
			s.note = append(s.note, fmt.Sprintf("%s: real, %s", t.Name, shownHost(t.Host(getenv))))
			continue
		}
		if err := s.start(t.Name, t.Settings, cfg, ""); err != nil {
			s.Close()
			return nil, err
		}
		s.note = append(s.note, fmt.Sprintf("%s: in-memory fake%s", t.Name, because(mode, t.Switch)))
	}
	for _, m := range targets.Mailers {
		if m.Name != cfg.Email.Provider {
			continue
		}
		if !fake(m.Name, m.Switch, isSet(m.Switch, true), []string{"email.provider"}) {
			s.note = append(s.note, fmt.Sprintf("%s: real, %s", m.Name, shownHost(m.Host(getenv))))
			continue
		}
		if err := os.MkdirAll(outboxDir, 0o700); err != nil {
			s.Close()
			return nil, fmt.Errorf("sandbox outbox: %w", err)
		}
		if err := s.start(m.Name, m.Settings, cfg, outboxDir); err != nil {
			s.Close()
			return nil, err
		}
		s.note = append(s.note, fmt.Sprintf("%s: in-memory fake%s; welcome emails are written to %s/", m.Name,
			because(mode, m.Switch), strings.TrimRight(outboxDir, "/")))
	}
	for _, src := range targets.Sources {
		if src.Schedules == nil || len(src.Schedules(cfg)) == 0 {
			continue
		}
		set := slices.IndexFunc(src.Switches, func(sw string) bool { return isSet(sw, isSecret(src.Settings, sw)) })
		switches := strings.Join(src.Switches, " or ")
		if !fake(src.Name, switches, set >= 0, []string{"sources." + src.Name}) {
			if set >= 0 {
				s.note = append(s.note, fmt.Sprintf("%s: real (%s is set)", src.Name, src.Switches[set]))
			}
			continue
		}
		if err := s.start(src.Name, src.Settings, cfg, ""); err != nil {
			s.Close()
			return nil, err
		}
		s.note = append(s.note, fmt.Sprintf("%s: in-memory fake%s", src.Name, because(mode, switches)))
	}
	if len(refused) > 0 {
		s.Close()
		return nil, fmt.Errorf("%s=0 refuses in-memory fakes, and %s: set them, or unset %s to fake what has no settings",
			ModeSetting, strings.Join(refused, "; "), ModeSetting)
	}
	return s, nil
}

// start starts name's fake and points name at it, blanking every setting
// the fake does not give so that none of the real one's mixes in.
func (s *Sandbox) start(name string, settings []plugin.Setting, cfg *core.Config, outboxDir string) error {
	f, err := plugin.StartFake(name, cfg, outboxDir)
	if err != nil {
		return fmt.Errorf("starting the sandbox's %s: %w", name, err)
	}
	s.Fakes[name] = f
	for _, setting := range settings {
		s.Env[setting.Name] = ""
	}
	for k, v := range f.Settings {
		s.Env[k] = v
	}
	for _, setting := range settings {
		if v := f.Settings[setting.Name]; setting.Secret && v != "" {
			s.secrets[setting.Name] = v
		}
	}
	return nil
}

// Secrets are the secret settings the fakes were given, by name: what a
// test looks for in logs and answers, or stores in a secret manager.
func (s *Sandbox) Secrets() map[string]string { return maps.Clone(s.secrets) }

// Faking says whether anything runs against a fake.
func (s *Sandbox) Faking() bool { return len(s.Fakes) > 0 }

// Note says, one line per target the profiles use, whether it is real
// (and where) or an in-memory fake. It names hosts, never secrets.
func (s *Sandbox) Note() []string { return slices.Clone(s.note) }

// Close stops the fakes.
func (s *Sandbox) Close() {
	for _, f := range s.Fakes {
		f.Close()
	}
}

// Credential returns a fresh credential (a webhook secret, a SCIM token)
// for a sandbox run that has none, so the printed curl lines exercise real
// authentication.
func Credential() string { return "sandbox-" + strings.ToLower(rand.Text()) }

func because(mode, setting string) string {
	if mode == "1" {
		return " (" + ModeSetting + "=1)"
	}
	return " (no " + setting + ")"
}

func isSecret(settings []plugin.Setting, name string) bool {
	for _, s := range settings {
		if s.Name == name {
			return s.Secret
		}
	}
	return false
}

// keepsSecretsElsewhere: with a secret manager, a secret setting absent
// from the environment may well be set there; the target is then taken as
// real, and the app says so if it is not.
func keepsSecretsElsewhere(getenv func(string) string) bool {
	backend := getenv("ONBOARD_SECRETS")
	return backend != "" && backend != "env"
}

// shownHost is a base URL as the note prints it: scheme and host only, so
// credentials pasted into a URL, a path or a query never reach the terminal.
func shownHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(an unreadable URL; the target says why at start-up)"
	}
	return u.Scheme + "://" + u.Host
}
