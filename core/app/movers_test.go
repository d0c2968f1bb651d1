package app

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/periscope/periscopetest"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/core/state"
)

// moversConfig has profiles to move people between: two Looker-only ones,
// and two of AAC and Periscope with different workspaces and groups.
const moversConfig = `default_profile: looker-viewer
email: {provider: sendgrid, from: "Data Team <data@example.com>", subject: Welcome, text: "Hi {{.FirstName}}: {{.SetupURL}}"}
periscope: {invited_by_email: data@example.com}
profiles:
  looker-viewer:
    looker: {roles: [Viewer], groups: [Analysts]}
  looker-developer:
    looker: {roles: [Developer], groups: [Analysts, Developers]}
  insights:
    aac: {workspace: Sales Analytics, roles: [Auto Insights Creator]}
    periscope: {sites: [acme], groups: [Analysts]}
  marketing:
    aac: {workspace: Marketing, roles: [Auto Insights Viewer]}
    periscope: {sites: [acme], groups: [Marketing]}
`

func (w *fakedWorld) looker() *lookertest.Server {
	return w.box.Fakes["looker"].Server.(*lookertest.Server)
}
func (w *fakedWorld) aac() *aactest.Server { return w.box.Fakes["aac"].Server.(*aactest.Server) }
func (w *fakedWorld) periscope() *periscopetest.Server {
	return w.box.Fakes["periscope"].Server.(*periscopetest.Server)
}

// lookerUser is the fake's user with this email; the test fails without one.
func (w *fakedWorld) lookerUser(t *testing.T, email string) lookertest.User {
	t.Helper()
	u, ok := w.looker().UserByEmail(email)
	if !ok {
		t.Fatalf("no Looker user %s", email)
	}
	return u
}

