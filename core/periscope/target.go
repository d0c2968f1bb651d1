package periscope

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

// TargetName is how answers, errors and the audit log name one site:
// "periscope:acme". One target per site lets the engine fan a request out
// to every site concurrently and report each site on its own, a failure
// included, with no Periscope-specific shape in the answer.
func TargetName(site string) string { return "periscope:" + site }

// changeTestMode marks a result whose writes carried test_mode=true, so
// whoever reads the answer knows Periscope was only asked to try.
const changeTestMode = "test_mode"

// Options are the instance-wide Periscope settings of onboard.yaml.
type Options struct {
	// InvitedByEmail is sent as invited_by_email when a user is created and
	// as created_by_email when a group is.
	InvitedByEmail string
	// GroupAccess is sent as a new group's access, omitted when empty.
	GroupAccess string
	Log         *slog.Logger
}

// Target provisions people into one Periscope site.
type Target struct {
	client *Client
	site   string
	opts   Options
	log    *slog.Logger
	groups *groupCache
}

// NewTarget returns the target of one site.
func NewTarget(c *Client, site string, opts Options) *Target {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	return &Target{
		client: c, site: site, opts: opts, log: log.With("target", TargetName(site)),
		groups: &groupCache{client: c, site: site, lock: make(chan struct{}, 1),
			template: NewGroup{Access: opts.GroupAccess, CreatedByEmail: opts.InvitedByEmail}},
	}
}

// Sites lists the sites that cfg's profiles name, sorted and without repeats.
func Sites(cfg *core.Config) []string {
	var sites []string
	for _, p := range cfg.Profiles {
		if ps := ProfileOf(p); ps != nil {
			sites = append(sites, ps.Sites...)
		}
	}
	slices.Sort(sites)
	return slices.Compact(sites)
}

// NewTargets returns one target per site that cfg's profiles name.
func NewTargets(c *Client, cfg *core.Config, log *slog.Logger) []core.Target {
	pc := PolicyOf(cfg)
	opts := Options{InvitedByEmail: pc.InvitedByEmail, GroupAccess: pc.GroupAccess, Log: log}
	var ts []core.Target
	for _, site := range Sites(cfg) {
		ts = append(ts, NewTarget(c, site, opts))
	}
	return ts
}

// Name implements core.Target.
func (t *Target) Name() string { return TargetName(t.site) }

// Handles implements core.Target: the profile names this site.
func (t *Target) Handles(p *core.Profile) bool {
	ps := ProfileOf(p)
	return ps != nil && slices.Contains(ps.Sites, t.site)
}

// Provision implements core.Target: the profile's groups are ensured while
// the person is looked up; absent, they are created in those groups;
// present, the groups they lack are added.
func (t *Target) Provision(ctx context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	res, err := t.provision(ctx, p, ProfileOf(prof).Groups, nil)
	return res, t.classify(err)
}

// Move implements core.Mover: the groups onboard gave for the old profile
// and the new one lacks leave in the same update that adds the new ones
// (it replaces the whole membership, so two would race). With no such site
// in the new profile, only they leave; the user stays.
func (t *Target) Move(ctx context.Context, p core.Person, prof *core.Profile, given core.TargetRecord) (core.TargetResult, error) {
	if !t.Handles(prof) {
		res, err := t.revoke(ctx, p, groupsOf(given.Granted))
		return res, t.classify(err)
	}
	want := ProfileOf(prof).Groups
	drop := slices.DeleteFunc(groupsOf(given.Granted), func(g string) bool { return containsFold(want, g) })
	res, err := t.provision(ctx, p, want, drop)
	return res, t.classify(err)
}

// revoke takes the person out of drop, leaving them on the site.
func (t *Target) revoke(ctx context.Context, p core.Person, drop []string) (core.TargetResult, error) {
	if len(drop) == 0 {
		return core.TargetResult{Status: core.StatusUnchanged}, nil
	}
	user, err := t.client.GetUser(ctx, t.site, p.Email)
	if err != nil {
		return core.TargetResult{}, err
	}
	if user == nil {
		return core.TargetResult{Status: core.StatusUnchanged, Revoked: groupGrants(drop)}, nil
	}
	return t.bringToProfile(ctx, user, nil, drop)
}

