package looker

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

// TargetName is how results and errors name Looker.
const TargetName = "looker"

// coreCreateMessage explains why a new user cannot be made on Looker (Google Cloud core).
const coreCreateMessage = "this is Looker (Google Cloud core), which has no email logins: " +
	"its users are created by their first sign-in through the identity provider. " +
	"Ask the person to sign in once, then send this request again to grant the profile"

// Target provisions people into one Looker instance.
type Target struct {
	client  *Client
	welcome Welcome
	log     *slog.Logger

	roles, groups, attributes *catalog
	// warmLists are the catalogs Warm reads: those the policy's profiles use.
	warmLists []*catalog
}

// Welcome is who tells a new user how to sign in.
type Welcome int

const (
	// WelcomeNone makes no setup link: someone else tells new users.
	WelcomeNone Welcome = iota
	// WelcomeByOnboard fetches a setup link for onboard's own welcome email.
	WelcomeByOnboard
	// WelcomeByLooker has Looker send its own setup email (email.provider: looker).
	WelcomeByLooker
)

// welcomeOf reads email.provider: this target's name means Looker sends its
// own email; a mailer means onboard sends one with a setup link.
func welcomeOf(email core.EmailConfig) Welcome {
	switch {
	case email.Provider == TargetName:
		return WelcomeByLooker
	case email.ByMailer():
		return WelcomeByOnboard
	}
	return WelcomeNone
}

// NewTarget returns the Looker target. welcome decides whether a new
// user's setup link is fetched for onboard's email, sent by Looker, or not
// made at all.
func NewTarget(c *Client, welcome Welcome, log *slog.Logger) *Target {
	if log == nil {
		log = slog.Default()
	}
	t := &Target{client: c, welcome: welcome, log: log}
	t.roles, t.groups, t.attributes = newCatalogs(c)
	return t
}

// Name implements core.Target.
func (t *Target) Name() string { return TargetName }

// Handles implements core.Target.
func (t *Target) Handles(p *core.Profile) bool { return ProfileOf(p) != nil }

// Warm logs in, then reads the lists the policy's profiles resolve their
// names in, so that the first request of an instance finds a token and
// its names known, or joins the reads still under way.
func (t *Target) Warm(ctx context.Context) error {
	if err := t.client.Login(ctx); err != nil {
		return err
	}
	reads := make([]func(context.Context) error, len(t.warmLists))
	for i, k := range t.warmLists {
		reads[i] = func(ctx context.Context) error { _, err := k.reload(ctx); return err }
	}
	return parallel(ctx, reads...)
}

// warmListsOf picks the catalogs some Looker profile of cfg resolves names
// in; a list no profile needs is never read.
func (t *Target) warmListsOf(cfg *core.Config) []*catalog {
	var roles, groups, attributes bool
	for _, p := range cfg.Profiles {
		if lp := ProfileOf(p); lp != nil {
			roles = roles || len(lp.Roles) > 0
			groups = groups || len(lp.Groups) > 0
			attributes = attributes || len(lp.Attributes) > 0 || len(p.AttributesAllowed) > 0
		}
	}
	var lists []*catalog
	if roles {
		lists = append(lists, t.roles)
	}
	if groups {
		lists = append(lists, t.groups)
	}
	if attributes {
		lists = append(lists, t.attributes)
	}
	return lists
}

// grants is a profile resolved to Looker ids for one person.
type grants struct {
	roles      []ID
	groups     []ID
	attributes []attributeValue
	// dropRoles and dropGroups are what a mover loses (see takeBack).
	dropRoles, dropGroups []ID
}

// The person record names what onboard granted in Looker as "role:<id>"
// and "group:<id>".
const (
	roleGrant  = "role:"
	groupGrant = "group:"
)

// takeBack sets, from the grants onboard recorded (a mover's), the roles
// and groups g does not grant, to be taken away. Attribute values and a
// re-enable are not grants another profile can lack: they stay.
func (g *grants) takeBack(given []string) {
	for _, grant := range given {
		if id, ok := strings.CutPrefix(grant, roleGrant); ok && !slices.Contains(g.roles, ID(id)) {
			g.dropRoles = append(g.dropRoles, ID(id))
		}
		if id, ok := strings.CutPrefix(grant, groupGrant); ok && !slices.Contains(g.groups, ID(id)) {
			g.dropGroups = append(g.dropGroups, ID(id))
		}
	}
}

