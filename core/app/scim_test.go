package app

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/periscope/periscopetest"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
)

const scimToken = "scim-token-for-tests"

// scimWorld is an app whose profiles are chosen by IdP groups, over the
// sandbox's fakes of all three targets, reached through the HTTP handler
// as an IdP reaches the function.
type scimWorld struct {
	*fakedWorld
	t         *testing.T
	looker    *lookertest.Server
	aac       *aactest.Server
	periscope *periscopetest.Server
	sendgrid  *sendgridtest.Server
}

func newSCIMWorld(t *testing.T) *scimWorld {
	t.Helper()
	w := newFakedWorld(t, `default_profile: viewers
allowed_email_domains: [example.com]
email: {provider: sendgrid, from: "Data Team <data@example.com>", subject: Welcome, text: "Hi {{.FirstName}}: {{.SetupURL}}"}
periscope: {invited_by_email: data@example.com}
profiles:
  analysts:
    scim_groups: [Data Team]
    aac: {workspace: Sales Analytics, roles: [Auto Insights Creator]}
    periscope: {sites: [acme], groups: [Analysts]}
  viewers:
    scim_groups: [Looker Viewers]
    attributes_allowed: [{name: department, values: [Engineering, Sales]}]
    looker: {roles: [Viewer], groups: [Analysts], deprovision: disable}
sources:
  scim:
    attributes:
      urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department: department
      title: job_title
`)
	return &scimWorld{fakedWorld: w, t: t,
		looker:    w.box.Fakes["looker"].Server.(*lookertest.Server),
		aac:       w.box.Fakes["aac"].Server.(*aactest.Server),
		periscope: w.box.Fakes["periscope"].Server.(*periscopetest.Server),
		sendgrid:  w.box.Fakes["sendgrid"].Server.(*sendgridtest.Server),
	}
}

// call sends one SCIM request as an IdP does and returns the status and body.
func (w *scimWorld) call(method, path, body string, want int) map[string]any {
	w.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	rec := httptest.NewRecorder()
	w.app.Handler.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code != want {
		w.t.Fatalf("%s %s: %d %s, want %d\n%s", method, path, rec.Code, rec.Body, want, w.logs)
	}
	return out
}

func (w *scimWorld) lookerUser(email string) lookertest.User {
	w.t.Helper()
	u, ok := w.looker.UserByEmail(email)
	if !ok {
		w.t.Fatalf("no Looker user %s", email)
	}
	return u
}

