package aac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

// Target provisions people into AAC workspaces: one invite batch call per
// workspace for the invites that arrive together, a removal per person.
type Target struct {
	client *Client
	log    *slog.Logger

	mu      sync.Mutex
	pending map[string]*batch // open batches by workspace and roles

	wsMu     sync.Mutex
	wsCache  map[string]Workspace // workspace ids never change; names are looked up once
	wsFlight singleflight.Group
}

// NewTarget returns the AAC target.
func NewTarget(c *Client, log *slog.Logger) *Target {
	if log == nil {
		log = slog.Default()
	}
	return &Target{client: c, log: log, pending: map[string]*batch{}, wsCache: map[string]Workspace{}}
}

// Name implements core.Target.
func (t *Target) Name() string { return TargetName }

// Handles implements core.Target.
func (t *Target) Handles(p *core.Profile) bool { return ProfileOf(p) != nil }

// batch collects the invites for one workspace and role set that can
// share a call. Inside an event batch (core.Batch) it goes out once every
// item of that batch has joined or finished. Otherwise it collects the
// invites that arrive close together from separate requests: the window
// restarts at each arrival, up to a deadline.
type batch struct {
	workspace string
	roles     []string
	members   []*member
	timer     *time.Timer
	deadline  time.Time
	settles   bool // flushed when its core.Batch settles, not by the window
	// listed is read while the window is open, so that waiting for company
	// costs no round trip of its own; nil: read when the batch goes.
	listed <-chan listing
}

// listing is a workspace and its people, with their roles, as an invite
// reads them.
type listing struct {
	workspace Workspace
	people    []Person
	err       error
}

// member is one Provision call waiting for its batch.
type member struct {
	ctx   context.Context // the request's: its audit records and its deadline
	email string
	done  chan outcome
}

type outcome struct {
	res core.TargetResult
	err error
}

// Provision implements core.Target: it joins the open batch for the
// profile's workspace and roles and waits for that batch's answer.
func (t *Target) Provision(ctx context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	m := &member{ctx: ctx, email: p.Email, done: make(chan outcome, 1)}
	t.enqueue(ProfileOf(prof), m)
	o, ok := core.Await(ctx, m.done)
	if !ok {
		// The batch may still invite this person; the retry then finds them.
		return core.TargetResult{}, core.Unavailable(TargetName, 0, context.Cause(ctx))
	}
	return o.res, o.err
}

func (t *Target) enqueue(ap *Profile, m *member) {
	cfg := t.client.cfg
	if cfg.BatchWindow <= 0 {
		t.start(&batch{workspace: ap.Workspace, roles: ap.Roles, members: []*member{m}})
		return
	}
	scope := core.BatchFrom(m.ctx)
	key := batchKey(ap, scope, core.PlanFrom(m.ctx) != nil)
	t.mu.Lock()
	b := t.pending[key]
	switch {
	case b == nil:
		b = &batch{workspace: ap.Workspace, roles: ap.Roles, deadline: time.Now().Add(cfg.BatchMaxWait)}
		t.pending[key] = b
		flush := func() { t.flush(key, b) }
		b.settles = scope != nil && scope.OnSettled(flush)
		wait := cfg.BatchWindow
		if b.settles {
			// An event batch may wait long for its last item: its list is
			// read when it goes, or it would be stale.
			wait = cfg.BatchSettleMaxWait
		} else {
			// A person invited between this read and the call is refused
			// by AAC, and inviteEach looks again: the window stays short.
			b.listed = t.listAhead(m.ctx, ap.Workspace)
		}
		b.timer = time.AfterFunc(wait, flush)
	case !b.settles:
		// A timer that fired already just calls flush once more, which finds
		// the batch gone and does nothing.
		b.timer.Reset(min(cfg.BatchWindow, time.Until(b.deadline)))
	}
	b.members = append(b.members, m)
	full := len(b.members) >= cfg.BatchMax
	if full {
		// Closed under the lock, so nobody joins a batch that is full.
		delete(t.pending, key)
	}
	t.mu.Unlock()
	// Only now that m is in b: this may settle the event batch and flush b.
	core.Joined(m.ctx)
	if full {
		b.timer.Stop()
		t.start(b)
	}
}