// named turns ids into the person record's names of grants.
func named(prefix string, ids []ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = prefix + string(id)
	}
	return out
}

type attributeValue struct {
	id          ID
	name, value string
}

// resolve turns the profile's names into ids; the three lists are fetched
// concurrently the first time and cached after.
func (t *Target) resolve(ctx context.Context, lp *Profile, p core.Person) (grants, error) {
	values := map[string]string{}
	for k, v := range lp.Attributes {
		values[k] = v
	}
	for k, v := range p.Attributes {
		values[k] = v
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	slices.Sort(names)

	var g grants
	var roles, groups, attrs []entry
	err := parallel(ctx,
		func(ctx context.Context) (err error) { roles, err = t.roles.resolve(ctx, lp.Roles); return },
		func(ctx context.Context) (err error) { groups, err = t.groups.resolve(ctx, lp.Groups); return },
		func(ctx context.Context) (err error) { attrs, err = t.attributes.resolve(ctx, names); return },
	)
	if err != nil {
		return g, err
	}
	for _, r := range roles {
		g.roles = append(g.roles, r.id)
	}
	for _, gr := range groups {
		g.groups = append(g.groups, gr.id)
	}
	for i, a := range attrs {
		if a.system {
			return g, &missingError{kind: "writable user attribute (it is a system attribute)", ref: names[i]}
		}
		g.attributes = append(g.attributes, attributeValue{id: a.id, name: a.name, value: values[names[i]]})
	}
	return g, nil
}

// Provision implements core.Target.
func (t *Target) Provision(ctx context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	return t.provision(ctx, p, prof, nil)
}

// Move implements core.Mover: the roles and groups onboard gave for the
// old profile leave in the same writes that bring the user to the new one
// (one PUT of the roles). With no Looker in the new profile they leave the
// user onboard recorded, which is otherwise kept as it is, enabled.
func (t *Target) Move(ctx context.Context, p core.Person, prof *core.Profile, given core.TargetRecord) (core.TargetResult, error) {
	if !t.Handles(prof) {
		res, err := t.revoke(ctx, given)
		return res, classify(err)
	}
	return t.provision(ctx, p, prof, given.Granted)
}

// provision brings the person to the profile, taking away given's roles
// and groups that it does not grant.
func (t *Target) provision(ctx context.Context, p core.Person, prof *core.Profile, given []string) (core.TargetResult, error) {
	lp := ProfileOf(prof)
	if lp.Kind == KindEmbed {
		res, err := t.provisionEmbed(ctx, p, lp, given)
		return res, classify(err)
	}
	var (
		g      grants
		user   *User
		onCore bool
	)
	// The lookup and the (usually cached) name resolution are independent.
	err := parallel(ctx,
		func(ctx context.Context) (err error) { g, err = t.resolve(ctx, lp, p); return },
		func(ctx context.Context) (err error) { user, onCore, err = t.findByEmail(ctx, p.Email); return },
	)
	if err != nil {
		return core.TargetResult{}, classify(err)
	}
	g.takeBack(given)
	if user != nil {
		// Made by one of our requests that never finished (it crashed or
		// failed after creating): still new to the person, and owed a welcome.
		how, mark := existingUser, user.UIState[markKey]
		if mark != "" && slices.Contains(core.JournalFrom(ctx).Unfinished(), mark) {
			how = unfinishedUser
			core.JournalFrom(ctx).Resolve(mark)
		}
		res, err := t.bringToProfile(ctx, user, g, how)
		return res, classify(err)
	}
	if onCore {
		return core.TargetResult{}, core.Refused(TargetName, coreCreateMessage, nil)
	}
	if pending, err := t.pendingUser(ctx, p); err != nil || pending != nil {
		if err != nil {
			return core.TargetResult{}, classify(err)
		}
		res, err := t.finishCreate(ctx, pending, p, g, false)
		return res, classify(err)
	}
	res, err := t.create(ctx, p, g)
	return res, classify(err)
}

// markKey = <mark> goes into a new user's ui_state in the POST that creates
// it, the mark being the creating request's (core.Journal.Mark), noted in
// the person's record before any target acted. So whatever becomes of the
// answer (a 5xx after Looker acted, a reset, a timeout, this process
// dying), a later look finds exactly the user that POST made, and never
// anyone else's: an email lookup cannot find such a user until its email
// credential is added. pendingNote is where an earlier release noted the
// same ("creating:<mark>", or the new user's id), still honoured.
const (
	markKey         = "onboard_create"
	pendingNote     = "pending_user"
	pendingCreating = "creating"
)

// pendingUser returns the half-made user an earlier try left behind, if any.
func (t *Target) pendingUser(ctx context.Context, p core.Person) (*User, error) {
	j := core.JournalFrom(ctx)
	if u, err := t.notedUser(ctx, p); err != nil || u != nil {
		return u, err
	}
	for _, mark := range slices.Backward(j.Unfinished()) {
		u, err := t.markedUser(ctx, p, mark)
		if err != nil {
			return nil, err
		}
		// Found and finished now, or nothing made under it: either way,
		// once this request completes, nothing more to look for.
		j.Resolve(mark)
		if u != nil {
			t.log.Info("resuming a Looker user a previous delivery created", "user_id", string(u.ID))
			return u, nil
		}
	}
	return nil, nil
}

// notedUser returns the half-made user an earlier release's note names.
func (t *Target) notedUser(ctx context.Context, p core.Person) (*User, error) {
	j := core.JournalFrom(ctx)
	note, err := j.Recall(ctx, TargetName, pendingNote)
	if err != nil || note == "" {
		return nil, err
	}
	var u *User
	if rest, creating := strings.CutPrefix(note, pendingCreating); creating {
		// A bare "creating" (written before marks existed) names no mark,
		// and so no user: nothing is adopted by names alone.
		u, err = t.markedUser(ctx, p, strings.TrimPrefix(rest, ":"))
	} else if u, err = t.client.User(ctx, ID(note)); err == nil && u != nil && !u.hasNoLogin() {
		// An older release noted the new user's id after POST /users.
		u = nil
	}
	if err != nil {
		return nil, err
	}
	if u == nil {
		j.Forget(TargetName, pendingNote)
		return nil, nil
	}
	t.log.Info("resuming a Looker user a previous delivery created", "user_id", string(u.ID))
	return u, nil
}

// markedUser finds the login-less user a create with this mark made.
func (t *Target) markedUser(ctx context.Context, p core.Person, mark string) (*User, error) {
	return t.client.UserWithMark(ctx, p.FirstName, p.LastName, markKey, mark)
}

// findByEmail looks a user up by email credential. Looker (Google Cloud core)
// may refuse that lookup; its users' emails come from the identity provider,
// so search is the fallback, and onCore tells the caller where it is.
func (t *Target) findByEmail(ctx context.Context, email string) (u *User, onCore bool, err error) {
	u, err = t.client.UserByEmail(ctx, email)
	if IsUnsupportedOnCore(err) {
		u, err = t.client.SearchUserByEmail(ctx, email)
		return u, true, err
	}
	return u, false, err
}

// create makes a new regular user. Every failure after POST /users deletes
// the user again: a half-made user would make the retry take the "existing"
// path and never send the welcome.
func (t *Target) create(ctx context.Context, p core.Person, g grants) (core.TargetResult, error) {
	mark := core.JournalFrom(ctx).Mark()
	if mark == "" {
		// No store: nothing outlives this request to look for it by, but
		// the mark still finds the user of an unanswered create below.
		mark = rand.Text()
	}
	u, err := t.client.CreateUser(ctx, p.FirstName, p.LastName, map[string]string{markKey: mark})
	if err != nil && !httpretry.MayHaveActed(err) {
		return core.TargetResult{}, err
	}
	core.JournalFrom(ctx).Created()
	if err != nil {
		made, ferr := t.markedUser(ctx, p, mark)
		if ferr != nil {
			t.log.Warn("looking for the user of an unanswered create failed; the redelivery looks again", "error", ferr.Error())
		}
		if ferr != nil || made == nil {
			// Not there (yet), or not visible: the mark stays unfinished,
			// and the redelivery looks for it again before creating.
			return core.TargetResult{}, err
		}
		t.log.Warn("Looker failed to answer a create it carried out; finishing the user it made", "user_id", string(made.ID), "error", err.Error())
		u = made
	}
	return t.finishCreate(ctx, u, p, g, true)
}

// finishCreate gives a user created by this delivery (createdHere) or by a
// crashed one its email credential and grants. Only a user this delivery
// created is rolled back on failure: a resumed one may be another live
// delivery's (after a lease ran out), and its note stays for the next try.
func (t *Target) finishCreate(ctx context.Context, u *User, p core.Person, g grants, createdHere bool) (core.TargetResult, error) {
	undo := func(err error) (core.TargetResult, error) {
		if createdHere {
			if rbErr := t.rollback(ctx, u.ID); rbErr != nil {
				return core.TargetResult{}, rbErr
			}
		}
		return core.TargetResult{}, err
	}
	if err := t.client.CreateEmailCredentials(ctx, u.ID, p.Email); err != nil {
		switch {
		case IsUnsupportedOnCore(err):
			return undo(core.Refused(TargetName, coreCreateMessage, err))
		case MayBeEmailTaken(err):
			// The email is someone's already: an admin's user, or this very
			// user completed by a concurrent delivery. Look before undoing.
			existing, _, ferr := t.findByEmail(ctx, p.Email)
			if ferr != nil {
				return undo(ferr)
			}
			if existing != nil && existing.ID == u.ID {
				// Completed meanwhile by a concurrent delivery: still made by onboard for this person.
				return t.bringToProfile(ctx, existing, g, unfinishedUser)
			}
			if existing != nil {
				if _, uerr := undo(nil); uerr != nil {
					return core.TargetResult{}, uerr
				}
				return t.bringToProfile(ctx, existing, g, existingUser)
			}
		}
		return undo(err)
	}
	u.CredentialsEmail = &CredentialsEmail{Email: p.Email}
	res, err := t.bringToProfile(ctx, u, g, newUser)
	if err != nil && createdHere {
		return undo(err)
	}
	if err != nil {
		// Resumed: the user stays for the retry, and what this try gave it
		// goes on record.
		return res, err
	}
	// The user is findable by email now; the note has done its job.
	core.JournalFrom(ctx).Forget(TargetName, pendingNote)
	return res, nil
}

// rollback deletes a user this request created. It runs even when the
// request's context is cancelled, within the client's own timeout.
func (t *Target) rollback(ctx context.Context, id ID) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.client.cfg.Timeout)
	defer cancel()
	if err := t.client.DeleteUser(ctx, id); err != nil {
		t.log.Error("rolling back a half-made Looker user failed: delete it by hand", "user_id", string(id), "error", err.Error())
		return fmt.Errorf("looker user %s was created but could not be completed or removed: %w", id, err)
	}
	t.log.Warn("rolled back a half-made Looker user", "user_id", string(id))
	core.JournalFrom(ctx).Forget(TargetName, pendingNote)
	return nil
}