func (w *fakedWorld) record(t *testing.T, email string) core.PersonRecord {
	t.Helper()
	rec, _, err := core.ReadPerson(context.Background(), w.app.Store, email)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// memberOf says whether email is in the fake AAC's workspace of that name.
func (w *fakedWorld) memberOf(t *testing.T, workspace, email string) bool {
	t.Helper()
	ids := w.aac().WorkspaceIDs(workspace)
	if len(ids) != 1 {
		t.Fatalf("workspaces named %s: %v", workspace, ids)
	}
	return slices.ContainsFunc(w.aac().Members(ids[0]), func(m aactest.Member) bool { return strings.EqualFold(m.Email, email) })
}

func (w *fakedWorld) periscopeGroups(t *testing.T, email string) []string {
	t.Helper()
	u, ok := w.periscope().User("acme", email)
	if !ok {
		t.Fatalf("no Periscope user %s on acme", email)
	}
	groups := slices.Clone(u.Groups)
	slices.Sort(groups)
	return groups
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func assertIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(sorted(got...), sorted(want...)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// lookerGrants is what the person record says onboard granted in Looker
// that a move can take back.
func lookerGrants(rec core.PersonRecord) []string {
	return slices.DeleteFunc(slices.Clone(rec.Targets["looker"].Granted), func(g string) bool {
		return !strings.HasPrefix(g, "role:") && !strings.HasPrefix(g, "group:")
	})
}

// TestMoverLosesExactlyOnboardsLookerGrants is the mover: someone
// given a Looker-only profile, then a role by an admin in Looker, is moved
// to an AAC+Periscope profile. They lose exactly the roles and groups
// onboard gave them, keep the admin's role and their (enabled) Looker
// user, and are invited to AAC and Periscope; every revocation is audited.
func TestMoverLosesExactlyOnboardsLookerGrants(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	lk := w.looker()
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"looker-viewer"}`)
	user := w.lookerUser(t, "ada@example.com")
	explorer := lk.AddRole("Explorer")
	lk.AddUserRole(user.ID, explorer)

	moved := w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"insights"}`)
	if l := moved.Targets["looker"]; l.Status != core.StatusUpdated || strings.Join(l.Changes, ",") != "groups,roles" || l.ID != user.ID {
		t.Errorf("looker: %+v, want updated with groups and roles", l)
	}
	if moved.Targets["aac"].Status != core.StatusCreated || moved.Targets["periscope:acme"].Status != core.StatusCreated {
		t.Errorf("answer %+v, want AAC and Periscope created", moved.Targets)
	}
	assertIDs(t, "Looker roles", lk.UserRoleIDs(user.ID), explorer)
	assertIDs(t, "Looker groups", lk.UserGroupIDs(user.ID))
	if u := w.lookerUser(t, "ada@example.com"); u.IsDisabled {
		t.Error("the move disabled the Looker user")
	}
	if !w.memberOf(t, "Sales Analytics", "ada@example.com") {
		t.Error("not invited to the AAC workspace")
	}
	assertIDs(t, "Periscope groups", w.periscopeGroups(t, "ada@example.com"), "Analysts")
	if n := len(w.box.Fakes["sendgrid"].Server.(*sendgridtest.Server).Messages()); n != 1 {
		t.Errorf("%d welcome emails, want the first provision's only", n)
	}

	rec := w.record(t, "ada@example.com")
	if rec.Profile != "insights" || rec.MoveUnfinished || len(lookerGrants(rec)) != 0 {
		t.Errorf("record: profile %q, move unfinished %t, Looker grants %v", rec.Profile, rec.MoveUnfinished, lookerGrants(rec))
	}
	if got := rec.Targets["aac"].Granted; !slices.Equal(got, []string{"workspace:Sales Analytics"}) {
		t.Errorf("AAC grants recorded: %v", got)
	}
	recs, err := w.app.Store.Audit(context.Background(), state.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]int{}
	for _, r := range recs {
		if r.Outcome == "ok" {
			audited[r.Target+" "+r.Operation]++
		}
	}
	// The first provision's PUT and the move's; the move's group removal.
	if audited["looker PUT /users/{user_id}/roles"] != 2 || audited["looker DELETE /groups/{group_id}/users/{user_id}"] != 1 {
		t.Errorf("audit: %v", audited)
	}

	// Moving again to the same profile is no move: nothing is written.
	before := len(lk.Requests())
	again := w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"insights","idempotency_key":"again"}`)
	if again.Status != core.StatusUnchanged || len(again.Targets) != 2 {
		t.Errorf("the same profile again: %+v", again)
	}
	if n := len(lk.Requests()) - before; n != 0 {
		t.Errorf("%d Looker calls for someone no longer in a Looker profile", n)
	}
}

// TestMoverBetweenLookerProfilesTakesBackOnlyOnboardsRoles: Viewer to
// Developer. Ada's Viewer came from onboard and goes; Bob had Viewer (and a
// group) from an admin before onboard saw him, and keeps them. A group
// both profiles grant stays.
func TestMoverBetweenLookerProfilesTakesBackOnlyOnboardsRoles(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	lk := w.looker()
	viewer, developer := lk.RoleID("Viewer"), lk.RoleID("Developer")
	analysts, developers := lk.GroupID("Analysts"), lk.GroupID("Developers")
	finance := lk.AddGroup("Finance")
	bob := lk.AddUser(lookertest.SeedUser{Email: "bob@example.com", FirstName: "Bob", LoggedIn: true,
		RoleIDs: []string{viewer}, GroupIDs: []string{finance}})

	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"looker-viewer"}`)
	w.done(t, `{"email":"bob@example.com","name":"Bob Hope","profile":"looker-viewer"}`)
	ada := w.lookerUser(t, "ada@example.com").ID

	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		moved := w.done(t, `{"email":"`+email+`","name":"Someone Else","profile":"looker-developer"}`)
		if l := moved.Targets["looker"]; l.Status != core.StatusUpdated || len(moved.Targets) != 1 {
			t.Errorf("%s: %+v", email, moved.Targets)
		}
	}
	assertIDs(t, "ada's roles", lk.UserRoleIDs(ada), developer)
	assertIDs(t, "ada's groups", lk.UserGroupIDs(ada), analysts, developers)
	assertIDs(t, "bob's roles", lk.UserRoleIDs(bob), viewer, developer)
	assertIDs(t, "bob's groups", lk.UserGroupIDs(bob), finance, analysts, developers)
	assertIDs(t, "ada's recorded grants", lookerGrants(w.record(t, "ada@example.com")),
		"role:"+developer, "group:"+analysts, "group:"+developers)
	assertIDs(t, "bob's recorded grants", lookerGrants(w.record(t, "bob@example.com")),
		"role:"+developer, "group:"+analysts, "group:"+developers)
}