// flush runs b unless it ran already (full before its window ended, or
// flushed by its timer and its event batch both).
func (t *Target) flush(key string, b *batch) {
	t.mu.Lock()
	if t.pending[key] != b {
		t.mu.Unlock()
		return
	}
	delete(t.pending, key)
	t.mu.Unlock()
	b.timer.Stop()
	t.start(b)
}

// batchKey groups invites that can share a call: same workspace, same
// roles, the same event batch (or none), and never a dry run's with a real
// one (the call is made, or skipped, for the whole batch).
func batchKey(ap *Profile, scope *core.Batch, dryRun bool) string {
	roles := slices.Clone(ap.Roles)
	slices.Sort(roles)
	return fmt.Sprintf("%p\x00%t\x00%s\x00%s", scope, dryRun, ap.Workspace, strings.Join(roles, "\x00"))
}

// start runs b in a goroutine of its own. A panic there fails every member
// still waiting (500, internal error), rather than the process.
func (t *Target) start(b *batch) {
	core.Go(func() { t.run(b) }, func(e error) {
		for _, m := range b.members {
			select {
			case m.done <- outcome{err: e}:
			default: // answered before the panic
			}
		}
	})
}

// run invites a batch's members and hands each its own outcome. Members
// whose request gave up before the flush are left out.
func (t *Target) run(b *batch) {
	live := slices.DeleteFunc(slices.Clone(b.members), func(m *member) bool { return m.ctx.Err() != nil })
	if len(live) == 0 {
		return
	}
	ctx, cancel := t.detach(live[0].ctx)
	defer cancel()
	var l listing
	if b.listed != nil {
		l = <-b.listed
	} else {
		l = t.list(ctx, b.workspace)
	}
	for i, o := range t.invite(ctx, b.workspace, b.roles, live, l) {
		live[i].done <- o
	}
}

// detach frees a batch's calls from the request whose context they run
// in: the batch's other requests still wait for them. That request's
// values (audit, journal) attribute the shared writes.
func (t *Target) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*(t.client.cfg.Lease+t.client.cfg.Timeout))
}

// listAhead lists in a goroutine of its own; a panic there is the
// listing's error, which fails the batch's members.
func (t *Target) listAhead(ctx context.Context, workspace string) <-chan listing {
	listed := make(chan listing, 1)
	core.Go(func() {
		ctx, cancel := t.detach(ctx)
		defer cancel()
		listed <- t.list(ctx, workspace)
	}, func(e error) { listed <- listing{err: e} })
	return listed
}

// list finds the workspace, creating it when missing, and its people.
func (t *Target) list(ctx context.Context, workspace string) listing {
	w, _, err := t.workspace(ctx, workspace, true)
	if err != nil {
		return listing{err: err}
	}
	people, err := t.client.People(ctx, workspace, w.ID, true)
	return listing{workspace: w, people: people, err: err}
}