// bringToProfile gives an existing (or just created) user what the profile
// grants, without taking away anything an admin granted by hand. Each kind
// of grant is an independent read-then-write chain, so they run concurrently
// and the critical path is at most two round trips. On a failure the result
// still holds the user and the grants the writes that succeeded (or may
// have) made.
func (t *Target) bringToProfile(ctx context.Context, u *User, g grants, how arrival) (core.TargetResult, error) {
	created := how == newUser
	res := core.TargetResult{Status: core.StatusUnchanged, ID: string(u.ID)}
	if how != existingUser {
		res.Status = core.StatusCreated
	}
	reenable := !created && u.IsDisabled
	// Only an email login can be welcomed: identity-provider users (and
	// everyone on Looker (Google Cloud core)) sign in through the IdP.
	welcome := (how != existingUser || reenable) && u.CredentialsEmail != nil
	done := &tally{}
	tasks := []func(context.Context) error{
		func(ctx context.Context) error { return t.grantRoles(ctx, u.ID, g.roles, g.dropRoles, created, done) },
		func(ctx context.Context) error { return t.grantGroups(ctx, u, g.groups, g.dropGroups, done) },
		func(ctx context.Context) error { return t.grantAttributes(ctx, u.ID, g.attributes, created, done) },
	}
	if reenable && welcome {
		if err := core.JournalFrom(ctx).MarkWelcomeDue(ctx); err != nil {
			return core.TargetResult{}, err
		}
	}
	if reenable {
		tasks = append(tasks, func(ctx context.Context) error {
			if err := t.client.SetDisabled(ctx, u.ID, false); err != nil {
				return err
			}
			done.add("enabled", []string{"enabled"}, nil)
			return nil
		})
	}
	if welcome {
		tasks = append(tasks, func(ctx context.Context) error { return t.setupLink(ctx, u.ID, &res) })
	}
	err := settle(ctx, tasks...)
	done.into(&res)
	if err != nil {
		// What the other writes made goes back with the failure, for the
		// person record: a move or a leaver takes back only what it lists.
		return res, err
	}
	res.Welcome = welcome
	if how == existingUser && len(res.Changes) > 0 {
		res.Status = core.StatusUpdated
	}
	return res, nil
}

