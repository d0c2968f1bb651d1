package aac_test

import (
	"context"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
)

func outcomes(reports []aac.ChainReport) map[string]string {
	m := map[string]string{}
	for _, r := range reports {
		m[r.Chain] = r.Outcome
	}
	return m
}

// A keep-alive starts a chain that is only seeded, leaves a recently
// rotated one alone, rotates an idle one even while its access token is
// fresh, and reports a named workspace without any token; it never shows a
// token.
func TestKeepAliveRotatesIdleChains(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	g := w.seedSecret(workspace, w.wsID)
	in := w.instance(t)
	named := []string{workspace, "Finance"}
	ctx := context.Background()

	reports, err := in.target.KeepAlive(ctx, named, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{`AAC workspace "Sales Analytics"`: aac.KeepAliveRotated, `AAC workspace "Finance"`: aac.KeepAliveNoToken}
	if got := outcomes(reports); !maps.Equal(got, want) {
		t.Fatalf("first run = %v, want %v (no account chain: it is neither seeded nor stored)", got, want)
	}
	if len(w.fake.Refreshes()) != 1 {
		t.Fatalf("%d refreshes, want 1", len(w.fake.Refreshes()))
	}

	reports, err = in.target.KeepAlive(ctx, named, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(reports)[`AAC workspace "Sales Analytics"`]; got != aac.KeepAliveRecent || len(w.fake.Refreshes()) != 1 {
		t.Fatalf("second run within the idle limit: %s with %d refreshes, want recent and no new refresh", got, len(w.fake.Refreshes()))
	}

	// Idle longer than the limit (zero here), from another instance that
	// never used the chain: the stored access token is still fresh, yet the
	// chain rotates, because its refresh token is what must stay alive.
	other := w.instance(t)
	reports, err = other.target.KeepAlive(ctx, named, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := reports[reportIndex(reports, workspace)]
	if r.Outcome != aac.KeepAliveRotated || r.Source != aac.SourceRefresh || time.Since(r.UpdatedAt) > time.Minute {
		t.Fatalf("forced run = %+v, want freshly rotated", r)
	}
	if n := len(w.fake.Refreshes()); n != 2 {
		t.Fatalf("%d refreshes after the forced run, want 2", n)
	}
	checkLinear(t, w.fake.Refreshes(), g.RefreshToken)
	if stored, _, _, _ := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace)); stored != w.fake.LiveRefreshToken(g.Chain) {
		t.Error("the stored refresh token is not the live one")
	}
	if _, err := in.provision("ada@example.com"); err != nil {
		t.Fatalf("the first instance after another rotated: %v", err)
	}
	for _, logs := range []string{in.logs.String(), other.logs.String()} {
		if strings.Contains(logs, g.RefreshToken) || strings.Contains(logs, w.fake.LiveRefreshToken(g.Chain)) {
			t.Error("a refresh token reached a log")
		}
	}
}

// A chain broken by a crash between refresh and store is found by the
// keep-alive, before any request needs it: CRITICAL with the fix, the
// chain reported failed, the stored head left for seed-token.
func TestKeepAliveFindsABrokenChain(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	short := func(c *aac.Config) { c.Lease = 200 * time.Millisecond }
	dying := w.instance(t, short)
	var crashed atomic.Bool
	aac.SetExchangeHooks(dying.client, nil, func() bool { return crashed.CompareAndSwap(false, true) })
	if _, err := dying.target.KeepAlive(context.Background(), []string{workspace}, 0); err != nil {
		t.Fatal(err)
	}
	_, _, before, _ := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace))

	next := w.instance(t, short)
	reports, err := next.target.KeepAlive(context.Background(), []string{workspace}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := reports[reportIndex(reports, workspace)]
	fix := "onboard aac seed-token --workspace 'Sales Analytics'"
	if r.Outcome != aac.KeepAliveFailed || r.Err == nil || !strings.Contains(r.Err.Error(), fix) {
		t.Fatalf("report = %+v, want failed naming %q", r, fix)
	}
	if logs := next.logs.String(); !strings.Contains(logs, `"severity":"CRITICAL"`) || !strings.Contains(logs, fix) {
		t.Errorf("no CRITICAL line naming the fix:\n%s", logs)
	}
	if _, _, after, _ := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace)); after != before {
		t.Error("the keep-alive changed the broken chain's stored head")
	}
}

// Status reads the store and the seeds only: no call to AAC.
func TestStatusCallsNothing(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	w.account = w.fake.NewAccountGrant().RefreshToken
	in := w.instance(t)
	reports, err := in.target.Status(context.Background(), []string{workspace})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 2 || reports[0].Workspace != workspace || !reports[0].Seeded || reports[0].Stored || reports[1].Workspace != "" || !reports[1].Seeded {
		t.Fatalf("status = %+v, want the seeded workspace, then the seeded account chain", reports)
	}
	if n := len(w.fake.Requests("")); n != 0 {
		t.Errorf("status made %d calls to AAC", n)
	}
}

func reportIndex(reports []aac.ChainReport, ws string) int {
	for i, r := range reports {
		if r.Workspace == ws {
			return i
		}
	}
	return -1
}