// provision brings the person to want, taking them out of drop.
func (t *Target) provision(ctx context.Context, p core.Person, want, drop []string) (core.TargetResult, error) {
	var (
		groups, tried []string
		user          *User
	)
	g, gctx := core.NewGroup(ctx)
	g.Go(func() (err error) { groups, tried, err = t.groups.ensure(gctx, want); return })
	g.Go(func() (err error) { user, err = t.client.GetUser(gctx, t.site, p.Email); return })
	if err := g.Wait(); err != nil {
		return core.TargetResult{}, err
	}
	if core.PlanFrom(ctx) != nil {
		// A plan sends nothing, so it can show the user with every group
		// it would get; only a test-mode write must leave them out.
		groups, tried = append(groups, tried...), nil
	}
	if user == nil {
		created, err := t.client.CreateUser(ctx, t.site, NewUser{
			FirstName: p.FirstName, LastName: p.LastName, Email: p.Email, Groups: groups, InvitedByEmail: t.opts.InvitedByEmail,
		})
		if err == nil {
			// Whatever the old profile gave went with the user it was given to.
			res := core.TargetResult{Status: core.StatusCreated, Changes: t.changes(len(groups)+len(tried) > 0), Granted: groupGrants(groups), Revoked: groupGrants(drop)}
			if created != nil {
				res.ID = created.ID
			}
			return res, nil
		}
		if !MayAlreadyExist(err) {
			return core.TargetResult{}, err
		}
		// Made since the lookup (a concurrent delivery, an admin): a second
		// user is impossible, so bring the one that exists to the profile.
		if user, _ = t.client.GetUser(ctx, t.site, p.Email); user == nil {
			return core.TargetResult{}, err
		}
		t.log.Info("the user appeared while being created; updating it instead")
	}
	res, err := t.bringToProfile(ctx, user, groups, drop)
	if err == nil && len(tried) > 0 {
		res.Status, res.Changes = core.StatusUpdated, t.changes(true)
	}
	return res, err
}

// bringToProfile adds the groups the user lacks and takes them out of drop
// (a mover's groups from onboard). Groups an admin gave them are kept: the
// update sends their whole membership, old and new.
func (t *Target) bringToProfile(ctx context.Context, u *User, groups, drop []string) (core.TargetResult, error) {
	res := core.TargetResult{Status: core.StatusUnchanged, ID: u.ID, Revoked: groupGrants(drop)}
	var missing []string
	for _, g := range groups {
		if !containsFold(u.Groups, g) {
			missing = append(missing, g)
		}
	}
	// Never nil: an update without groups would change nothing.
	next := []string{}
	for _, have := range u.Groups {
		if !containsFold(drop, have) {
			next = append(next, have)
		}
	}
	if len(missing) == 0 && len(next) == len(u.Groups) {
		return res, nil
	}
	if !u.GroupsKnown {
		return core.TargetResult{}, &AnswerError{Operation: "GET /api/v1/users", Site: t.site,
			Want: "a user with its groups (an update replaces the whole membership, so onboard will not send one it cannot see)"}
	}
	if err := t.client.UpdateUser(ctx, t.site, u.Email, UserUpdate{Groups: append(next, missing...)}); err != nil {
		return core.TargetResult{}, err
	}
	res.Status, res.Changes, res.Granted = core.StatusUpdated, t.changes(true), groupGrants(missing)
	return res, nil
}

// groupGrant prefixes a group's name in the person record's grants.
const groupGrant = "group:"

// groupGrants names, for the person record, groups onboard added.
func groupGrants(groups []string) []string {
	grants := make([]string, len(groups))
	for i, g := range groups {
		grants[i] = groupGrant + g
	}
	return grants
}

// groupsOf is the groups among a person record's grants.
func groupsOf(grants []string) []string {
	var groups []string
	for _, g := range grants {
		if name, ok := strings.CutPrefix(g, groupGrant); ok {
			groups = append(groups, name)
		}
	}
	return groups
}

// containsFold: Periscope's group names match ignoring case.
func containsFold(names []string, name string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) })
}

// Deprovision implements core.Target: the user is deleted from the site.
// Someone not there is already deprovisioned.
func (t *Target) Deprovision(ctx context.Context, p core.Person, _ *core.Profile) (core.TargetResult, error) {
	res, err := t.deprovision(ctx, p)
	return res, t.classify(err)
}