// revoke takes given's roles and groups away from the user onboard
// recorded, for a mover whose new profile has no Looker. A user deleted
// since has nothing left to take.
func (t *Target) revoke(ctx context.Context, given core.TargetRecord) (core.TargetResult, error) {
	var g grants
	g.takeBack(given.Granted)
	res := core.TargetResult{Status: core.StatusUnchanged, ID: given.ID}
	if len(g.dropRoles)+len(g.dropGroups) == 0 {
		return res, nil
	}
	u, err := t.client.User(ctx, ID(given.ID))
	if err != nil {
		return core.TargetResult{}, err
	}
	if u == nil {
		res.Revoked = append(named(roleGrant, g.dropRoles), named(groupGrant, g.dropGroups)...)
		return res, nil
	}
	done := &tally{}
	err = parallel(ctx,
		func(ctx context.Context) error { return t.grantRoles(ctx, u.ID, nil, g.dropRoles, false, done) },
		func(ctx context.Context) error { return t.grantGroups(ctx, u, nil, g.dropGroups, done) },
	)
	if err != nil {
		return core.TargetResult{}, err
	}
	done.into(&res)
	if len(res.Changes) > 0 {
		res.Status = core.StatusUpdated
	}
	return res, nil
}

// tally collects what the concurrent writes of one request changed.
type tally struct {
	mu                        sync.Mutex
	changes, granted, revoked []string
}