// invite brings every member into the workspace: present ones (in l) are
// left as they are, the rest are invited in one call.
func (t *Target) invite(ctx context.Context, workspace string, roleNames []string, ms []*member, l listing) []outcome {
	out := make([]outcome, len(ms))
	failAll := func(err error) []outcome {
		err = t.classify(workspace, err)
		for i := range out {
			out[i].err = err
		}
		return out
	}
	if l.err != nil {
		return failAll(l.err)
	}
	w, people := l.workspace, l.people
	roles, err := resolveRoles(workspace, people, roleNames)
	if err != nil {
		return failAll(err)
	}
	present := byEmail(people)
	var emails []string
	who := map[string][]int{} // lower-cased email -> members asking for it
	for i, m := range ms {
		key := strings.ToLower(m.email)
		if p, ok := present[key]; ok {
			out[i].res = core.TargetResult{Status: core.StatusUnchanged, ID: string(p.ID)}
			continue
		}
		if _, dup := who[key]; !dup {
			emails = append(emails, m.email)
		}
		who[key] = append(who[key], i)
	}
	if len(emails) == 0 {
		return out
	}
	ids, err := t.client.InviteBatch(ctx, workspace, w.ID, Invite{Emails: emails, Roles: roles})
	t.recordInvite(ms, who, workspace, emails, roleNames, err)
	switch {
	case err == nil:
		// One line per call, not per person: it shows the batching at work.
		t.log.Info("AAC batch invite", "workspace", workspace, "invited", len(emails), "requests", len(ms), "dry_run", core.PlanFrom(ctx) != nil)
		for k, email := range emails {
			res := core.TargetResult{Status: core.StatusCreated, Changes: []string{"invited"}, Granted: []string{workspaceGrant + workspace}}
			if len(ids) == len(emails) {
				res.ID = string(ids[k])
			}
			for _, i := range who[strings.ToLower(email)] {
				out[i].res = res
			}
		}
	case refusal(err):
		t.inviteEach(ctx, workspace, w.ID, roles, ms, who, emails, out)
	default:
		res := possiblyInvited(workspace, err)
		err = t.classify(workspace, err)
		for _, email := range emails {
			for _, i := range who[strings.ToLower(email)] {
				out[i] = outcome{res: res, err: err}
			}
		}
	}
	return out
}

// possiblyInvited is what a failed invite goes on record with: the
// workspace, when AAC may have made the membership though no answer said
// so (httpretry.MayHaveActed). Its retry finds the person a member already
// and adds nothing to the record, so only this keeps the membership among
// what a move or a leaver takes back.
func possiblyInvited(workspace string, err error) core.TargetResult {
	if !httpretry.MayHaveActed(err) {
		return core.TargetResult{}
	}
	return core.TargetResult{Granted: []string{workspaceGrant + workspace}}
}

// inviteEach handles a refused batch: one bad address, or someone invited
// by another instance since the list, must not sink everyone else. It looks
// again and invites the rest one at a time, so a refusal lands only on the
// person it is about.
func (t *Target) inviteEach(ctx context.Context, workspace string, wsID ID, roles []json.RawMessage, ms []*member, who map[string][]int, emails []string, out []outcome) {
	people, err := t.client.People(ctx, workspace, wsID, false)
	present := byEmail(people)
	for _, email := range emails {
		idx := who[strings.ToLower(email)]
		var o outcome
		if err != nil {
			o.err = t.classify(workspace, err)
		} else if p, ok := present[strings.ToLower(email)]; ok {
			o.res = core.TargetResult{Status: core.StatusUnchanged, ID: string(p.ID)}
		} else {
			ids, ierr := t.client.InviteBatch(ctx, workspace, wsID, Invite{Emails: []string{email}, Roles: roles})
			t.recordInvite(ms, who, workspace, []string{email}, nil, ierr)
			o.res = core.TargetResult{Status: core.StatusCreated, Changes: []string{"invited"}, Granted: []string{workspaceGrant + workspace}}
			if len(ids) == 1 {
				o.res.ID = string(ids[0])
			}
			if ierr != nil {
				o = outcome{res: possiblyInvited(workspace, ierr), err: t.classify(workspace, ierr)}
			}
		}
		for _, i := range idx {
			out[i] = o
		}
	}
}

// recordInvite puts one batch call into the audit log of every request it
// served, under each request's own id and person; in a dry run, into each
// request's plan.
func (t *Target) recordInvite(ms []*member, who map[string][]int, workspace string, emails, roleNames []string, err error) {
	for _, email := range emails {
		for _, i := range who[strings.ToLower(email)] {
			if plan := core.PlanFrom(ms[i].ctx); plan != nil {
				detail, _ := json.Marshal(map[string][]string{"emails": {email}, "roles": roleNames})
				plan.Add(TargetName, opInvite, string(detail))
				continue
			}
			core.RecordWrite(ms[i].ctx, TargetName, opInvite, workspace+": "+email, err)
		}
	}
}

