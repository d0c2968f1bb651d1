// Package plugin is what a target package registers with onboard: one
// Target value, listed once in package targets. The rest of onboard learns
// every target from that list and names none of them.
package plugin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
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
	// Settings are every setting the target reads.
	Settings []Setting
	// Switch is the setting whose presence makes the target real: without
	// it a profile using the target cannot be served (or, in a sandbox, is
	// served by the fake).
	Switch string
	// New builds the target from its settings.
	New func(ctx context.Context, env Env) (*Built, error)
	// Tasks are the names of its maintenance jobs. A job of a target that
	// is not configured has nothing to do and succeeds.
	Tasks []string
	// Host says where the configured target is, for the start-up note; it
	// must never return a secret.
	Host func(get func(string) string) string
	// SendsOwnWelcome: email.provider may name the target, which then tells
	// new users how to sign in itself.
	SendsOwnWelcome bool
	// Commands are its admin commands: onboard NAME COMMAND.
	Commands []Command
	// Example is a profile section (YAML) that works against the fake, and
	// ExamplePolicy the target's top-level section if it needs one: what
	// the conformance test runs every target with.
	Example, ExamplePolicy string
}

// Mailer is one welcome-email provider's registration (email.provider).
type Mailer struct {
	Name string
	// Check refuses what the provider cannot send (its own template ids...).
	Check    func(core.EmailConfig) error
	Settings []Setting
	Switch   string
	New      func(ctx context.Context, env Env) (core.Mailer, error)
	Host     func(get func(string) string) string
}

// Fake is a running stand-in for a target.
type Fake struct {
	// Settings point the target at the fake, as real settings would.
	Settings map[string]string
	// Server is the fake itself (a lookertest.Server...), for tests.
	Server any
	// Writes lists the requests that would change the tool's state, as
	// "METHOD /path", sign-ins excluded: a plan must cause none.
	Writes func() []string
	Close  func()
}

// StartFakeFunc starts a target's (or mailer's) sandbox stand-in, seeded
// for cfg's profiles; a mailer's writes every email under outboxDir.
type StartFakeFunc func(cfg *core.Config, outboxDir string) (*Fake, error)

// fakes are the stand-ins the target packages register from their
// sandbox files. A deployed build leaves those files out (the
// onboard_nofakes build tag), so it never links a fake: they made up
// 1.1 MB of the Lambda bootstrap's 15.
var fakes = map[string]StartFakeFunc{}

// RegisterFake makes start the sandbox's stand-in for the target or
// mailer name; a target package calls it from its sandbox file's init.
func RegisterFake(name string, start StartFakeFunc) { fakes[name] = start }

// StartFake starts the stand-in registered for name.
func StartFake(name string, cfg *core.Config, outboxDir string) (*Fake, error) {
	start := fakes[name]
	if start == nil {
		return nil, fmt.Errorf("%s has no in-memory fake in this build (built with the onboard_nofakes tag)", name)
	}
	return start(cfg, outboxDir)
}

// Setting is one environment setting a target reads.
type Setting struct {
	Name string
	// Secret settings come from ONBOARD_SECRETS's source and are masked
	// wherever they could be printed.
	Secret bool
	// Required settings must be present once a profile uses the target
	// (its Switch always is).
	Required bool
}

// Env is what a target is built from.
type Env struct {
	Config *core.Config
	// Get reads a setting, secret or not, as it is at start-up.
	Get func(string) string
	// Secret reads a secret now, through the cache, so a rotated value is
	// used without a redeploy.
	Secret   func(context.Context, string) (string, error)
	Redactor *logging.Redactor
	Store    state.Store
	Log      *slog.Logger
}

// Built is a target made from its settings.
type Built struct {
	// Targets are what the engine runs requests through: one per instance
	// of the tool (Periscope has one per site).
	Targets []core.Target
	// Warm readies the target at start-up (a login) so the first request
	// does not wait for it; nil when there is nothing to do.
	Warm func(context.Context) error
	// Tasks run the maintenance jobs named in Target.Tasks.
	Tasks map[string]func(context.Context) error
}

// Source is one way requests arrive that onboard.yaml configures, under
// sources.NAME (a sheet to poll).
type Source struct {
	Name string
	// Policy decodes and checks the source's key under sources; node is
	// nil when the key is absent.
	Policy func(node *yaml.Node, cfg *core.Config) (any, error)
	// Settings are every setting the source reads.
	Settings []Setting
	// Switches are the settings any of which makes the source real: with
	// none set, the sandbox serves a configured source from its fake.
	Switches []string
	// Task is the name of the job a deployment's schedule runs to read the
	// source; the schedule names one thing to read after a colon
	// ("sheets-poll:SPREADSHEET/TAB"). Empty: the source is pushed to
	// onboard and has no job.
	Task string
	// Schedules are the jobs a deployment of cfg schedules.
	Schedules func(cfg *core.Config) []Schedule
	// Run runs the job for what arg names (a Schedule's Arg); an arg cfg
	// does not list is an error wrapping ErrUnknownJob.
	Run func(ctx context.Context, env SourceEnv, arg string) error
}

// ErrUnknownJob is a scheduled job naming something the policy does not
// list (a sheet removed from onboard.yaml but still scheduled): no retry
// can help it.
var ErrUnknownJob = errors.New("the policy lists nothing of that name")

// SourceEnv is what a source's job runs with.
type SourceEnv struct {
	Env
	Engine *core.Engine
	// Connect opens the source's client (Google's Sheets API client) as
	// this build links it; nil when the build links none.
	Connect SourceClient
}

