package app

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/periscope"
	"github.com/onboard-dev/onboard/core/targets"
)

// benchProfiles give AAC and Periscope a profile each and one with all
// three targets, whose Looker section is testdata/onboard.yaml's analyst
// (roles, groups and an attribute ride beside the setup link), so that
// its Looker chain is BenchmarkProvisionNewUser's.
const benchProfiles = `
allowed_email_domains: [example.com]
email: {provider: sendgrid, from: "Data Team <data@example.com>", subject: Welcome, text: "Hi {{.FirstName}}: {{.SetupURL}}"}
periscope: {invited_by_email: data@example.com}
profiles:
  aac:
    aac: &aac {workspace: Sales Analytics, roles: [Auto Insights Creator]}
  periscope:
    periscope: &periscope {sites: [acme, beta], groups: [Analysts]}
  three-target:
    looker: {kind: regular, roles: [Viewer], groups: [Analysts], attributes: {department: analytics}}
    aac: *aac
    periscope: *periscope
`

// BenchmarkProvisionNewUserPerTarget is BenchmarkProvisionNewUser for the
// other targets and for a profile of all three. AAC's chain is the batch
// window, then the people list and the batch invite; Periscope's the
// lookup and the create, both sites at once. The targets run side by
// side, so the three-target profile should take Looker's time (the
// slowest chain), not the sum of the three.
func BenchmarkProvisionNewUserPerTarget(b *testing.B) {
	for _, bench := range []struct {
		profile   string
		wantEmail bool // only Looker's setup link makes onboard send a welcome
	}{{"aac", false}, {"periscope", false}, {"three-target", true}} {
		b.Run(bench.profile, func(b *testing.B) {
			measureNewUsers(b, allTargetsInstance(b), bench.profile, bench.wantEmail)
		})
	}
}

// allTargetsInstance is a new onboard instance holding every target of
// benchProfiles, each against its own fake and every outside call delayed
// by injectedLatency, with no state store (the benchmark counts the
// targets' round trips, not the store's).
func allTargetsInstance(b *testing.B) *core.Engine {
	b.Helper()
	cfg, err := targets.ParseConfig([]byte(benchProfiles))
	if err != nil {
		b.Fatal(err)
	}
	transport := delayed{injectedLatency}
	quiet := logging.New(io.Discard, slog.LevelError, nil)
	engine := newWorldFor(b, cfg, lookertest.Options{}).instance(b, nil, transport)

	const workspace = "Sales Analytics"
	fakeAAC := aactest.NewTestServer(b, aactest.Options{})
	seed := fakeAAC.NewWorkspaceGrant(fakeAAC.AddWorkspace(workspace, "Auto Insights Creator")).RefreshToken
	// AAC keeps its token chains in a store even when the engine has none.
	client, err := aac.New(aac.Config{BaseURL: fakeAAC.URL, AccountID: fakeAAC.AccountID(), TokenURL: fakeAAC.TokenURL(), ClientID: fakeAAC.ClientID(),
		Seeds: func(context.Context) (map[string]string, error) { return map[string]string{workspace: seed}, nil },
	}, openFileStore(b, b.TempDir()), quiet, transport)
	if err != nil {
		b.Fatal(err)
	}
	engine.Targets = append(engine.Targets, aac.NewTarget(client, quiet))

	fakePeriscope := newPeriscopeFake(b)
	ps, err := periscope.New(periscope.Config{BaseURL: fakePeriscope.URL,
		Keys: func(_ context.Context, site string) (string, error) { return periscopeKeys[site], nil }}, transport)
	if err != nil {
		b.Fatal(err)
	}
	engine.Targets = append(engine.Targets, periscope.NewTargets(ps, cfg, quiet)...)
	return engine
}
