package periscope

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// User is a site's user as onboard needs it.
type User struct {
	ID        string
	Email     string
	FirstName string
	LastName  string
	Groups    []string // group names
	// GroupsKnown is whether the answer listed the groups at all. An update
	// replaces the whole membership, so it is only sent when it is known.
	GroupsKnown bool
}

// NewUser is the create-user body of the API's examples.
type NewUser struct {
	FirstName string   `json:"first_name"`
	LastName  string   `json:"last_name"`
	Email     string   `json:"email"`
	Groups    []string `json:"groups"` // names, as the examples send them
	// InvitedByEmail names the inviter in Periscope's invitation.
	InvitedByEmail string `json:"invited_by_email"`
}

// UserUpdate is an update-user body; only the fields set are sent.
type UserUpdate struct {
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	// Groups is the user's whole membership: the API's examples give no
	// add-one-group call, so onboard sends what the user had plus what the
	// profile adds, less what a mover loses. Always sent, empty too (a
	// mover off every group): membership is all onboard ever updates.
	Groups []string `json:"groups"`
}

// Group is a site's group.
type Group struct {
	ID   string
	Name string
}

// NewGroup is the create-group body of the API's examples.
type NewGroup struct {
	Name           string `json:"name"`
	Access         string `json:"access,omitempty"`
	CreatedByEmail string `json:"created_by_email"`
}

// GetUser returns the site's user with this email, or nil when there is
// none: GET /api/v1/users selected by HTTP-X-EMAIL, where 404 means absent.
func (c *Client) GetUser(ctx context.Context, site, email string) (*User, error) {
	raw, err := c.do(ctx, site, call{method: http.MethodGet, path: "/users", email: email, idempotent: true})
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	u, readable := pickUser(raw, email)
	if !readable {
		// Taking an unreadable answer for "no such user" would make a
		// deprovision report success without deleting anyone.
		return nil, &AnswerError{Operation: "GET /api/v1/users", Site: site, Want: "a user, a list of users or a 404"}
	}
	return u, nil
}

// CreateUser adds a user: POST /api/v1/users. The answer's user is returned
// when the body holds one (its shape is not documented), else nil.
func (c *Client) CreateUser(ctx context.Context, site string, u NewUser) (*User, error) {
	if u.Groups == nil {
		u.Groups = []string{} // the examples send a list, empty or not, never null
	}
	raw, err := c.do(ctx, site, call{method: http.MethodPost, path: "/users", body: u})
	if err != nil {
		return nil, err
	}
	created, _ := pickUser(raw, u.Email)
	return created, nil
}

// UpdateUser changes the user selected by email: PUT /api/v1/users.
// Sending the same update twice leaves the same user, so it is retried.
func (c *Client) UpdateUser(ctx context.Context, site, email string, u UserUpdate) error {
	_, err := c.do(ctx, site, call{method: http.MethodPut, path: "/users", email: email, body: u, idempotent: true})
	return err
}

// DeleteUser removes the user selected by email: DELETE /api/v1/users.
// IsNotFound reports that there was no such user.
func (c *Client) DeleteUser(ctx context.Context, site, email string) error {
	_, err := c.do(ctx, site, call{method: http.MethodDelete, path: "/users", email: email, idempotent: true})
	return err
}

// Groups lists the site's groups: GET /api/v1/groups.
func (c *Client) Groups(ctx context.Context, site string) ([]Group, error) {
	raw, err := c.do(ctx, site, call{method: http.MethodGet, path: "/groups", idempotent: true})
	if err != nil {
		return nil, err
	}
	var wire []wireGroup
	if err := decodeList(raw, "groups", &wire); err != nil {
		return nil, &AnswerError{Operation: "GET /api/v1/groups", Site: site, Want: "a list of groups"}
	}
	out := make([]Group, 0, len(wire))
	for _, g := range wire {
		if g.Name != "" {
			out = append(out, Group{ID: idString(g.ID), Name: g.Name})
		}
	}
	return out, nil
}

// CreateGroup adds a group: POST /api/v1/groups.
func (c *Client) CreateGroup(ctx context.Context, site string, g NewGroup) error {
	_, err := c.do(ctx, site, call{method: http.MethodPost, path: "/groups", body: g})
	return err
}

// ---- answers of undocumented shape ----

type wireUser struct {
	ID        json.RawMessage `json:"id"`
	Email     string          `json:"email"`
	FirstName string          `json:"first_name"`
	LastName  string          `json:"last_name"`
	Groups    *groupNames     `json:"groups"` // nil: not in the answer
}

type wireGroup struct {
	ID   json.RawMessage `json:"id"`
	Name string          `json:"name"`
}

// groupNames reads a user's groups whether they come as names (the shape
// create-user takes) or as group objects.
type groupNames []string

func (g *groupNames) UnmarshalJSON(b []byte) error {
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return err
	}
	for _, it := range items {
		var name string
		if json.Unmarshal(it, &name) != nil {
			var obj wireGroup
			if json.Unmarshal(it, &obj) != nil {
				continue
			}
			name = obj.Name
		}
		if name != "" {
			*g = append(*g, name)
		}
	}
	return nil
}

// pickUser finds the user with email in an answer that may be the user
// itself, a list of users, or either wrapped in {"user"|"users"|"data": …}.
// readable is false for an answer of none of these shapes, and for a single
// user with another email: a server (or proxy) that dropped HTTP-X-EMAIL
// says nothing about this person, and taking that user would make someone
// else look like them.
func pickUser(raw []byte, email string) (u *User, readable bool) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return nil, false
	case raw[0] == '[':
		var list []wireUser
		if json.Unmarshal(raw, &list) != nil {
			return nil, false
		}
		for _, w := range list {
			if strings.EqualFold(w.Email, email) {
				return w.user(), true
			}
		}
		return nil, true
	case raw[0] == '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil, false
		}
		if _, ok := obj["email"]; ok {
			var w wireUser
			if json.Unmarshal(raw, &w) != nil || !strings.EqualFold(w.Email, email) {
				return nil, false
			}
			return w.user(), true
		}
		for _, k := range []string{"user", "users", "data"} {
			if inner, ok := obj[k]; ok {
				return pickUser(inner, email)
			}
		}
	}
	return nil, false
}

func (w wireUser) user() *User {
	u := &User{ID: idString(w.ID), Email: w.Email, FirstName: w.FirstName, LastName: w.LastName}
	if w.Groups != nil {
		u.Groups, u.GroupsKnown = *w.Groups, true
	}
	return u
}

// decodeList reads a bare JSON list, or one wrapped under key or "data".
func decodeList(raw []byte, key string, out any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		for _, k := range []string{key, "data"} {
			if inner, ok := obj[k]; ok {
				return json.Unmarshal(inner, out)
			}
		}
	}
	return json.Unmarshal(raw, out)
}

// idString renders an id sent as a number or a string.
func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
