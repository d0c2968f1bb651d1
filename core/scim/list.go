package scim

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// DirectoryUser is one user of the SCIM directory, as an admin reads it
// (onboard scim users): what the IdP wrote, and what onboard made of it.
type DirectoryUser struct {
	ID         string   `json:"id"`
	UserName   string   `json:"userName"`
	ExternalID string   `json:"externalId,omitempty"`
	Active     bool     `json:"active"`
	Groups     []string `json:"groups,omitempty"`
	// Provisioned is what onboard last provisioned for the user; nil when
	// it never did (no profile lists their groups, or the policy refused).
	Provisioned *Provisioned `json:"provisioned,omitempty"`
	Modified    time.Time    `json:"lastModified"`
}

// Provisioned is what onboard last did for a directory user.
type Provisioned struct {
	Email   string `json:"email"`
	Profile string `json:"profile"`
	Active  bool   `json:"active"`
}

// Users lists the directory's users, by userName, with their groups'
// names and what onboard provisioned for each.
func Users(ctx context.Context, store state.Store) ([]DirectoryUser, error) {
	dir := &directory{store: store, now: time.Now}
	ids, err := dir.ids(kindUser).all(ctx)
	if err != nil {
		return nil, err
	}
	users, err := dir.records(ctx, kindUser, ids)
	if err != nil {
		return nil, err
	}
	var groupIDs []string
	for _, u := range users {
		groupIDs = append(groupIDs, u.rec.Groups...)
	}
	slices.Sort(groupIDs)
	groups, err := dir.getAll(ctx, kindGroup, slices.Compact(groupIDs))
	if err != nil {
		return nil, err
	}
	groupName := map[string]string{}
	for _, g := range groups {
		groupName[g.id] = g.str("displayName")
	}
	out := make([]DirectoryUser, 0, len(users))
	for _, u := range users {
		du := DirectoryUser{ID: u.id, UserName: u.str("userName"), ExternalID: u.str("externalId"), Active: isActive(u.rec.Attributes), Modified: u.rec.Modified}
		for _, id := range u.rec.Groups {
			if name, ok := groupName[id]; ok {
				du.Groups = append(du.Groups, name)
			}
		}
		if du.Provisioned, err = provisionedFor(ctx, store, u.id); err != nil {
			return nil, err
		}
		out = append(out, du)
	}
	slices.SortFunc(out, func(a, b DirectoryUser) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.UserName), strings.ToLower(b.UserName)), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func provisionedFor(ctx context.Context, store state.Store, userID string) (*Provisioned, error) {
	v, err := store.Get(ctx, appliedKey(userID))
	if errors.Is(err, state.ErrNotFound) || (err == nil && len(v.Data) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var last applied
	if err := json.Unmarshal(v.Data, &last); err != nil {
		return nil, fmt.Errorf("what onboard provisioned for scim user %s is unreadable: %w", userID, err)
	}
	return &Provisioned{Email: last.Email, Profile: last.Profile, Active: last.Active}, nil
}
