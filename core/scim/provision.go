package scim

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/runner"
	"github.com/onboard-dev/onboard/core/state"
)

// applied is what onboard last provisioned for a directory user, kept
// apart from the user's record so that writing it is no new version of
// the user. A deprovision acts on it (the email that was provisioned,
// whatever the user's email is now); a change that alters none of it
// needs no call to a target.
type applied struct {
	Email     string `json:"email"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Profile   string `json:"profile"`
	Active    bool   `json:"active"`
	// Attributes are the user attributes mapped from the IdP's
	// (sources.scim.attributes) that the profile admitted.
	Attributes map[string]string `json:"attributes,omitempty"`
}

func (a applied) equal(b applied) bool {
	return a.Email == b.Email && a.FirstName == b.FirstName && a.LastName == b.LastName &&
		a.Profile == b.Profile && a.Active == b.Active && maps.Equal(a.Attributes, b.Attributes)
}

func appliedKey(userID string) string { return "scim/applied/" + userID }

// userRequest is the provision request for a user's attributes: the work
// email (the primary one first) else the userName; names from name, else
// the displayName.
func userRequest(attrs map[string]any, profile string) (core.Request, error) {
	email, _ := attrs["userName"].(string)
	var work []map[string]any
	for _, v := range asList(attrs["emails"]) {
		if m, ok := v.(map[string]any); ok && strings.EqualFold(str(m["type"]), "work") && str(m["value"]) != "" {
			work = append(work, m)
		}
	}
	slices.SortStableFunc(work, func(a, b map[string]any) int {
		ap, _ := a["primary"].(bool)
		bp, _ := b["primary"].(bool)
		switch {
		case ap && !bp:
			return -1
		case bp && !ap:
			return 1
		}
		return 0
	})
	if len(work) > 0 {
		email = str(work[0]["value"])
	}
	name, _ := attrs["name"].(map[string]any)
	req := core.Request{Email: email, FirstName: str(name["givenName"]), LastName: str(name["familyName"]), Profile: profile}
	if req.FirstName == "" && req.LastName == "" {
		req.Name = str(attrs["displayName"])
	}
	req, err := req.Normalize()
	if err != nil {
		e := core.AsError(err)
		return req, invalidValue("onboard cannot provision this user: " + e.Error())
	}
	return req, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// reconcile makes the targets match a directory user: an active user
// with a profile is provisioned by it, an inactive or deleted one
// (leaving) deprovisioned. The idempotency key is the user's id and
// version, so a retried write finds the first one's work (done, or to
// resume) instead of doing it again. A target's failure is the IdP's to
// retry (5xx); a refusal by policy is logged and keeps the user in the
// directory unprovisioned, as retrying would not change it.
func (s *Server) reconcile(ctx context.Context, dir *directory, user stored, leaving bool) error {
	log := callFrom(ctx).log.With("scim_user", user.id)
	last, lastVersion, err := s.readApplied(ctx, user.id)
	if err != nil {
		return err
	}
	key := "scim/" + user.id + "/v" + strconv.FormatInt(user.version, 10)
	if leaving || !isActive(user.rec.Attributes) {
		if !last.Active {
			return nil
		}
		if done, err := s.apply(ctx, log, deprovisionOf(last, key+"/deprovision")); err != nil || !done {
			return err
		}
		last.Active = false
		_, err := s.recordApplied(ctx, user.id, last, lastVersion)
		return err
	}
	groups, err := dir.getAll(ctx, kindGroup, user.rec.Groups)
	if err != nil {
		return err
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.str("displayName")
	}
	profile := s.Engine.Config.ProfileForGroups(names)
	if profile == nil {
		log.Info("SCIM user kept in the directory, not provisioned: no profile lists their groups in scim_groups, and there is no default_profile")
		return nil
	}
	req, err := userRequest(user.rec.Attributes, profile.Name)
	if err != nil {
		log.Warn("SCIM user kept in the directory, not provisioned", "reason", err.Error())
		return nil
	}
	var skipped []string
	req.Attributes, skipped = mappedAttributes(user.rec.Attributes, PolicyOf(s.Engine.Config).Attributes, profile)
	if len(skipped) > 0 {
		log.Warn("SCIM attributes left out: the profile does not admit them, or not their values (attributes_allowed)", "profile", profile.Name, "attributes", skipped)
	}
	want := applied{Email: req.Email, FirstName: req.FirstName, LastName: req.LastName, Profile: profile.Name, Active: true, Attributes: req.Attributes}
	if want.equal(last) {
		return nil
	}
	if last.Active && !strings.EqualFold(last.Email, want.Email) {
		// A new email is a new identity in every target: the accounts made
		// under the old one would keep the person's access, so they go
		// first, as a leaver's do. Until both steps are done the record
		// holds the old email, so a retry (or a change back) finds what is
		// left to do.
		done, err := s.apply(ctx, log, deprovisionOf(last, key+"/deprovision-previous-email"))
		if err != nil {
			return err
		}
		if !done {
			log.Warn("SCIM user's email changed, but onboard's policy keeps the accounts made under the previous email; an operator removes them if they should go",
				"previous_email", last.Email)
		}
		last.Active = false
		if lastVersion, err = s.recordApplied(ctx, user.id, last, lastVersion); err != nil {
			return err
		}
	}
	req.Action, req.IdempotencyKey = core.ActionProvision, key+"/provision"
	if done, err := s.apply(ctx, log, req); err != nil || !done {
		return err
	}
	_, err = s.recordApplied(ctx, user.id, want, lastVersion)
	return err
}

// deprovisionOf is the deprovision of what onboard last provisioned. It
// names the profile given, which the engine acts by: left out, the
// request would need a default_profile to be authorised at all.
func deprovisionOf(last applied, key string) core.Request {
	return core.Request{Action: core.ActionDeprovision, Email: last.Email, Profile: last.Profile, IdempotencyKey: key}
}

// apply runs req through the engine. done is false when onboard's policy
// refused it (logged): retrying would not change that. A failure the IdP
// should retry is the error.
func (s *Server) apply(ctx context.Context, log *slog.Logger, req core.Request) (done bool, _ error) {
	meta := core.Meta{RequestID: callFrom(ctx).requestID, Trigger: "scim", ProfileByPolicy: true}
	out := runner.Run(ctx, s.Engine, []runner.Item{{Request: req, Meta: meta}}, 1, nil)[0]
	if out.Err != nil {
		failure := core.AsError(out.Err)
		if !out.Redeliver && failure.Status < 500 {
			log.Warn("SCIM user kept in the directory; onboard refused to change their access", "action", string(req.Action), "status", failure.Status, "field", failure.Field, "reason", failure.Message)
			return false, nil
		}
		return false, engineError(failure)
	}
	log.Info("SCIM user provisioned", "action", string(req.Action), "outcome", string(out.Result.Status))
	return true, nil
}

// readApplied reads what onboard last provisioned for a user, with the
// version recordApplied compares against.
func (s *Server) readApplied(ctx context.Context, userID string) (applied, int64, error) {
	var last applied
	v, err := s.Store.Get(ctx, appliedKey(userID))
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return last, 0, errStore(err)
	case len(v.Data) > 0:
		if err := json.Unmarshal(v.Data, &last); err != nil {
			return last, 0, errors.New("what onboard provisioned for a scim user is unreadable: " + err.Error())
		}
	}
	return last, v.Version, nil
}

// recordApplied writes what onboard provisioned for a user, if the record
// is still at version, and returns its new version.
func (s *Server) recordApplied(ctx context.Context, userID string, a applied, version int64) (int64, error) {
	data, err := json.Marshal(a)
	if err != nil {
		return version, err
	}
	next, err := s.Store.Put(ctx, appliedKey(userID), data, version, 0)
	// A conflict means a concurrent change of this user recorded its own
	// outcome, as new as this one; the next change compares against it.
	if errors.Is(err, state.ErrConflict) {
		return version, nil
	}
	if err != nil {
		return version, errStore(err)
	}
	return next, nil
}

// engineError answers a failure the IdP should retry: a target down or
// rate limiting, the breaker open, the same person busy elsewhere.
func engineError(e *core.Error) error {
	status := e.Status
	if status != http.StatusTooManyRequests && status < 500 {
		status = http.StatusServiceUnavailable
	}
	detail := e.Error()
	if status == http.StatusInternalServerError {
		detail = "internal error"
	}
	return &scimError{status: status, detail: detail, retryAfter: e.RetryAfter, cause: e}
}

// setMembership adds the group to (or removes it from) a user's record,
// then provisions the user as their groups now say.
func (s *Server) setMembership(ctx context.Context, dir *directory, userID, groupID string, member bool) error {
	for range casAttempts {
		user, ok, err := dir.get(ctx, kindUser, userID)
		if err != nil || !ok {
			return err
		}
		if slices.Contains(user.rec.Groups, groupID) != member {
			if member {
				user.rec.Groups = append(user.rec.Groups, groupID)
				slices.Sort(user.rec.Groups)
			} else {
				user.rec.Groups = slices.DeleteFunc(user.rec.Groups, func(g string) bool { return g == groupID })
			}
			user.rec.Modified = dir.now().UTC()
			user, err = dir.put(ctx, user)
			if errors.Is(err, state.ErrConflict) {
				continue
			}
			if err != nil {
				return errStore(err)
			}
		}
		return s.reconcile(ctx, dir, user, false)
	}
	return errStore(errors.New("a scim user is too contended"))
}