// Okta's documented sequence: look the user up by userName, create them,
// push a group with them in it, deactivate them. The group's profile gives
// a Looker user with its role; a retried create makes nothing twice; the
// deactivation disables them, as the profile says.
func TestOktaSequenceThroughTheHTTPFunction(t *testing.T) {
	w := newSCIMWorld(t)
	if got := w.call("GET", `/scim/v2/Users?filter=userName%20eq%20%22ada%40example.com%22&startIndex=1&count=100`, "", 200); got["totalResults"] != 0.0 {
		t.Fatalf("lookup before create: %v", got)
	}
	create := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"ada@example.com","name":{"givenName":"Ada","familyName":"Lovelace"},
		"emails":[{"primary":true,"value":"ada@example.com","type":"work"}],"displayName":"Ada Lovelace","locale":"en-US","externalId":"00u1abcd","groups":[],"password":"okta-sends-one","active":true,
		"title":"Countess","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Engineering"}}`
	id := w.call("POST", "/scim/v2/Users", create, 201)["id"].(string)
	w.call("POST", "/scim/v2/Users", create, 201) // Okta's retry after a timeout
	u := w.lookerUser("ada@example.com")
	if len(u.RoleIDs) != 1 || u.IsDisabled {
		t.Fatalf("Looker user after create: %+v", u)
	}
	// The mapped enterprise attribute reaches Looker; title maps to a key
	// the profile does not admit, so it does not.
	if values := w.looker.UserAttributeValues(u.ID); values["department"] != "Engineering" || values["job_title"] != "" {
		t.Errorf("user attributes %v, want department from the enterprise extension and no job_title", values)
	}
	gid := w.call("POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Looker Viewers","members":[{"value":"`+id+`","display":"ada@example.com"}]}`, 201)["id"].(string)
	w.call("PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"`+gid+`","displayName":"Looker Viewers (renamed)"}}]}`, 200)
	w.call("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`, 200)
	if u := w.lookerUser("ada@example.com"); !u.IsDisabled {
		t.Errorf("a deactivated user is still enabled in Looker: %+v", u)
	}
	if n := len(w.looker.Users()); n != 1 {
		t.Errorf("%d Looker users, want Ada alone", n)
	}
	if n := len(w.sendgrid.Messages()); n != 1 {
		t.Errorf("%d welcome emails, want 1", n)
	}
	if strings.Contains(w.logs.String(), scimToken) || strings.Contains(w.logs.String(), "okta-sends-one") {
		t.Error("the SCIM token or a password reached the log")
	}
}

// Entra's documented sequence: create with its attribute shapes, a group
// whose members are added and removed by PATCH with its dialect, then
// "active" replaced by the string "False". Membership of Data Team gives
// the AAC and Periscope profile; the deactivation removes both.
func TestEntraSequenceThroughTheHTTPFunction(t *testing.T) {
	w := newSCIMWorld(t)
	w.call("GET", `/scim/v2/Users?filter=userName+eq+%22grace%40example.com%22`, "", 200)
	id := w.call("POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId":"8c1b6b7e-1f35-4a6e-9c2e-2b6f0d1d0a11","userName":"grace@example.com","active":true,"displayName":"Grace Hopper",
		"emails":[{"primary":true,"type":"work","value":"grace@example.com"}],"meta":{"resourceType":"User"},
		"name":{"formatted":"Grace Hopper","familyName":"Hopper","givenName":"Grace"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Engineering"}}`, 201)["id"].(string)
	gid := w.call("POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"externalId":"5d9b","displayName":"Data Team","members":[]}`, 201)["id"].(string)
	w.call("PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"`+id+`"}]}]}`, 200)
	ws := w.aac.WorkspaceIDs("Sales Analytics")
	member := func() bool {
		return len(ws) == 1 && slices.ContainsFunc(w.aac.Members(ws[0]), func(m aactest.Member) bool { return m.Email == "grace@example.com" })
	}
	if !member() {
		t.Fatalf("not invited to the AAC workspace after joining Data Team\n%s", w.logs)
	}
	if u, ok := w.periscope.User("acme", "grace@example.com"); !ok || !slices.Contains(u.Groups, "Analysts") {
		t.Fatalf("Periscope user %+v %v", u, ok)
	}
	// A mover: before joining Data Team she had the default profile's
	// Looker role and group, which onboard made and now takes back.
	if u := w.lookerUser("grace@example.com"); len(u.RoleIDs) != 0 || len(u.GroupIDs) != 0 || u.IsDisabled {
		t.Errorf("Looker user after the move to Data Team: roles %v groups %v disabled %v", u.RoleIDs, u.GroupIDs, u.IsDisabled)
	}
	w.call("PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`, 200)
	if member() {
		t.Error("a deactivated user is still in the AAC workspace")
	}
	if _, ok := w.periscope.User("acme", "grace@example.com"); ok {
		t.Error("a deactivated user is still on the Periscope site")
	}
	w.call("DELETE", "/scim/v2/Users/"+id, "", 204)
}

// An email change in the IdP (a rename, a new domain) moves the person to
// a new identity in every target: the accounts made under the previous
// email are deprovisioned as the profile given says (Looker disabled, AAC
// membership and the Periscope user removed), the new ones made once,
// however often the IdP sends the change.
func TestEmailChangeThroughTheHTTPFunction(t *testing.T) {
	w := newSCIMWorld(t)
	user := func(email string) string {
		return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + email + `","name":{"givenName":"Ada","familyName":"Lovelace"},
			"emails":[{"primary":true,"value":"` + email + `","type":"work"}],"active":true}`
	}
	rename := func(email string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"userName":"` + email +
			`","emails":[{"primary":true,"value":"` + email + `","type":"work"}]}}]}`
	}
	ada := w.call("POST", "/scim/v2/Users", user("ada@example.com"), 201)["id"].(string)
	grace := w.call("POST", "/scim/v2/Users", user("grace@example.com"), 201)["id"].(string)
	w.call("POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Data Team","members":[{"value":"`+grace+`"}]}`, 201)
	welcomes := len(w.sendgrid.Messages())
	for range 2 {
		w.call("PATCH", "/scim/v2/Users/"+ada, rename("ada.king@example.com"), 200)
		w.call("PATCH", "/scim/v2/Users/"+grace, rename("grace.hopper@example.com"), 200)
	}
	if old := w.lookerUser("ada@example.com"); !old.IsDisabled {
		t.Errorf("the Looker user of the previous email is still enabled: %+v", old)
	}
	if renamed := w.lookerUser("ada.king@example.com"); renamed.IsDisabled || len(renamed.RoleIDs) != 1 {
		t.Errorf("the Looker user of the new email: %+v", renamed)
	}
	// Grace's Looker user, from before she joined Data Team, stays as
	// the move to it left it: onboard deprovisions by the profile given.
	if n := len(w.looker.Users()); n != 3 {
		t.Errorf("%d Looker users, want Ada's two and Grace's first", n)
	}
	ws := w.aac.WorkspaceIDs("Sales Analytics")
	var members []string
	for _, m := range w.aac.Members(ws[0]) {
		if strings.HasSuffix(m.Email, "@example.com") { // not the workspace's creator
			members = append(members, m.Email)
		}
	}
	if !slices.Equal(members, []string{"grace.hopper@example.com"}) {
		t.Errorf("AAC workspace members %v, want the new email alone", members)
	}
	if _, ok := w.periscope.User("acme", "grace@example.com"); ok {
		t.Error("the Periscope user of the previous email is still on the site")
	}
	if _, ok := w.periscope.User("acme", "grace.hopper@example.com"); !ok {
		t.Error("no Periscope user for the new email")
	}
	if n := len(w.sendgrid.Messages()) - welcomes; n != 1 {
		t.Errorf("%d welcome emails for the new identities, want 1 (Ada's Looker account; AAC and Periscope invite by themselves)", n)
	}
}

// A SCIM leaver who moved: Looker Viewers gave Ada a Looker user, joining
// Data Team moved her to AAC and Periscope (her Looker user stays, without
// onboard's role and group), and the IdP's DELETE takes every one away,
// the Looker user included, disabled as the viewers profile says.
func TestSCIMLeaverAfterAMoveLosesTheTargetSheMovedAwayFrom(t *testing.T) {
	w := newSCIMWorld(t)
	id := w.call("POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com",
		"name":{"givenName":"Ada","familyName":"Lovelace"},"active":true}`, 201)["id"].(string)
	w.call("POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Data Team","members":[{"value":"`+id+`"}]}`, 201)
	if u := w.lookerUser("ada@example.com"); u.IsDisabled || len(u.RoleIDs) != 0 {
		t.Fatalf("Looker user after the move: %+v, want enabled without onboard's role", u)
	}
	w.call("DELETE", "/scim/v2/Users/"+id, "", 204)
	if u := w.lookerUser("ada@example.com"); !u.IsDisabled {
		t.Error("a deleted SCIM user keeps an enabled Looker user from the profile she moved away from")
	}
	if _, ok := w.periscope.User("acme", "ada@example.com"); ok {
		t.Error("a deleted SCIM user is still on the Periscope site")
	}
}
