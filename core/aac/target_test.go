package aac_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// provisionAll runs one Provision per email at once on one instance, as an
// event batch does, and returns results in order.
func provisionAll(in *instance, prof *core.Profile, emails ...string) ([]core.TargetResult, []error) {
	res, errs := make([]core.TargetResult, len(emails)), make([]error, len(emails))
	var wg sync.WaitGroup
	for i, e := range emails {
		wg.Go(func() { res[i], errs[i] = in.target.Provision(context.Background(), person(e), prof) })
	}
	wg.Wait()
	return res, errs
}

// The batch call and the token rotation run in goroutines of their own: a
// panic there fails the requests waiting for them (a retryable 500,
// internal error), not the process, and the next request goes through.
func TestPanicInATargetGoroutineFailsOnlyItsRequests(t *testing.T) {
	for name, pathSuffix := range map[string]string{
		"batch call":     "/people/batch",
		"token rotation": aactest.TokenPath,
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, aactest.Options{}, nil)
			w.seedSecret(workspace, w.wsID)
			var panicked atomic.Bool
			panicOnce := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, pathSuffix) && panicked.CompareAndSwap(false, true) {
					panic(name + " bug")
				}
				return http.DefaultTransport.RoundTrip(r)
			})
			logs := &logbuf.Buffer{}
			log := logging.New(logs, slog.LevelDebug, nil)
			// A rotation that panicked keeps its lease to the end, as one
			// that crashed would: a short one keeps the test short.
			c, err := aac.New(w.config(func(c *aac.Config) { c.Lease = time.Second }), w.store, log, panicOnce)
			if err != nil {
				t.Fatal(err)
			}
			in := &instance{client: c, target: aac.NewTarget(c, log), logs: logs}

			_, errs := provisionAll(in, profile(workspace), emailN(1), emailN(2))
			if !panicked.Load() {
				t.Fatal("nothing panicked")
			}
			for i, err := range errs {
				ce := asCoreError(t, err)
				if ce.Status != http.StatusInternalServerError || ce.Message != "internal error" || !ce.Retryable() ||
					ce.Err == nil || !strings.Contains(ce.Err.Error(), name+" bug") {
					t.Errorf("request %d: %d %q (cause %v), want a retryable 500 internal error caused by the panic", i, ce.Status, ce.Message, ce.Err)
				}
			}
			if res, err := in.provision(emailN(3)); err != nil || res.Status != core.StatusCreated {
				t.Fatalf("the next request: %+v, %v", res, err)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type inviteBody struct {
	Emails []string          `json:"emails"`
	Roles  []json.RawMessage `json:"roles"`
}

func (b inviteBody) String() string { return fmt.Sprintf("%v (%d roles)", b.Emails, len(b.Roles)) }

func invites(t *testing.T, w *world) []inviteBody {
	t.Helper()
	var out []inviteBody
	for _, r := range w.fake.Requests(aactest.OpInvite) {
		var b inviteBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Invites that arrive together go out as one batch call; each caller gets
// its own person's result; present members are skipped.
func TestConcurrentInvitesShareOneBatchCall(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	existing := w.fake.AddMember(w.wsID, "Person03@example.com", "Auto Insights Viewer")
	in := w.instance(t, func(c *aac.Config) { c.BatchWindow = 100 * time.Millisecond })

	var emails []string
	for i := range 8 {
		emails = append(emails, emailN(i))
	}
	res, errs := provisionAll(in, profile(workspace), emails...)

	calls := invites(t, w)
	if len(calls) != 1 {
		t.Fatalf("%d invite calls, want 1 for the whole batch", len(calls))
	}
	if len(calls[0].Emails) != 7 || slices.Contains(calls[0].Emails, emailN(3)) {
		t.Errorf("batch emails = %v, want the 7 who are not members", calls[0].Emails)
	}
	var role struct {
		PolicyID json.Number `json:"policyId"`
		Name     string      `json:"name"`
	}
	if len(calls[0].Roles) != 1 || json.Unmarshal(calls[0].Roles[0], &role) != nil || role.Name != "Auto Insights Creator" || role.PolicyID == "" {
		t.Errorf("batch roles = %s, want the Auto Insights Creator role object", calls[0].Roles)
	}
	members := w.emails(w.wsID)
	for i, e := range emails {
		if errs[i] != nil {
			t.Errorf("%s: %v", e, errs[i])
			continue
		}
		want, id := core.StatusCreated, strconv.FormatInt(members[e].PersonID, 10)
		if i == 3 {
			want, id = core.StatusUnchanged, strconv.FormatInt(existing, 10)
		}
		if res[i].Status != want || res[i].ID != id {
			t.Errorf("%s: %s id %s, want %s id %s", e, res[i].Status, res[i].ID, want, id)
		}
		if i != 3 && !slices.Contains(members[e].Roles, "Auto Insights Creator") {
			t.Errorf("%s was invited without the profile's role: %v", e, members[e].Roles)
		}
	}
}

// The people list is read while the batch waits for company, not after:
// the window costs a lone invite no round trip of its own. Here the batch
// waits an hour, and is only sent when a second invite fills it.
func TestPeopleListedWhileTheBatchIsOpen(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	in := w.instance(t, func(c *aac.Config) { c.BatchMax, c.BatchWindow, c.BatchMaxWait = 2, time.Hour, time.Hour })
	listed := make(chan struct{})
	var once sync.Once
	w.fake.OnRequest(aactest.OpPeople, func() { once.Do(func() { close(listed) }) })

	first := make(chan error, 1)
	go func() {
		_, err := in.provision("ada@example.com")
		first <- err
	}()
	select {
	case <-listed:
	case <-time.After(10 * time.Second):
		t.Fatal("the people list was not read while the batch was open")
	}
	if res, err := in.provision("bob@example.com"); err != nil || res.Status != core.StatusCreated {
		t.Fatalf("bob: %+v, %v", res, err)
	}
	if err := <-first; err != nil {
		t.Fatalf("ada: %v", err)
	}
	if n := len(w.fake.Requests(aactest.OpPeople)); n != 1 {
		t.Errorf("%d people lists, want one for the batch", n)
	}
	if calls := invites(t, w); len(calls) != 1 || len(calls[0].Emails) != 2 {
		t.Errorf("invite calls = %v, want ada and bob in one", calls)
	}
}

// A member of the workspace is left alone, whatever the case of the email.
func TestExistingPersonSkipped(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	id := w.fake.AddMember(w.wsID, "ADA@example.com", "Auto Insights Viewer")
	res, err := w.instance(t).provision("ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != core.StatusUnchanged || res.ID != strconv.FormatInt(id, 10) {
		t.Errorf("result %+v, want unchanged with the member's id", res)
	}
	if n := len(w.fake.Requests(aactest.OpInvite)); n != 0 {
		t.Errorf("%d invite calls for a member", n)
	}
}

// One address AAC refuses must not sink the others of its batch: they are
// invited one by one, and only that person gets the refusal.
func TestRefusedAddressDoesNotSinkTheBatch(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	w.fake.RefuseEmail("blocked@example.com", "this domain is blocked for invitations")
	in := w.instance(t, func(c *aac.Config) { c.BatchWindow = 100 * time.Millisecond })
	res, errs := provisionAll(in, profile(workspace), "a@example.com", "blocked@example.com", "b@example.com")
	for _, i := range []int{0, 2} {
		if errs[i] != nil || res[i].Status != core.StatusCreated {
			t.Errorf("person %d: %+v, %v; want created", i, res[i], errs[i])
		}
	}
	ce := asCoreError(t, errs[1])
	if ce.Retryable() || !strings.Contains(ce.Error(), "blocked for invitations") {
		t.Errorf("refused person: %q (retryable %v), want a permanent refusal with AAC's reason", ce.Error(), ce.Retryable())
	}
	if calls := invites(t, w); len(calls) != 4 || len(calls[0].Emails) != 3 {
		t.Errorf("invite calls = %v, want the batch then one per person", calls)
	}
}

// Another instance invites someone between this one's list and its batch
// call: AAC refuses the batch, the person is found on a second look, and
// is reported unchanged while the rest of the batch is invited.
func TestInvitedMeanwhileIsUnchanged(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	var once sync.Once
	w.fake.OnRequest(aactest.OpInvite, func() {
		once.Do(func() { w.fake.AddMember(w.wsID, "ada@example.com", "Auto Insights Creator") })
	})
	in := w.instance(t, func(c *aac.Config) { c.BatchWindow = 100 * time.Millisecond })
	res, errs := provisionAll(in, profile(workspace), "ada@example.com", "bob@example.com")
	if errs[0] != nil || res[0].Status != core.StatusUnchanged {
		t.Errorf("ada: %+v, %v; want unchanged", res[0], errs[0])
	}
	if errs[1] != nil || res[1].Status != core.StatusCreated {
		t.Errorf("bob: %+v, %v; want created", res[1], errs[1])
	}
	if calls := invites(t, w); len(calls) != 2 || len(calls[1].Emails) != 1 || calls[1].Emails[0] != "bob@example.com" {
		t.Errorf("invite calls = %v, want the refused batch, then bob alone", calls)
	}
}

// A role no member holds cannot be resolved (AAC hands out role objects
// only through the people list): a permanent answer naming what was seen.
func TestUnknownRoleIsRefused(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	_, err := w.instance(t).target.Provision(context.Background(), person("ada@example.com"), profile(workspace, "Wizard"))
	ce := asCoreError(t, err)
	if ce.Status != http.StatusBadGateway || !strings.Contains(ce.Error(), `"Wizard"`) || !strings.Contains(ce.Error(), "Auto Insights Viewer") {
		t.Errorf("answer %d %q, want a 502 naming the role and the roles seen", ce.Status, ce.Error())
	}
	if n := len(w.fake.Requests(aactest.OpInvite)); n != 0 {
		t.Errorf("%d invite calls", n)
	}
}

// A token seeded under the wrong workspace's name is caught before use.
func TestTokenOfAnotherWorkspaceIsRefused(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	other := w.fake.AddWorkspace("Marketing")
	w.seedSecret(workspace, other)
	_, err := w.instance(t).provision("ada@example.com")
	ce := asCoreError(t, err)
	if ce.Retryable() || !strings.Contains(ce.Error(), `belongs to workspace "Marketing"`) {
		t.Errorf("answer %q, want a permanent refusal naming the token's workspace", ce.Error())
	}
}

// A profile's missing workspace is created once with the account token,
// even by instances racing; invites to it wait (retryably) for an admin to
// seed its token, and then go through.
func TestWorkspaceCreation(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.account = w.fake.NewAccountGrant().RefreshToken
	const name = "New Team"
	instances := make([]*instance, 5)
	for i := range instances {
		instances[i] = w.instance(t)
	}
	errs := make([]error, len(instances))
	var wg sync.WaitGroup
	for i, in := range instances {
		wg.Go(func() {
			_, errs[i] = in.target.Provision(context.Background(), person(emailN(i)), profile(name))
		})
	}
	wg.Wait()
	ids := w.fake.WorkspaceIDs(name)
	if len(ids) != 1 {
		t.Fatalf("%d workspaces named %q, want 1", len(ids), name)
	}
	if n := len(w.fake.Requests(aactest.OpCreateWorkspace)); n != 1 {
		t.Errorf("%d create calls, want 1", n)
	}
	fix := "onboard aac seed-token --workspace 'New Team'"
	for i, err := range errs {
		ce := asCoreError(t, err)
		if !ce.Retryable() || ce.RetryAfter <= 0 || !strings.Contains(ce.Error(), fix) {
			t.Errorf("instance %d: %q (retryable %v), want a retryable answer naming %s", i, ce.Error(), ce.Retryable(), fix)
		}
	}
	if n := len(w.fake.Requests(aactest.OpInvite)); n != 0 {
		t.Errorf("%d invite calls before the workspace has a token", n)
	}

	g := w.fake.NewWorkspaceGrant(ids[0])
	if _, err := aac.Seed(context.Background(), w.store, aac.WorkspaceChainKey(w.fake.URL, name), aac.Credentials{RefreshToken: g.RefreshToken}, "admin"); err != nil {
		t.Fatal(err)
	}
	res, err := instances[0].target.Provision(context.Background(), person(emailN(0)), profile(name))
	if err != nil || res.Status != core.StatusCreated {
		t.Fatalf("after seeding: %+v, %v", res, err)
	}
	if _, ok := w.emails(ids[0])[emailN(0)]; !ok {
		t.Error("not invited to the new workspace")
	}
}

// Deprovision removes a member; someone absent, or a workspace that does
// not exist, is already deprovisioned.
func TestRemoval(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	w.account = w.fake.NewAccountGrant().RefreshToken
	id := w.fake.AddMember(w.wsID, "ada@example.com", "Auto Insights Viewer")
	in := w.instance(t)
	ctx := context.Background()

	res, err := in.target.Deprovision(ctx, person("ada@example.com"), profile(workspace))
	if err != nil || res.Status != core.StatusDeleted || res.ID != strconv.FormatInt(id, 10) {
		t.Fatalf("deprovision: %+v, %v; want deleted", res, err)
	}
	if _, ok := w.emails(w.wsID)["ada@example.com"]; ok {
		t.Error("still a member")
	}
	res, err = in.target.Deprovision(ctx, person("ada@example.com"), profile(workspace))
	if err != nil || res.Status != core.StatusUnchanged {
		t.Errorf("second deprovision: %+v, %v; want unchanged", res, err)
	}
	res, err = in.target.Deprovision(ctx, person("ada@example.com"), profile("Nowhere"))
	if err != nil || res.Status != core.StatusUnchanged {
		t.Errorf("deprovision from a missing workspace: %+v, %v; want unchanged", res, err)
	}
	if n := len(w.fake.Requests(aactest.OpRemove)); n != 1 {
		t.Errorf("%d removal calls, want 1", n)
	}
	if n := len(w.fake.Requests(aactest.OpCreateWorkspace)); n != 0 {
		t.Error("deprovisioning created a workspace")
	}
}

// Deprovision without a profile (a leaver who moved away from AAC, whose
// record does not say which profile invited them) removes the person from
// the workspaces the record says onboard invited them to, and no other.
func TestRemovalByTheRecordAlone(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	marketing := w.fake.AddWorkspace("Marketing", "Auto Insights Viewer")
	w.seedSecret("Marketing", marketing)
	w.fake.AddMember(w.wsID, "ada@example.com", "Auto Insights Viewer")
	w.fake.AddMember(marketing, "ada@example.com", "Auto Insights Viewer")
	in := w.instance(t)
	ada := core.Person{Email: "ada@example.com", Given: map[string]core.TargetRecord{
		aac.TargetName: {Granted: []string{"workspace:" + workspace}},
	}}

	res, err := in.target.Deprovision(context.Background(), ada, nil)
	if err != nil || res.Status != core.StatusDeleted {
		t.Fatalf("deprovision: %+v, %v; want deleted", res, err)
	}
	if _, ok := w.emails(w.wsID)["ada@example.com"]; ok {
		t.Error("still a member of the workspace onboard invited her to")
	}
	if _, ok := w.emails(marketing)["ada@example.com"]; !ok {
		t.Error("removed from a workspace onboard never invited her to")
	}
}

// 429s are honoured: a short x-retry-after (or Retry-After) is waited out
// and the call repeated; a long one goes back to the caller with its wait.
func TestRateLimitHonoured(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fault       aactest.Fault
		calls       int
		retryAfter  time.Duration
		wantCreated bool
	}{
		{"short x-retry-after", aactest.Fault{RetryAfter: "1"}, 2, 0, true},
		{"long x-retry-after", aactest.Fault{RetryAfter: "120"}, 1, 120 * time.Second, false},
		{"long Retry-After", aactest.Fault{StdRetryAfter: "90"}, 1, 90 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, aactest.Options{}, nil)
			w.seedSecret(workspace, w.wsID)
			f := tc.fault
			f.Method, f.Path, f.Status, f.Times = http.MethodPost, "/v4/workspaces/{id}/people/batch", http.StatusTooManyRequests, 1
			w.fake.AddFault(f)
			res, err := w.instance(t).provision("ada@example.com")
			if n := len(w.fake.Requests(aactest.OpInvite)); n != tc.calls {
				t.Errorf("%d invite calls, want %d", n, tc.calls)
			}
			if tc.wantCreated {
				if err != nil || res.Status != core.StatusCreated {
					t.Errorf("%+v, %v; want created after waiting", res, err)
				}
				return
			}
			ce := asCoreError(t, err)
			if ce.Status != http.StatusTooManyRequests || ce.RetryAfter != tc.retryAfter {
				t.Errorf("answer %d retry after %v, want 429 after %v", ce.Status, ce.RetryAfter, tc.retryAfter)
			}
		})
	}
}