// workspaceGrant prefixes, in the person record, a workspace onboard
// invited the person to.
const workspaceGrant = "workspace:"

// changeWorkspace marks a mover's answer whose old workspace membership
// onboard removed.
const changeWorkspace = "workspace"

// Move implements core.Mover: the person leaves each workspace onboard
// invited them to that the new profile does not name, then is invited as
// Provision does. Removals go first: one that fails fails the request with
// the grant still recorded, and no invite was made whose grant would go
// unrecorded. AAC keeps their account and assets, as on deprovision.
func (t *Target) Move(ctx context.Context, p core.Person, prof *core.Profile, given core.TargetRecord) (core.TargetResult, error) {
	ap := ProfileOf(prof)
	res := core.TargetResult{Status: core.StatusUnchanged}
	for _, grant := range given.Granted {
		name, ok := strings.CutPrefix(grant, workspaceGrant)
		if !ok || (ap != nil && strings.EqualFold(strings.TrimSpace(name), strings.TrimSpace(ap.Workspace))) {
			continue
		}
		out, err := t.removeFrom(ctx, p.Email, name)
		if err != nil {
			return core.TargetResult{}, err
		}
		res.Revoked = append(res.Revoked, grant)
		if out.Status == core.StatusDeleted {
			res.Status, res.ID, res.Changes = core.StatusUpdated, out.ID, []string{changeWorkspace}
		}
	}
	if ap == nil {
		return res, nil
	}
	invited, err := t.Provision(ctx, p, prof)
	if err != nil {
		return core.TargetResult{}, err
	}
	invited.Revoked = res.Revoked
	if len(res.Changes) > 0 {
		invited.Changes = append(invited.Changes, changeWorkspace)
		if invited.Status == core.StatusUnchanged {
			invited.Status = core.StatusUpdated
		}
	}
	return invited, nil
}

// Deprovision implements core.Target: the person is removed from the
// workspace. Without a profile (see core.Target) the workspaces are those
// the record says onboard invited them to; a move away from AAC has already
// removed those, unless it did not finish.
func (t *Target) Deprovision(ctx context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	if ap := ProfileOf(prof); ap != nil {
		return t.removeFrom(ctx, p.Email, ap.Workspace)
	}
	res := core.TargetResult{Status: core.StatusUnchanged}
	for _, grant := range p.Given[TargetName].Granted {
		name, ok := strings.CutPrefix(grant, workspaceGrant)
		if !ok {
			continue
		}
		out, err := t.removeFrom(ctx, p.Email, name)
		if err != nil {
			return core.TargetResult{}, err
		}
		if out.Status == core.StatusDeleted {
			res = out
		}
	}
	return res, nil
}

// removeFrom takes the person out of a workspace: DELETE …/people/{id}.
// Someone not in it, or a workspace that does not exist, is already out.
func (t *Target) removeFrom(ctx context.Context, email, name string) (core.TargetResult, error) {
	w, found, err := t.workspace(ctx, name, false)
	if err != nil {
		return core.TargetResult{}, t.classify(name, err)
	}
	if !found {
		return core.TargetResult{Status: core.StatusUnchanged}, nil
	}
	people, err := t.client.People(ctx, name, w.ID, false)
	if err != nil {
		return core.TargetResult{}, t.classify(name, err)
	}
	person, ok := byEmail(people)[strings.ToLower(email)]
	if !ok {
		return core.TargetResult{Status: core.StatusUnchanged}, nil
	}
	err = t.client.RemovePerson(ctx, name, w.ID, person.ID)
	if IsNotFound(err) {
		return core.TargetResult{Status: core.StatusUnchanged, ID: string(person.ID)}, nil // removed meanwhile
	}
	if err != nil {
		return core.TargetResult{}, t.classify(name, err)
	}
	return core.TargetResult{Status: core.StatusDeleted, ID: string(person.ID), Changes: []string{"removed"}}, nil
}