// add notes a kind of change ("" when nothing was written), the grants it
// added and those onboard no longer holds.
func (d *tally) add(what string, granted, revoked []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if what != "" {
		d.changes = append(d.changes, what)
	}
	d.granted = append(d.granted, granted...)
	d.revoked = append(d.revoked, revoked...)
}

func (d *tally) into(res *core.TargetResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	slices.Sort(d.changes)
	slices.Sort(d.granted)
	slices.Sort(d.revoked)
	res.Changes, res.Granted, res.Revoked = d.changes, d.granted, d.revoked
}

// arrival is how a user reached bringToProfile.
type arrival int

const (
	// existingUser: someone's user, given what the profile lacks.
	existingUser arrival = iota
	// newUser: made by this request, so it has nothing to read back.
	newUser
	// unfinishedUser: made by an earlier request of onboard's that never
	// finished; read like an existing user (grants may have been added
	// since), reported and welcomed as new to the person.
	unfinishedUser
)

// SetupLink implements core.SetupLinker: a fresh link for a welcome resumed
// after a crash. Only email-credential users have one.
func (t *Target) SetupLink(ctx context.Context, p core.Person, prof *core.Profile) (string, error) {
	if lp := ProfileOf(prof); lp == nil || lp.Kind == KindEmbed || t.welcome != WelcomeByOnboard {
		return "", nil
	}
	u, _, err := t.findByEmail(ctx, p.Email)
	if err != nil || u == nil || u.CredentialsEmail == nil {
		return "", classify(err)
	}
	link, err := t.client.SetupLink(ctx, u.ID)
	return link, classify(err)
}

func (t *Target) setupLink(ctx context.Context, id ID, res *core.TargetResult) error {
	switch t.welcome {
	case WelcomeByOnboard:
		link, err := t.client.SetupLink(ctx, id)
		res.SetupURL = link
		return err
	case WelcomeByLooker:
		return t.client.SendSetupEmail(ctx, id)
	}
	return nil
}

// grantRoles adds the profile's roles to the user's direct roles and takes
// away drop (a mover's roles from onboard), leaving every other role. Looker
// only offers "replace", so it reads, changes and writes once; a user
// created by this request has no roles, so the read is skipped.
func (t *Target) grantRoles(ctx context.Context, id ID, want, drop []ID, created bool, done *tally) error {
	if len(want)+len(drop) == 0 {
		return nil
	}
	var current []ID
	if !created {
		var err error
		if current, err = t.client.DirectRoleIDs(ctx, id); err != nil {
			return err
		}
	}
	next := slices.DeleteFunc(slices.Clone(current), func(r ID) bool { return slices.Contains(drop, r) })
	removed := len(next) < len(current)
	var added []ID
	for _, r := range want {
		if !slices.Contains(next, r) {
			next = append(next, r)
			added = append(added, r)
		}
	}
	if len(added) == 0 && !removed {
		done.add("", nil, named(roleGrant, drop))
		return nil
	}
	err := t.client.SetRoles(ctx, id, next)
	switch {
	case err == nil:
		done.add("roles", named(roleGrant, added), named(roleGrant, drop))
	case httpretry.MayHaveActed(err):
		// Unanswered, perhaps made: a role on record that never arrived is
		// taken back as a no-op, one made and unrecorded never is.
		done.add("", named(roleGrant, added), nil)
	}
	return err
}