// A dry run reads for real and writes nothing: its invites are planned per
// person, never sent, and never share a batch call with a real invite
// arriving at the same moment; removals and workspace creation are planned.
func TestDryRun(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	w.account = w.fake.NewAccountGrant().RefreshToken
	w.fake.AddMember(w.wsID, "bob@example.com", "Auto Insights Viewer")
	w.fake.AddMember(w.wsID, "dave@example.com", "Auto Insights Viewer")
	in := w.instance(t, func(c *aac.Config) { c.BatchWindow = 100 * time.Millisecond })

	plans := map[string]*core.Plan{"ada@example.com": {}, "bob@example.com": {}}
	results := map[string]core.TargetResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range []string{"ada@example.com", "bob@example.com", "carol@example.com"} {
		wg.Go(func() {
			ctx := context.Background()
			if p := plans[e]; p != nil {
				ctx = core.WithPlan(ctx, p)
			}
			res, err := in.target.Provision(ctx, person(e), profile(workspace))
			if err != nil {
				t.Errorf("%s: %v", e, err)
			}
			mu.Lock()
			results[e] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	calls := invites(t, w)
	if len(calls) != 1 || len(calls[0].Emails) != 1 || calls[0].Emails[0] != "carol@example.com" {
		t.Fatalf("invite calls = %v, want only the real one, for carol", calls)
	}
	if _, ok := w.emails(w.wsID)["ada@example.com"]; ok {
		t.Error("the dry run invited ada")
	}
	if got := plans["ada@example.com"].Writes(); len(got) != 1 || got[0].Operation != "POST /v4/workspaces/{id}/people/batch" ||
		!strings.Contains(got[0].Detail, "ada@example.com") || !strings.Contains(got[0].Detail, "Auto Insights Creator") {
		t.Errorf("ada's plan = %+v, want the invite with her email and role", got)
	}
	if got := plans["bob@example.com"].Writes(); len(got) != 0 || results["bob@example.com"].Status != core.StatusUnchanged {
		t.Errorf("bob (a member): plan %+v, result %+v; want nothing planned, unchanged", got, results["bob@example.com"])
	}
	if results["ada@example.com"].Status != core.StatusCreated {
		t.Errorf("ada: %+v, want created (as planned)", results["ada@example.com"])
	}

	plan := &core.Plan{}
	res, err := in.target.Deprovision(core.WithPlan(context.Background(), plan), person("dave@example.com"), profile(workspace))
	if err != nil || res.Status != core.StatusDeleted || len(plan.Writes()) != 1 || plan.Writes()[0].Operation != "DELETE /v4/workspaces/{id}/people/{personId}" {
		t.Errorf("dry removal: %+v, %v, plan %+v", res, err, plan.Writes())
	}
	if _, ok := w.emails(w.wsID)["dave@example.com"]; !ok {
		t.Error("the dry run removed dave")
	}

	plan = &core.Plan{}
	_, err = in.target.Provision(core.WithPlan(context.Background(), plan), person("erin@example.com"), profile("Planned Team"))
	if ce := asCoreError(t, err); !ce.Retryable() || !strings.Contains(ce.Error(), "seed-token") {
		t.Errorf("dry run into a missing workspace: %v, want what a real run answers (waiting for a seed)", err)
	}
	if got := plan.Writes(); len(got) != 1 || got[0].Operation != "POST /v4/workspaces" || !strings.Contains(got[0].Detail, "Planned Team") {
		t.Errorf("plan = %+v, want the workspace creation", got)
	}
	if ids := w.fake.WorkspaceIDs("Planned Team"); len(ids) != 0 {
		t.Error("the dry run created the workspace")
	}
	// A real run afterwards still finds the workspace missing and creates it.
	if _, err := in.target.Provision(context.Background(), person("erin@example.com"), profile("Planned Team")); err == nil {
		t.Fatal("want the wait-for-seed answer")
	}
	if ids := w.fake.WorkspaceIDs("Planned Team"); len(ids) != 1 {
		t.Errorf("real run after a dry one: %d workspaces, want 1", len(ids))
	}
}

// A batch never carries more than BatchMax people, however many join at
// the same moment: the one that fills it closes it.
func TestBatchNeverExceedsItsSize(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	in := w.instance(t, func(c *aac.Config) { c.BatchMax, c.BatchWindow, c.BatchMaxWait = 5, 200*time.Millisecond, time.Second })
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, err := in.provision(emailN(i)); err != nil {
				t.Errorf("%s: %v", emailN(i), err)
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range w.fake.InviteSizes() {
		if n > 5 {
			t.Errorf("a batch call carried %d people, more than BatchMax 5", n)
		}
		total += n
	}
	if total != 40 {
		t.Errorf("%d people invited, want 40", total)
	}
}