// TestMoverChangesAACWorkspaceAndPeriscopeGroups: from one AAC workspace
// and Periscope group to others. onboard's membership of the old workspace
// and its Periscope group go; a workspace membership and a Periscope group
// an admin gave stay.
func TestMoverChangesAACWorkspaceAndPeriscopeGroups(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	ps := w.periscope()
	ps.AddGroup("acme", "Finance")
	ps.AddUser("acme", periscopetest.User{Email: "carol@example.com", FirstName: "Carol", Groups: []string{"Finance"}})
	// Dave was in the old workspace before onboard: not onboard's to take.
	w.aac().AddMember(w.aac().WorkspaceIDs("Sales Analytics")[0], "dave@example.com", "Auto Insights Creator")

	for _, email := range []string{"carol@example.com", "dave@example.com"} {
		w.done(t, `{"email":"`+email+`","name":"Someone Else","profile":"insights"}`)
	}
	assertIDs(t, "carol's Periscope groups before", w.periscopeGroups(t, "carol@example.com"), "Analysts", "Finance")

	carol := w.done(t, `{"email":"carol@example.com","name":"Carol Danvers","profile":"marketing"}`)
	if a := carol.Targets["aac"]; a.Status != core.StatusCreated || strings.Join(a.Changes, ",") != "invited,workspace" {
		t.Errorf("carol in AAC: %+v, want invited to one workspace and out of the other", a)
	}
	if p := carol.Targets["periscope:acme"]; p.Status != core.StatusUpdated || strings.Join(p.Changes, ",") != "groups" {
		t.Errorf("carol in Periscope: %+v", p)
	}
	if w.memberOf(t, "Sales Analytics", "carol@example.com") || !w.memberOf(t, "Marketing", "carol@example.com") {
		t.Error("carol should have moved from Sales Analytics to Marketing")
	}
	assertIDs(t, "carol's Periscope groups", w.periscopeGroups(t, "carol@example.com"), "Finance", "Marketing")
	rec := w.record(t, "carol@example.com")
	assertIDs(t, "carol's AAC grants", rec.Targets["aac"].Granted, "workspace:Marketing")
	assertIDs(t, "carol's Periscope grants", rec.Targets["periscope:acme"].Granted, "group:Marketing")

	dave := w.done(t, `{"email":"dave@example.com","name":"Dave Bowman","profile":"marketing"}`)
	if !w.memberOf(t, "Sales Analytics", "dave@example.com") || !w.memberOf(t, "Marketing", "dave@example.com") {
		t.Errorf("dave: %+v; he keeps the workspace an admin gave him and joins the new one", dave.Targets)
	}
	assertIDs(t, "dave's Periscope groups", w.periscopeGroups(t, "dave@example.com"), "Marketing")
}

