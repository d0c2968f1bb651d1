package app

import (
	"net/http"
	"testing"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
)

// The attack of issue 11, finding 2, against the Looker fake: a person
// provisioned as analyst (deprovision: disable) sent a deprovision naming
// another (deprovision: delete) is disabled, not deleted.
func TestDeprovisionNamingAnotherProfileDisables(t *testing.T) {
	h := newHarness(t, map[string]string{"ONBOARD_CONFIG": writeConfig(t, `default_profile: analyst
profiles:
  analyst:
    looker: {roles: [Viewer], groups: [Analysts], deprovision: disable}
  builder:
    looker: {roles: [Developer], groups: [Builders], deprovision: delete}
`)})
	if a := h.post(t, `{"email":"ada@example.com","name":"Ada Lovelace"}`); a.status != http.StatusOK {
		t.Fatalf("provision: %d %s", a.status, a.raw)
	}
	a := h.post(t, `{"action":"deprovision","email":"ada@example.com","profile":"builder"}`)
	if a.status != http.StatusOK || a.body["status"] != "disabled" {
		t.Fatalf("deprovision: %d %s", a.status, a.raw)
	}
	u, ok := h.looker.UserByEmail("ada@example.com")
	if !ok || !u.IsDisabled {
		t.Errorf("user after deprovision: %+v (found: %v), want it kept and disabled", u, ok)
	}
	for _, r := range h.looker.Requests() {
		if r.Method == http.MethodDelete {
			t.Errorf("Looker was sent %s %s", r.Method, r.Path)
		}
	}
}

// A deprovision by request reaches only people onboard provisioned: an
// admin made by hand, with the same email as the request, is untouched.
func TestDeprovisionOfSomeoneOnboardNeverProvisionedIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.looker.AddUser(lookertest.SeedUser{FirstName: "Root", LastName: "Admin", Email: "root@example.com"})
	before := h.writes()
	a := h.post(t, `{"action":"deprovision","email":"root@example.com"}`)
	if a.status != http.StatusForbidden || a.body["field"] != "email" {
		t.Errorf("deprovision of a stranger: %d %s", a.status, a.raw)
	}
	if n := h.writes() - before; n != 0 {
		t.Errorf("the refused deprovision made %d writes", n)
	}
}

// Onboard's own API user is never deprovisioned, even by an operator who
// adopts it.
func TestTheAPIUserIsNeverDeprovisioned(t *testing.T) {
	h := newHarness(t, nil)
	h.looker.AddUser(lookertest.SeedUser{FirstName: "API", LastName: "Onboard", Email: "api-bot@example.com", APIUser: true})
	req, verr := core.Request{Email: "api-bot@example.com", Action: core.ActionDeprovision}.Normalize()
	if verr != nil {
		t.Fatal(verr)
	}
	_, herr := h.app.Engine.Handle(t.Context(), req, core.Meta{Trigger: "cli", Operator: true, Adopt: true, Force: true})
	if herr == nil || core.AsError(herr).Status != http.StatusBadGateway || core.AsError(herr).Target != "looker" {
		t.Fatalf("deprovisioning the API user: %v", herr)
	}
	if u, _ := h.looker.UserByEmail("api-bot@example.com"); u.IsDisabled {
		t.Error("the API user was disabled")
	}
}

// A form can make onboard adopt an admin's existing Looker user (a
// provision for their email), but never deprovision them next.
func TestALookerAdminIsNeverDeprovisioned(t *testing.T) {
	h := newHarness(t, nil)
	adminRole := h.looker.RoleID("Admin")
	if adminRole == "" {
		t.Fatal("the fake has no Admin role")
	}
	h.looker.AddUser(lookertest.SeedUser{FirstName: "Grace", LastName: "Admin", Email: "grace@example.com", RoleIDs: []string{adminRole}})
	if a := h.post(t, `{"email":"grace@example.com","name":"Grace Admin"}`); a.status != http.StatusOK {
		t.Fatalf("provision: %d %s", a.status, a.raw)
	}
	a := h.post(t, `{"action":"deprovision","email":"grace@example.com"}`)
	if a.status != http.StatusBadGateway {
		t.Errorf("deprovision of an admin: %d %s", a.status, a.raw)
	}
	if u, _ := h.looker.UserByEmail("grace@example.com"); u.IsDisabled {
		t.Error("the admin was disabled")
	}
}

// At most one welcome: SendGrid accepting an email and the answer being
// lost (a 500 after delivery) leaves the welcome "sending", so the
// redelivery does not send a second; a refusal (503 before acting) leaves
// it due, so the redelivery sends the one.
func TestWelcomeWithALostAnswerIsNotSentTwice(t *testing.T) {
	for name, tc := range map[string]struct {
		inject func(h *harness)
		emails int
	}{
		"accepted, answer lost": {func(h *harness) { h.sendgrid.InjectFaultAfterDelivery(http.StatusInternalServerError, 1) }, 1},
		"refused":               {func(h *harness) { h.sendgrid.InjectFault(http.StatusServiceUnavailable, "", "", 1) }, 1},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			tc.inject(h)
			body := `{"email":"ada@example.com","name":"Ada Lovelace","idempotency_key":"form-1"}`
			first := h.post(t, body)
			if first.status != http.StatusServiceUnavailable {
				t.Fatalf("first delivery: %d %s", first.status, first.raw)
			}
			if again := h.post(t, body); again.status != http.StatusOK {
				t.Fatalf("redelivery: %d %s", again.status, again.raw)
			}
			if n := len(h.sendgrid.Messages()); n != tc.emails {
				t.Errorf("%d welcome emails, want %d", n, tc.emails)
			}
		})
	}
}