func (t *Target) deprovision(ctx context.Context, p core.Person) (core.TargetResult, error) {
	u, err := t.client.GetUser(ctx, t.site, p.Email)
	if err != nil || u == nil {
		return core.TargetResult{Status: core.StatusUnchanged}, err
	}
	err = t.client.DeleteUser(ctx, t.site, u.Email)
	if IsNotFound(err) {
		return core.TargetResult{Status: core.StatusUnchanged}, nil
	}
	if err != nil {
		return core.TargetResult{}, err
	}
	return core.TargetResult{Status: core.StatusDeleted, ID: u.ID, Changes: t.changes(false)}, nil
}

// changes lists what a write changed, plus the test-mode mark.
func (t *Target) changes(groups bool) []string {
	var c []string
	if groups {
		c = append(c, "groups")
	}
	if t.client.TestMode() {
		c = append(c, changeTestMode)
	}
	return c
}

// classify gives an error the answer it deserves. Messages carry
// Periscope's own words (already trimmed and without the key).
func (t *Target) classify(err error) error {
	name := t.Name()
	if _, ok := errors.AsType[*AnswerError](err); ok {
		return core.Refused(name, err.Error(), err)
	}
	// Timeouts, transport failures, a key that cannot be read right now:
	// resending later may work (Answer's "no answer").
	return httpretry.Answer(name, err, func(status int) string {
		e, _ := errors.AsType[*APIError](err)
		msg := cmp.Or(e.Message, http.StatusText(status))
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			return fmt.Sprintf("Periscope refused the API key of site %s (%d: %s): check %s and that the site's plan includes the Users & Groups API",
				t.site, status, msg, SettingName)
		}
		return fmt.Sprintf("Periscope refused %s (%d): %s", e.Operation, status, msg)
	})
}

// groupCache knows a site's groups by name, so that the profile's groups
// are fetched once per instance and created when missing. The list is
// fetched again only when a name is missing from it, so a group made in
// Periscope since is found rather than duplicated.
type groupCache struct {
	client   *Client
	site     string
	template NewGroup
	// lock lets one request at a time fetch or create; the others wait
	// (or give up with their context) and then find the result here.
	lock  chan struct{}
	names map[string]string // lower-cased name → name as Periscope spells it; nil until fetched
}

// ensure returns the groups of want that exist, as Periscope spells them,
// creating what is missing. A create that was only tried (test mode, or a
// plan) made nothing: those groups come back in tried, for the user's
// writes to leave out, since Periscope would refuse a user naming a group
// that does not exist; the run reports what it would do instead of failing
// on its own simulated step.
func (g *groupCache) ensure(ctx context.Context, want []string) (groups, tried []string, err error) {
	if len(want) == 0 {
		return nil, nil, nil
	}
	select {
	case g.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-g.lock }()
	if len(g.missing(want)) > 0 {
		if err := g.refresh(ctx); err != nil {
			return nil, nil, err
		}
	}
	for _, name := range g.missing(want) {
		ng := g.template
		ng.Name = name
		err := g.client.CreateGroup(ctx, g.site, ng)
		switch {
		case err == nil && (core.PlanFrom(ctx) != nil || g.client.TestMode()):
			tried = append(tried, name)
			continue
		case err == nil:
			g.names[strings.ToLower(name)] = name
			continue
		}
		// Created elsewhere meanwhile: believe the list, not the refusal.
		if !MayAlreadyExist(err) || g.refresh(ctx) != nil || g.names[strings.ToLower(name)] == "" {
			return nil, nil, err
		}
	}
	for _, name := range want {
		if spelled := g.names[strings.ToLower(name)]; spelled != "" {
			groups = append(groups, spelled)
		}
	}
	return groups, tried, nil
}

func (g *groupCache) missing(want []string) []string {
	var out []string
	for _, name := range want {
		if _, ok := g.names[strings.ToLower(name)]; !ok && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func (g *groupCache) refresh(ctx context.Context) error {
	groups, err := g.client.Groups(ctx, g.site)
	if err != nil {
		return err
	}
	names := make(map[string]string, len(groups))
	for _, gr := range groups {
		names[strings.ToLower(gr.Name)] = gr.Name
	}
	g.names = names
	return nil
}