// SourceClient opens a source's client from its settings. It is given to
// onboard by the entry point (app.Options.SourceClients) rather than linked
// by the source's package, so a build that never reads the source (the
// webhook Lambda) never links the vendor's library.
type SourceClient func(ctx context.Context, env Env) (any, error)

// Schedule is one job a deployment runs on a timer.
type Schedule struct {
	// Task is the name a scheduled message carries: Source.Task, a colon,
	// and the argument.
	Task string
	// Every is the interval between runs: a whole number of minutes that
	// divides an hour, or of hours that divides a day, so that a cron line
	// (Cloud Scheduler) and a rate (EventBridge) say the same.
	Every time.Duration
}

// Cron is the schedule as a five-field cron line, in UTC.
func (s Schedule) Cron() string {
	if s.Every < time.Hour {
		return fmt.Sprintf("*/%d * * * *", int(s.Every/time.Minute))
	}
	if s.Every == 24*time.Hour {
		return "0 0 * * *"
	}
	return fmt.Sprintf("0 */%d * * *", int(s.Every/time.Hour))
}

// Rate is the schedule as an EventBridge rate expression.
func (s Schedule) Rate() string {
	n, unit := int(s.Every/time.Minute), "minute"
	if s.Every >= time.Hour {
		n, unit = int(s.Every/time.Hour), "hour"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("rate(%d %s)", n, unit)
}

// CheckEvery refuses an interval no cron line can say: Cron and Rate hold
// only for whole minutes dividing an hour or whole hours dividing a day.
func CheckEvery(every time.Duration) error {
	minutes, hours := every/time.Minute, every/time.Hour
	switch {
	case every%time.Minute == 0 && minutes >= 1 && minutes < 60 && 60%minutes == 0:
		return nil
	case every%time.Hour == 0 && hours >= 1 && hours <= 24 && 24%hours == 0:
		return nil
	}
	return fmt.Errorf("%s cannot be a schedule: use minutes dividing an hour (1m, 2m, 5m, 10m, 15m, 30m…) or hours dividing a day (1h, 2h, 3h, 6h, 12h, 24h)", every)
}

// Schema is what targets and mailers add to onboard.yaml.
func Schema(targets []Target, mailers []Mailer, sources []Source) core.ConfigSchema {
	schema := core.ConfigSchema{
		Profile: map[string]func(*yaml.Node, *core.Profile) (any, error){},
		Policy:  map[string]func(*yaml.Node, *core.Config) (any, error){},
		Mailers: map[string]func(core.EmailConfig) error{},
	}
	for _, t := range targets {
		schema.Profile[t.Name] = t.Profile
		if t.Policy != nil {
			schema.Policy[t.Name] = t.Policy
		}
		if t.SendsOwnWelcome {
			schema.OwnWelcome = append(schema.OwnWelcome, t.Name)
		}
	}
	for _, m := range mailers {
		schema.Mailers[m.Name] = m.Check
	}
	if len(sources) > 0 {
		schema.Policy[SourcesKey] = func(node *yaml.Node, cfg *core.Config) (any, error) { return decodeSources(node, cfg, sources) }
	}
	return schema
}

// SourcesKey is the top-level key of onboard.yaml configuring sources.
const SourcesKey = "sources"

// decodeSources decodes sources: each key a source's, by that source.
func decodeSources(node *yaml.Node, cfg *core.Config, sources []Source) (map[string]any, error) {
	given := map[string]*yaml.Node{}
	if node != nil {
		if node.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("(line %d): expected a mapping of sources, such as sheets: [...]", node.Line)
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			key := node.Content[i]
			if !slices.ContainsFunc(sources, func(s Source) bool { return s.Name == key.Value }) {
				return nil, fmt.Errorf("%s (line %d): unknown source", key.Value, key.Line)
			}
			given[key.Value] = node.Content[i+1]
		}
	}
	decoded := map[string]any{}
	for _, s := range sources {
		v, err := s.Policy(given[s.Name], cfg)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", s.Name, err)
		}
		decoded[s.Name] = v
	}
	return decoded, nil
}

// SourceSection is what source name decoded from cfg's sources.
func SourceSection(cfg *core.Config, name string) any {
	sections, _ := cfg.Section(SourcesKey).(map[string]any)
	return sections[name]
}

// Uses lists the profiles of cfg that use target name.
func Uses(cfg *core.Config, name string) []string {
	var profiles []string
	for _, p := range cfg.ProfileNames() {
		if cfg.Profiles[p].Section(name) != nil {
			profiles = append(profiles, p)
		}
	}
	return profiles
}

// Command is an admin command a target adds to the CLI.
type Command struct {
	Name, Summary string
	Run           func(ctx context.Context, args []string, cli CLI) int
}

// CLI is what onboard's CLI gives a target's command.
type CLI struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// ParseFlags parses as every onboard command does (flags before or after
	// the arguments); ok false means stop with code.
	ParseFlags func(fs *flag.FlagSet, args []string) (code int, ok bool)
	// Policy reads the deployment's onboard.yaml, found at PolicyPath.
	Policy     func() (*core.Config, error)
	PolicyPath string
	// OpenStore opens the deployment's state store (ONBOARD_STORE).
	OpenStore func(context.Context) (state.Store, error)
	// Open builds the target from the deployment's settings, with the
	// policy and the store; close releases them.
	Open func(context.Context) (cfg *core.Config, built *Built, close func(), err error)
}
