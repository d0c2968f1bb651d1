package app

import (
	"net/http"
	"slices"
	"testing"

	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
)

// TestHalfProvisionedTargetKeepsItsGrantsOnRecord: Bob's Looker user is
// an admin's. onboard's roles PUT gives him Viewer, then Looker refuses
// the group membership. The request fails and its answer does not count
// Looker as done, yet the record keeps the user and the Viewer onboard
// gave: the resend finds Viewer already there and would not count it as
// onboard's, so without it the move to a profile without Looker would
// leave Bob a Viewer.
func TestHalfProvisionedTargetKeepsItsGrantsOnRecord(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	lk := w.looker()
	bob := lk.AddUser(lookertest.SeedUser{Email: "bob@example.com", FirstName: "Bob", LoggedIn: true})
	lk.InjectFault(lookertest.Fault{Method: http.MethodPost, Path: "/groups/{group_id}/users", Status: http.StatusUnprocessableEntity, Times: 1})

	code, out := w.send(t, `{"email":"bob@example.com","name":"Bob Hope","profile":"looker-viewer","idempotency_key":"first"}`)
	if code != http.StatusBadGateway {
		t.Fatalf("first delivery: %d %+v, want 502", code, out)
	}
	if _, ok := out.Targets["looker"]; ok {
		t.Errorf("the answer counts the failed Looker part as done: %+v", out.Targets)
	}
	assertIDs(t, "Bob's roles after the failure", lk.UserRoleIDs(bob), lk.RoleID("Viewer"))
	rec := w.record(t, "bob@example.com")
	if got := rec.Targets["looker"]; got.ID != bob {
		t.Errorf("recorded Looker user %q, want Bob's %q", got.ID, bob)
	}
	assertIDs(t, "Looker grants recorded after the failure", lookerGrants(rec), "role:"+lk.RoleID("Viewer"))

	w.done(t, `{"email":"bob@example.com","name":"Bob Hope","profile":"looker-viewer","idempotency_key":"again"}`)
	assertIDs(t, "Looker grants recorded after the resend", lookerGrants(w.record(t, "bob@example.com")),
		"role:"+lk.RoleID("Viewer"), "group:"+lk.GroupID("Analysts"))

	w.done(t, `{"email":"bob@example.com","name":"Bob Hope","profile":"insights"}`)
	assertIDs(t, "Bob's roles after the move", lk.UserRoleIDs(bob))
	assertIDs(t, "Bob's groups after the move", lk.UserGroupIDs(bob))
}

// TestUnansweredGrantStaysOnRecord: Looker adds Carl to the group and the
// answer is lost, every time. The request fails, and the membership,
// which may well have been made (it was), is on record for a move or a
// leaver to take back: one on record that never arrived costs a no-op.
func TestUnansweredGrantStaysOnRecord(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	lk := w.looker()
	lk.AddUser(lookertest.SeedUser{Email: "carl@example.com", FirstName: "Carl", LoggedIn: true})
	lk.InjectFault(lookertest.Fault{Method: http.MethodPost, Path: "/groups/{group_id}/users", Status: http.StatusInternalServerError, AfterActing: true})

	if code, out := w.send(t, `{"email":"carl@example.com","name":"Carl Sagan","profile":"looker-viewer"}`); code < 500 {
		t.Fatalf("%d %+v, want a failure", code, out)
	}
	assertIDs(t, "Looker grants recorded", lookerGrants(w.record(t, "carl@example.com")),
		"role:"+lk.RoleID("Viewer"), "group:"+lk.GroupID("Analysts"))
}

// TestUnansweredInviteStaysOnRecord: AAC makes Dee a member of Sales
// Analytics and the answer is lost. The request fails; its resend finds
// her a member already and adds nothing to the record, so only the failed
// invite's record of the workspace lets her move to marketing take the
// membership back.
func TestUnansweredInviteStaysOnRecord(t *testing.T) {
	w := newFakedWorld(t, moversConfig)
	w.aac().AddFault(aactest.Fault{Method: http.MethodPost, Path: "/v4/workspaces/{id}/people/batch", Status: http.StatusInternalServerError, AfterActing: true, Times: 1})

	if code, out := w.send(t, `{"email":"dee@example.com","name":"Dee Dee","profile":"insights","idempotency_key":"first"}`); code < 500 {
		t.Fatalf("first delivery: %d %+v, want a failure", code, out)
	}
	if !w.memberOf(t, "Sales Analytics", "dee@example.com") {
		t.Fatal("the fault did not act: the test tests nothing")
	}
	w.done(t, `{"email":"dee@example.com","name":"Dee Dee","profile":"insights","idempotency_key":"again"}`)
	if got := w.record(t, "dee@example.com").Targets["aac"].Granted; !slices.Contains(got, "workspace:Sales Analytics") {
		t.Errorf("AAC grants on record %v, want the workspace the lost invite made", got)
	}
	w.done(t, `{"email":"dee@example.com","name":"Dee Dee","profile":"marketing"}`)
	if w.memberOf(t, "Sales Analytics", "dee@example.com") {
		t.Error("the move to marketing left Dee in the workspace the lost invite made")
	}
}
