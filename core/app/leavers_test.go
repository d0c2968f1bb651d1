package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core"
)

// leaversConfig is moversConfig with a Looker profile that deletes on
// deprovision, so a test can tell which profile's rule a leaver met.
var leaversConfig = strings.Replace(moversConfig,
	"looker: {roles: [Developer], groups: [Analysts, Developers]}",
	"looker: {roles: [Developer], groups: [Analysts, Developers], deprovision: delete}", 1)

// TestLeaverAfterMoveIsDeprovisionedInTheTargetsTheyMovedAwayFrom: Ada
// moves from a Looker profile to AAC and Periscope, Ed the other way; the
// move takes back onboard's grants and leaves each an enabled, grant-less
// user in the target they left. When they leave, those users go too, by
// the rule of the profile that provisioned them there (disable), as well
// as the ones of the profile they have now.
func TestLeaverAfterMoveIsDeprovisionedInTheTargetsTheyMovedAwayFrom(t *testing.T) {
	w := newFakedWorld(t, leaversConfig)
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"looker-viewer"}`)
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"insights"}`)
	w.done(t, `{"email":"ed@example.com","name":"Ed Wood","profile":"insights"}`)
	w.done(t, `{"email":"ed@example.com","name":"Ed Wood","profile":"looker-viewer"}`)
	if u := w.lookerUser(t, "ada@example.com"); u.IsDisabled {
		t.Fatal("the move disabled the Looker user")
	}
	w.periscopeGroups(t, "ed@example.com") // still on the site after the move

	ada := w.done(t, `{"action":"deprovision","email":"ada@example.com"}`)
	if l := ada.Targets["looker"]; l.Status != core.StatusDisabled {
		t.Errorf("ada in Looker: %+v, want disabled (all: %+v)", l, ada.Targets)
	}
	if u := w.lookerUser(t, "ada@example.com"); !u.IsDisabled {
		t.Error("a leaver keeps an enabled Looker user from the profile they moved away from")
	}
	if w.memberOf(t, "Sales Analytics", "ada@example.com") {
		t.Error("ada is still in the AAC workspace of the profile she left with")
	}
	if _, ok := w.periscope().User("acme", "ada@example.com"); ok {
		t.Error("ada is still on the Periscope site of the profile she left with")
	}

	ed := w.done(t, `{"action":"deprovision","email":"ed@example.com"}`)
	if p := ed.Targets["periscope:acme"]; p.Status != core.StatusDeleted {
		t.Errorf("ed on Periscope: %+v, want deleted (all: %+v)", p, ed.Targets)
	}
	if _, ok := w.periscope().User("acme", "ed@example.com"); ok {
		t.Error("a leaver keeps the Periscope user of the profile he moved away from")
	}
	if u := w.lookerUser(t, "ed@example.com"); !u.IsDisabled {
		t.Error("ed's Looker user, of the profile he left with, is still enabled")
	}
}

// TestLeaverAfterMoveMeetsTheOldProfilesRule: the profile Ada moved away
// from deletes its Looker users on deprovision, so leaving deletes hers,
// though the profile she leaves with configures no Looker at all.
func TestLeaverAfterMoveMeetsTheOldProfilesRule(t *testing.T) {
	w := newFakedWorld(t, leaversConfig)
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"looker-developer"}`)
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"insights"}`)
	if got := w.record(t, "ada@example.com").Targets["looker"].Profile; got != "looker-developer" {
		t.Errorf("the record says Looker was provisioned by %q, want looker-developer", got)
	}
	left := w.done(t, `{"action":"deprovision","email":"ada@example.com"}`)
	if l := left.Targets["looker"]; l.Status != core.StatusDeleted {
		t.Errorf("looker: %+v, want deleted", l)
	}
	if _, ok := w.looker().UserByEmail("ada@example.com"); ok {
		t.Error("the Looker user survived a leaver whose old profile deletes")
	}
}

// TestLeaverAfterMoveWithARecordFromBeforeTargetsNotedTheirProfile: a
// record written before TargetRecord.Profile existed does not say which
// profile provisioned the target the person moved away from. The leaver
// is still deprovisioned there, by the safest rule: the Looker user is
// disabled, not deleted, though the old profile would have deleted it.
func TestLeaverAfterMoveWithARecordFromBeforeTargetsNotedTheirProfile(t *testing.T) {
	w := newFakedWorld(t, leaversConfig)
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"looker-developer"}`)
	w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace","profile":"insights"}`)
	w.forgetTargetProfiles(t, "ada@example.com")

	left := w.done(t, `{"action":"deprovision","email":"ada@example.com"}`)
	if l := left.Targets["looker"]; l.Status != core.StatusDisabled {
		t.Errorf("looker: %+v, want disabled", l)
	}
	if u := w.lookerUser(t, "ada@example.com"); !u.IsDisabled {
		t.Error("the Looker user is still enabled")
	}
}

// forgetTargetProfiles rewrites the person record as onboard wrote it
// before targets noted the profile that provisioned them.
func (w *fakedWorld) forgetTargetProfiles(t *testing.T, email string) {
	t.Helper()
	ctx := context.Background()
	v, err := w.app.Store.Get(ctx, "person/"+email)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(v.Data, &rec); err != nil {
		t.Fatal(err)
	}
	for _, tr := range rec["targets"].(map[string]any) {
		delete(tr.(map[string]any), "profile")
	}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.Store.Put(ctx, "person/"+email, data, v.Version, 0); err != nil {
		t.Fatal(err)
	}
}

// TestLeaverWhoseDomainLeftTheAllowList: taking a domain off
// allowed_email_domains stops new people from it, but the people onboard
// already gave access can still leave; someone onboard never provisioned
// from that domain is refused as before.
func TestLeaverWhoseDomainLeftTheAllowList(t *testing.T) {
	w := newFakedWorld(t, "allowed_email_domains: [example.com, contractor.example]\n"+moversConfig)
	w.done(t, `{"email":"cy@contractor.example","name":"Cy Twombly"}`)
	w.withPolicy(t, "allowed_email_domains: [example.com]\n"+moversConfig)

	if code, out := w.send(t, `{"email":"new@contractor.example","name":"New Joiner"}`); code != http.StatusForbidden {
		t.Errorf("a joiner from a domain off the list: %d %+v, want 403", code, out)
	}
	left := w.done(t, `{"action":"deprovision","email":"cy@contractor.example"}`)
	if l := left.Targets["looker"]; l.Status != core.StatusDisabled {
		t.Errorf("looker: %+v, want disabled", l)
	}
	if u := w.lookerUser(t, "cy@contractor.example"); !u.IsDisabled {
		t.Error("a leaver whose domain left the allow list keeps an enabled Looker user")
	}
	code, out := w.send(t, `{"action":"deprovision","email":"stranger@contractor.example"}`)
	if code != http.StatusForbidden || !strings.Contains(w.logs.String(), "email domain is not allowed") {
		t.Errorf("a deprovision of a stranger off the list: %d %+v, want 403 naming the domain", code, out)
	}
}