// grantGroups adds the user to the profile's groups and takes them out of
// drop (a mover's groups from onboard).
func (t *Target) grantGroups(ctx context.Context, u *User, want, drop []ID, done *tally) error {
	var writes []func(context.Context) error
	for _, gid := range want {
		if !slices.Contains(u.GroupIDs, gid) {
			writes = append(writes, func(ctx context.Context) error {
				err := t.client.AddToGroup(ctx, gid, u.ID)
				if err == nil || httpretry.MayHaveActed(err) {
					// Each on its own: one group's failure must not keep
					// another's membership off the record.
					done.add("", named(groupGrant, []ID{gid}), nil)
				}
				return err
			})
		}
	}
	for _, gid := range drop {
		if slices.Contains(u.GroupIDs, gid) {
			writes = append(writes, func(ctx context.Context) error { return t.client.RemoveFromGroup(ctx, gid, u.ID) })
		}
	}
	if len(writes) == 0 {
		done.add("", nil, named(groupGrant, drop))
		return nil
	}
	if err := settle(ctx, writes...); err != nil {
		return err
	}
	done.add("groups", nil, named(groupGrant, drop))
	return nil
}

func (t *Target) grantAttributes(ctx context.Context, id ID, want []attributeValue, created bool, done *tally) error {
	if len(want) == 0 {
		return nil
	}
	current := map[ID]UserAttributeValue{}
	if !created {
		ids := make([]ID, len(want))
		for i, a := range want {
			ids[i] = a.id
		}
		var err error
		if current, err = t.client.AttributeValues(ctx, id, ids); err != nil {
			return err
		}
	}
	var writes []func(context.Context) error
	for _, a := range want {
		if cur, ok := current[a.id]; ok && cur.Value == a.value {
			continue
		}
		writes = append(writes, func(ctx context.Context) error {
			err := t.client.SetAttributeValue(ctx, id, a.id, a.value)
			if err == nil || httpretry.MayHaveActed(err) {
				done.add("", []string{"attribute:" + string(a.id)}, nil)
			}
			return err
		})
	}
	if len(writes) == 0 {
		return nil
	}
	if err := settle(ctx, writes...); err != nil {
		return err
	}
	done.add("attributes", nil, nil)
	return nil
}

// provisionEmbed makes sure an embed user keyed by external_user_id exists
// and has the profile's grants. Embed users log in through signed embed
// URLs, so there is no setup link and no welcome email.
func (t *Target) provisionEmbed(ctx context.Context, p core.Person, lp *Profile, given []string) (core.TargetResult, error) {
	var (
		g    grants
		user *User
	)
	err := parallel(ctx,
		func(ctx context.Context) (err error) { g, err = t.resolve(ctx, lp, p); return },
		func(ctx context.Context) (err error) {
			user, err = t.client.UserByEmbedID(ctx, p.ExternalUserID)
			return
		},
	)
	if err != nil {
		return core.TargetResult{}, err
	}
	g.takeBack(given)
	created := false
	if user == nil {
		id, err := t.client.CreateEmbedUser(ctx, p.ExternalUserID)
		switch {
		case IsConflict(err):
			// Created by a concurrent delivery since our lookup.
			if user, err = t.client.UserByEmbedID(ctx, p.ExternalUserID); err == nil && user == nil {
				err = errors.New("looker: embed user reported as existing but not found")
			}
		case err == nil:
			user, created = &User{ID: id}, true
		}
		if err != nil {
			return core.TargetResult{}, err
		}
	}
	if created && (p.FirstName != "" || p.LastName != "") {
		if err := t.client.SetNames(ctx, user.ID, p.FirstName, p.LastName); err != nil {
			return core.TargetResult{}, err
		}
	}
	how := existingUser
	if created {
		how = newUser
	}
	res, err := t.bringToProfile(ctx, user, g, how)
	res.Welcome = false
	return res, err
}