// TestMoverRetriesAFailedRevocation: Looker takes a user out of a group
// but its answer is lost (503). The request fails retryably with every
// Looker grant still recorded and the move unfinished, though AAC and
// Periscope are done; its retry, under the same key, finds the group gone
// (no second removal), takes the role if the failure cut that short, and
// drops both from the record.
func TestMoverRetriesAFailedRevocation(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	lk := w.looker()
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"looker-viewer"}`)
	user := w.lookerUser(t, "ada@example.com")
	lk.AddUserRole(user.ID, lk.RoleID("Admin"))
	lk.InjectFault(lookertest.Fault{Method: http.MethodDelete, Path: "/groups/{group_id}/users/{user_id}",
		Status: http.StatusServiceUnavailable, RetryAfter: "120", AfterActing: true, Times: 1})

	const move = `{"email":"ada@example.com","name":"Ada Lovelace","profile":"insights","idempotency_key":"move-1"}`
	if code, out := w.send(t, move); code != http.StatusServiceUnavailable {
		t.Fatalf("first delivery: %d %+v, want 503", code, out)
	}
	rec := w.record(t, "ada@example.com")
	assertIDs(t, "Looker grants recorded after the failure", lookerGrants(rec),
		"role:"+lk.RoleID("Viewer"), "group:"+lk.GroupID("Analysts"))
	if rec.Profile != "insights" || !rec.MoveUnfinished {
		t.Errorf("record after the failure: profile %q, move unfinished %t", rec.Profile, rec.MoveUnfinished)
	}

	w.done(t, move)
	assertIDs(t, "Looker roles", lk.UserRoleIDs(user.ID), lk.RoleID("Admin"))
	assertIDs(t, "Looker groups", lk.UserGroupIDs(user.ID))
	if n := lk.Count(http.MethodDelete, "/groups/{group_id}/users/{user_id}"); n != 1 {
		t.Errorf("%d group removals, want 1: the retry found it done", n)
	}
	rec = w.record(t, "ada@example.com")
	if len(lookerGrants(rec)) != 0 || rec.MoveUnfinished {
		t.Errorf("record after the retry: Looker grants %v, move unfinished %t", lookerGrants(rec), rec.MoveUnfinished)
	}
	if !w.memberOf(t, "Sales Analytics", "ada@example.com") || len(w.aac().Requests(aactest.OpInvite)) != 1 {
		t.Errorf("AAC invites: %d, want one, from the first delivery", len(w.aac().Requests(aactest.OpInvite)))
	}
}

// TestMoverPlanShowsRevocationsAndMakesNone: a dry run of a move lists the
// Looker writes that take back onboard's grants, among the others, and
// changes nothing in Looker or in the person record.
func TestMoverPlanShowsRevocationsAndMakesNone(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	lk := w.looker()
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"looker-viewer"}`)
	user := w.lookerUser(t, "ada@example.com")
	before, writesBefore := w.record(t, "ada@example.com"), len(lk.Requests())

	req, err := core.Request{Email: "ada@example.com", Name: "Ada Lovelace", Profile: "insights"}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	plan := &core.Plan{}
	planned, err := w.app.Engine.Handle(core.WithPlan(context.Background(), plan), req, core.Meta{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if planned.Targets["looker"].Status != core.StatusUpdated {
		t.Errorf("planned answer: %+v", planned.Targets)
	}
	ops := map[string]string{}
	for _, pw := range plan.Writes() {
		ops[pw.Target+" "+pw.Operation] = pw.Detail
	}
	if d, ok := ops["looker PUT /users/{user_id}/roles"]; !ok || !strings.HasSuffix(d, " []") {
		t.Errorf("plan's roles write %q, want the roles without Viewer (none): %v", d, plan.Writes())
	}
	for _, want := range []string{"looker DELETE /groups/{group_id}/users/{user_id}", "aac POST /v4/workspaces/{id}/people/batch", "periscope:acme POST /api/v1/users"} {
		if _, ok := ops[want]; !ok {
			t.Errorf("plan lacks %q: %v", want, plan.Writes())
		}
	}
	for _, r := range lk.Requests()[writesBefore:] {
		if r.Method != http.MethodGet && r.Path != "/login" {
			t.Errorf("the plan wrote %s %s", r.Method, r.Path)
		}
	}
	assertIDs(t, "Looker roles", lk.UserRoleIDs(user.ID), lk.RoleID("Viewer"))
	after := w.record(t, "ada@example.com")
	if after.Profile != before.Profile || !slices.Equal(lookerGrants(after), lookerGrants(before)) {
		t.Errorf("the plan changed the record: %+v, was %+v", after, before)
	}
}

// TestMoverOffAACAndPeriscope: to a Looker-only profile. The AAC
// membership onboard made goes, and on the Periscope site the person stays,
// out of onboard's groups only: Carol keeps the group an admin gave her,
// Ed is left in none.
func TestMoverOffAACAndPeriscope(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	ps := w.periscope()
	ps.AddGroup("acme", "Finance")
	ps.AddUser("acme", periscopetest.User{Email: "carol@example.com", FirstName: "Carol", Groups: []string{"Finance"}})
	for _, email := range []string{"carol@example.com", "ed@example.com"} {
		w.done(t, `{"email":"`+email+`","name":"Someone Else","profile":"insights"}`)
		moved := w.done(t, `{"email":"`+email+`","name":"Someone Else","profile":"looker-viewer"}`)
		a, p := moved.Targets["aac"], moved.Targets["periscope:acme"]
		if moved.Targets["looker"].Status != core.StatusCreated || a.Status != core.StatusUpdated || strings.Join(a.Changes, ",") != "workspace" ||
			p.Status != core.StatusUpdated || strings.Join(p.Changes, ",") != "groups" {
			t.Errorf("%s: %+v", email, moved.Targets)
		}
		if w.memberOf(t, "Sales Analytics", email) {
			t.Errorf("%s is still in the AAC workspace onboard invited them to", email)
		}
		rec := w.record(t, email)
		if len(rec.Targets["aac"].Granted)+len(rec.Targets["periscope:acme"].Granted) != 0 {
			t.Errorf("%s: grants still recorded: %+v", email, rec.Targets)
		}
	}
	assertIDs(t, "carol's Periscope groups", w.periscopeGroups(t, "carol@example.com"), "Finance")
	assertIDs(t, "ed's Periscope groups", w.periscopeGroups(t, "ed@example.com"))
}