// workspace finds the profile's workspace by name; with create, it makes
// it when missing. found is false only without create.
func (t *Target) workspace(ctx context.Context, name string, create bool) (Workspace, bool, error) {
	t.wsMu.Lock()
	w, ok := t.wsCache[name]
	t.wsMu.Unlock()
	if ok {
		return w, true, nil
	}
	// A dry run's "created" workspace must reach no real caller.
	key := fmt.Sprintf("%t\x00%t\x00%s", create, core.PlanFrom(ctx) != nil, name)
	v, err, _ := t.wsFlight.Do(key, func() (any, error) {
		w, found, err := t.findWorkspace(ctx, name, create)
		if err == nil && found && w.ID != "" {
			t.wsMu.Lock()
			t.wsCache[name] = w
			t.wsMu.Unlock()
		}
		return wsFound{w, found}, err
	})
	if err != nil {
		return Workspace{}, false, err
	}
	r := v.(wsFound)
	return r.w, r.found, nil
}

type wsFound struct {
	w     Workspace
	found bool
}

// findWorkspace prefers the workspace's own token, whose current workspace
// must be the one it was seeded for; without one, the account token lists
// (and creates) workspaces.
func (t *Target) findWorkspace(ctx context.Context, name string, create bool) (Workspace, bool, error) {
	own := t.client.tokens.Workspace(name)
	has, err := own.Available(ctx)
	if err != nil {
		return Workspace{}, false, err
	}
	if has {
		w, err := t.client.CurrentWorkspace(ctx, name)
		if err != nil {
			return Workspace{}, false, err
		}
		if !strings.EqualFold(strings.TrimSpace(w.Name), strings.TrimSpace(name)) {
			return Workspace{}, false, core.Refused(TargetName, fmt.Sprintf("the API token stored for AAC workspace %q belongs to workspace %q (id %s): seed the right token with %s",
				name, w.Name, w.ID, own.fix), nil)
		}
		return w, true, nil
	}
	if ok, err := t.client.tokens.Account().Available(ctx); err != nil || !ok {
		if err != nil {
			return Workspace{}, false, err
		}
		return Workspace{}, false, own.noTokenError()
	}
	w, found, err := t.findByName(ctx, name)
	if err != nil || found || !create {
		return w, found, err
	}
	w, err = t.createWorkspace(ctx, name)
	return w, err == nil, err
}

// findByName lists the account's workspaces for one named name: exactly,
// else ignoring case.
func (t *Target) findByName(ctx context.Context, name string) (Workspace, bool, error) {
	all, err := t.client.Workspaces(ctx)
	if err != nil {
		return Workspace{}, false, err
	}
	for _, match := range []func(string) bool{
		func(s string) bool { return s == name },
		func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), strings.TrimSpace(name)) },
	} {
		for _, w := range all {
			if match(w.Name) {
				return w, true, nil
			}
		}
	}
	return Workspace{}, false, nil
}

// createWorkspace makes the workspace under a store lease, so that cold
// instances finding it missing at once make one, not one each: whoever
// holds the lease lists again before creating.
func (t *Target) createWorkspace(ctx context.Context, name string) (Workspace, error) {
	if core.PlanFrom(ctx) != nil {
		return t.client.CreateWorkspace(ctx, name) // planned, not sent: no lease to take
	}
	cfg := t.client.cfg
	store := t.client.tokens.store
	lease := leaseKeys + "create-workspace/" + hostOf(cfg.BaseURL) + "/" + name
	owner, _, err := acquire(ctx, store, lease, cfg.Lease, cfg.Poll,
		func(context.Context) (bool, error) { return false, nil })
	if err != nil {
		return Workspace{}, core.Unavailable("state", 0, err)
	}
	defer func() {
		if err := store.Release(context.WithoutCancel(ctx), lease, owner); err != nil {
			t.log.Warn("releasing the workspace-creation lease failed", "workspace", name, "error", err.Error())
		}
	}()
	w, found, err := t.findByName(ctx, name)
	if err != nil || found {
		return w, err
	}
	w, err = t.client.CreateWorkspace(ctx, name)
	if err != nil {
		return Workspace{}, err
	}
	t.log.Warn("created an AAC workspace a profile names. AAC cannot issue an API token for it by API: until an admin generates one in it and seeds it, invites to it are answered retryably",
		"workspace", name, "workspace_id", string(w.ID), "fix", t.client.tokens.Workspace(name).fix)
	return w, nil
}

