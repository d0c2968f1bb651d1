package aac

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/onboard-dev/onboard/core/internal/jsonid"
)

// ID is an AAC id. The API sends numbers; a string form is accepted too so
// that a change of representation does not break decoding.
type ID = jsonid.ID

// Workspace is the part of AAC's Workspace object onboard reads.
type Workspace struct {
	ID   ID     `json:"id"`
	Name string `json:"name"`
}

// Person is a workspace member as the people list (with privileges) gives it.
type Person struct {
	ID    ID     `json:"id"`
	Email string `json:"email"`
	// AuthorizationRoles are kept as AAC sent them: the batch invite takes
	// whole role objects, and onboard sends them back unchanged.
	AuthorizationRoles []json.RawMessage `json:"authorizationRoles,omitempty"`
}

// list is AAC's envelope for collections.
type list[T any] struct {
	Data  []T `json:"data"`
	Count int `json:"count"`
}

// pageSize is how many items a list call asks for; AAC's default is 25.
const pageSize = 100

// maxPages stops a list that never ends (a server ignoring offset).
const maxPages = 1000

// listAll pages through a collection with limit and offset.
func listAll[T any](ctx context.Context, c *Client, r request) ([]T, error) {
	var all []T
	base := r.query
	for page := 0; page < maxPages; page++ {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("limit", strconv.Itoa(pageSize))
		q.Set("offset", strconv.Itoa(len(all)))
		r.query = q
		var l list[T]
		if err := c.call(ctx, r, nil, &l); err != nil {
			return nil, err
		}
		all = append(all, l.Data...)
		if len(l.Data) < pageSize || (l.Count > 0 && len(all) >= l.Count) {
			return all, nil
		}
	}
	return nil, fmt.Errorf("aac: %s: more than %d pages", r.op, maxPages)
}

// CurrentWorkspace returns the workspace that workspace's own token belongs
// to; onboard checks it is the one the token was seeded for.
func (c *Client) CurrentWorkspace(ctx context.Context, workspace string) (Workspace, error) {
	var w Workspace
	err := c.call(ctx, request{method: http.MethodGet, op: "GET /v4/workspaces/current", path: "/v4/workspaces/current",
		chain: c.tokens.Workspace(workspace), idempotent: true}, nil, &w)
	return w, err
}

// Workspaces lists the account's workspaces with the account token.
func (c *Client) Workspaces(ctx context.Context) ([]Workspace, error) {
	return listAll[Workspace](ctx, c, request{method: http.MethodGet, op: "GET /v4/workspaces", path: "/v4/workspaces",
		query: url.Values{"accountId": {c.cfg.AccountID}}, chain: c.tokens.Account(), account: true, idempotent: true})
}

// CreateWorkspace creates a workspace with the account token (201).
// Workspace-level tokens cannot call it.
func (c *Client) CreateWorkspace(ctx context.Context, name string) (Workspace, error) {
	var w Workspace
	err := c.call(ctx, request{method: http.MethodPost, op: "POST /v4/workspaces", path: "/v4/workspaces",
		query: url.Values{"accountId": {c.cfg.AccountID}}, chain: c.tokens.Account(), account: true},
		map[string]string{"name": name}, &w)
	return w, err
}

// People lists a workspace's members; with privileges, each carries its
// authorization roles.
func (c *Client) People(ctx context.Context, workspace string, id ID, privileges bool) ([]Person, error) {
	q := url.Values{}
	if privileges {
		q.Set("includePrivileges", "true")
	}
	return listAll[Person](ctx, c, request{method: http.MethodGet, op: "GET /v4/workspaces/{id}/people",
		path: "/v4/workspaces/" + url.PathEscape(string(id)) + "/people", query: q,
		chain: c.tokens.Workspace(workspace), workspaceID: id, idempotent: true})
}

// Invite is the body of the batch invite.
type Invite struct {
	Emails []string          `json:"emails"`
	Roles  []json.RawMessage `json:"roles"`
}

// InviteBatch invites emails with roles in one call and returns the new
// members' person ids in the order AAC lists them (the order sent, as far
// as any source says; an answer without ids yields none). AAC emails each
// invitee an invitation. The caller records the write per person.
func (c *Client) InviteBatch(ctx context.Context, workspace string, id ID, inv Invite) ([]ID, error) {
	var out list[struct {
		ID       ID `json:"id"`
		PersonID ID `json:"personId"`
	}]
	err := c.call(ctx, request{method: http.MethodPost, op: opInvite,
		path:  "/v4/workspaces/" + url.PathEscape(string(id)) + "/people/batch",
		chain: c.tokens.Workspace(workspace), workspaceID: id, unaudited: true}, inv, &out)
	if err != nil {
		return nil, err
	}
	ids := make([]ID, len(out.Data))
	for i, d := range out.Data {
		ids[i] = d.PersonID
		if ids[i] == "" {
			ids[i] = d.ID
		}
	}
	return ids, nil
}

const opInvite = "POST /v4/workspaces/{id}/people/batch"

// RemovePerson removes a member from a workspace (not from AAC altogether).
func (c *Client) RemovePerson(ctx context.Context, workspace string, id, person ID) error {
	return c.call(ctx, request{method: http.MethodDelete, op: "DELETE /v4/workspaces/{id}/people/{personId}",
		path:  "/v4/workspaces/" + url.PathEscape(string(id)) + "/people/" + url.PathEscape(string(person)),
		chain: c.tokens.Workspace(workspace), workspaceID: id, idempotent: true}, nil, nil)
}