// Deprovision implements core.Target: disable by default, delete when the
// profile the person was given says so. It acts on the user onboard made or
// adopted for them (their record), not on whoever holds the email now; only
// an operator's --adopt, with no record, looks them up. Someone who is not
// in Looker is already deprovisioned, and the API user onboard signs in as
// is never touched.
func (t *Target) Deprovision(ctx context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	lp := ProfileOf(prof)
	if lp == nil {
		// No profile says how (see core.Target): disabling can be undone,
		// and deleting needs a profile that asks for it.
		lp = &Profile{Kind: KindRegular, Deprovision: DeprovisionDisable}
	}
	var (
		user *User
		err  error
	)
	switch given := p.Given[TargetName]; {
	case given.ID != "":
		user, err = t.client.User(ctx, ID(given.ID))
	case lp.Kind == KindEmbed:
		user, err = t.client.UserByEmbedID(ctx, p.ExternalUserID)
	default:
		user, _, err = t.findByEmail(ctx, p.Email)
	}
	if err != nil {
		return core.TargetResult{}, classify(err)
	}
	if user == nil {
		return core.TargetResult{Status: core.StatusUnchanged}, nil
	}
	me, err := t.client.Me(ctx)
	if err != nil {
		return core.TargetResult{}, classify(err)
	}
	if me.ID == user.ID {
		return core.TargetResult{}, core.Refused(TargetName, "this is the API user onboard signs in to Looker as; it is never deprovisioned", nil)
	}
	admin, err := t.isAdmin(ctx, user)
	if err != nil {
		return core.TargetResult{}, classify(err)
	}
	if admin {
		// A form that provisioned an admin's email (onboard then adopts the
		// existing user) must not be able to lock the admin out next.
		return core.TargetResult{}, core.Refused(TargetName, "this Looker user has the Admin role; onboard never deprovisions admins: remove the role in Looker first", nil)
	}
	res := core.TargetResult{ID: string(user.ID)}
	switch {
	case lp.Deprovision == DeprovisionDelete:
		err = t.client.DeleteUser(ctx, user.ID)
		res.Status, res.Changes = core.StatusDeleted, []string{"deleted"}
	case user.IsDisabled:
		res.Status = core.StatusUnchanged
	default:
		err = t.client.SetDisabled(ctx, user.ID, true)
		res.Status, res.Changes = core.StatusDisabled, []string{"disabled"}
	}
	if err != nil {
		return core.TargetResult{}, classify(err)
	}
	return res, nil
}

// isAdmin says whether u holds Looker's built-in Admin role directly. An
// instance without a role of that name has no admins to protect this way.
func (t *Target) isAdmin(ctx context.Context, u *User) (bool, error) {
	roles, err := t.roles.resolve(ctx, []string{adminRole})
	var missing *missingError
	if errors.As(err, &missing) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.Contains(u.RoleIDs, roles[0].id), nil
}

// adminRole is the name of the role Looker creates on every instance.
const adminRole = "Admin"

// classify turns a client error into the answer the caller should get:
// Looker overloaded or unreachable → retry later; anything else Looker
// refused → 502 with Looker's own message.
func classify(err error) error {
	if missing, ok := errors.AsType[*missingError](err); ok {
		return core.Refused(TargetName, missing.Error(), err)
	}
	return httpretry.Answer(TargetName, err, func(status int) string {
		op, msg := "the call", http.StatusText(status)
		if apiErr, ok := errors.AsType[*APIError](err); ok {
			op, msg = apiErr.Operation, cmp.Or(apiErr.Message, msg)
		}
		return fmt.Sprintf("Looker refused %s (%d): %s", op, status, msg)
	})
}

// settle runs independent writes concurrently, each to its end, and
// returns the first error (a panic included). A failure cancels none of
// the others: a write cut off midway may have been made all the same, and
// what it granted would then be missing from the person record.
func settle(ctx context.Context, writes ...func(context.Context) error) error {
	g, _ := core.NewGroup(ctx)
	for _, write := range writes {
		g.Go(func() error { return write(ctx) })
	}
	return g.Wait()
}

// parallel runs independent calls concurrently and returns the first error
// (a panic included), cancelling the rest.
func parallel(ctx context.Context, tasks ...func(context.Context) error) error {
	g, ctx := core.NewGroup(ctx)
	for _, task := range tasks {
		g.Go(func() error { return task(ctx) })
	}
	return g.Wait()
}