// resolveRoles turns the profile's role names into the role objects the
// batch invite takes. AAC's guide reads them from the people list with
// privileges (each member's authorizationRoles), so a role is known once
// any member holds it; it matches by name, then ignoring case, then policyId.
func resolveRoles(workspace string, people []Person, names []string) ([]json.RawMessage, error) {
	type known struct {
		ref struct {
			PolicyID ID     `json:"policyId"`
			Name     string `json:"name"`
		}
		raw json.RawMessage
	}
	var roles []known
	seen := map[ID]bool{}
	for _, p := range people {
		for _, raw := range p.AuthorizationRoles {
			var k known
			if json.Unmarshal(raw, &k.ref) != nil || k.ref.PolicyID == "" || seen[k.ref.PolicyID] {
				continue
			}
			seen[k.ref.PolicyID], k.raw = true, raw
			roles = append(roles, k)
		}
	}
	var out []json.RawMessage
	used := map[ID]bool{}
	for _, name := range names {
		i := slices.IndexFunc(roles, func(k known) bool { return k.ref.Name == name })
		if i < 0 {
			i = slices.IndexFunc(roles, func(k known) bool { return strings.EqualFold(k.ref.Name, name) })
		}
		if i < 0 {
			i = slices.IndexFunc(roles, func(k known) bool { return string(k.ref.PolicyID) == name })
		}
		if i < 0 {
			seenNames := make([]string, len(roles))
			for j, k := range roles {
				seenNames[j] = k.ref.Name
			}
			return nil, &missingRoleError{workspace: workspace, role: name, known: seenNames}
		}
		if !used[roles[i].ref.PolicyID] {
			used[roles[i].ref.PolicyID] = true
			out = append(out, roles[i].raw)
		}
	}
	return out, nil
}

// missingRoleError is a profile naming a role no member of the workspace
// holds: a configuration matter that retrying does not fix.
type missingRoleError struct {
	workspace, role string
	known           []string
}

func (e *missingRoleError) Error() string {
	return fmt.Sprintf("AAC workspace %q has no role %q that any member holds (roles seen: %s). onboard learns role objects from the workspace's people list, as AAC's guide does: assign the role once to a member such as the workspace admin, or fix the profile in onboard.yaml",
		e.workspace, e.role, strings.Join(e.known, ", "))
}

func byEmail(people []Person) map[string]Person {
	m := make(map[string]Person, len(people))
	for _, p := range people {
		m[strings.ToLower(strings.TrimSpace(p.Email))] = p
	}
	return m
}

// refusal is an answer that sending the same batch again would not change.
func refusal(err error) bool {
	s := httpretry.StatusOf(err)
	return s >= 400 && s < 500 && s != http.StatusTooManyRequests && s != http.StatusUnauthorized
}

// classify turns a client error into the answer the caller should get.
func (t *Target) classify(workspace string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*core.Error](err); ok {
		return err
	}
	if missing, ok := errors.AsType[*missingRoleError](err); ok {
		return core.Refused(TargetName, missing.Error(), err)
	}
	apiErr, ok := errors.AsType[*APIError](err)
	if ok && apiErr.StatusCode == http.StatusNotFound {
		// A workspace deleted since it was looked up: look again next time.
		t.wsMu.Lock()
		delete(t.wsCache, workspace)
		t.wsMu.Unlock()
		return core.Unavailable(TargetName, 0, err)
	}
	return httpretry.Answer(TargetName, err, func(status int) string {
		return fmt.Sprintf("AAC refused %s (%d): %s", apiErr.Operation, status, apiErr.Text())
	})
}
