package looker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/onboard-dev/onboard/core/internal/jsonid"
)

// ID is a Looker id. API 4.0 documents ids as strings, yet some instances
// still send numbers (sdk-codegen #606), so it decodes both.
type ID = jsonid.ID

// User is the part of Looker's User this package reads.
type User struct {
	ID               ID                `json:"id"`
	FirstName        string            `json:"first_name"`
	LastName         string            `json:"last_name"`
	Email            string            `json:"email"`
	IsDisabled       bool              `json:"is_disabled"`
	RoleIDs          []ID              `json:"role_ids"`
	GroupIDs         []ID              `json:"group_ids"`
	CredentialsEmail *CredentialsEmail `json:"credentials_email"`
	// UIState is the one writable free-form field of a User; onboard marks
	// the users it creates there (see Target.create).
	UIState map[string]string `json:"ui_state"`

	// The other ways to log in; only checked for presence.
	CredentialsEmbed  []json.RawMessage `json:"credentials_embed"`
	CredentialsGoogle json.RawMessage   `json:"credentials_google"`
	CredentialsSAML   json.RawMessage   `json:"credentials_saml"`
	CredentialsOIDC   json.RawMessage   `json:"credentials_oidc"`
	CredentialsLDAP   json.RawMessage   `json:"credentials_ldap"`
}

// hasNoLogin reports a user nobody can log in as: what POST /users leaves
// before its email credential is added.
func (u *User) hasNoLogin() bool {
	absent := func(m json.RawMessage) bool { return len(m) == 0 || string(m) == "null" }
	return u.CredentialsEmail == nil && len(u.CredentialsEmbed) == 0 && absent(u.CredentialsGoogle) &&
		absent(u.CredentialsSAML) && absent(u.CredentialsOIDC) && absent(u.CredentialsLDAP)
}

// CredentialsEmail is a user's email/password login.
type CredentialsEmail struct {
	Email            string `json:"email"`
	IsDisabled       bool   `json:"is_disabled"`
	LoggedInAt       string `json:"logged_in_at"`
	PasswordResetURL string `json:"password_reset_url"`
	AccountSetupURL  string `json:"account_setup_url"`
}

// Role, Group and UserAttribute are the named things a profile refers to.
type Role struct {
	ID   ID     `json:"id"`
	Name string `json:"name"`
}

// Group is a Looker group.
type Group struct {
	ID   ID     `json:"id"`
	Name string `json:"name"`
}

// UserAttribute is a Looker user attribute definition.
type UserAttribute struct {
	ID       ID     `json:"id"`
	Name     string `json:"name"`
	IsSystem bool   `json:"is_system"`
}

// UserAttributeValue is a user's value of one attribute.
type UserAttributeValue struct {
	UserAttributeID ID     `json:"user_attribute_id"`
	Name            string `json:"name"`
	Value           string `json:"value"`
	Source          string `json:"source"`
}

// userWrite holds the fields of User that Swagger 2 marks writable and we set.
type userWrite struct {
	FirstName  *string           `json:"first_name,omitempty"`
	LastName   *string           `json:"last_name,omitempty"`
	IsDisabled *bool             `json:"is_disabled,omitempty"`
	UIState    map[string]string `json:"ui_state,omitempty"`
}

// userFields include ui_state for the mark of the request that created the
// user (see Target.create).
const userFields = "id,first_name,last_name,email,is_disabled,role_ids,group_ids,credentials_email,ui_state"

const loginFields = "id,first_name,last_name,credentials_email,credentials_embed,credentials_google,credentials_saml,credentials_oidc,credentials_ldap"

func fieldsQuery(fields string) url.Values { return url.Values{"fields": {fields}} }

// UserByEmail finds the user whose email credential is email (Looker compares
// case-insensitively). It returns (nil, nil) when there is none.
func (c *Client) UserByEmail(ctx context.Context, email string) (*User, error) {
	return c.userForCredential(ctx, "email", email)
}

// UserByEmbedID finds the embed user with this external_user_id, or (nil, nil).
func (c *Client) UserByEmbedID(ctx context.Context, externalUserID string) (*User, error) {
	return c.userForCredential(ctx, "embed", externalUserID)
}

func (c *Client) userForCredential(ctx context.Context, kind, id string) (*User, error) {
	var u User
	err := c.call(ctx, request{
		method: http.MethodGet, op: "GET /users/credential/{credential_type}/{credential_id}",
		path:  "/users/credential/" + kind + "/" + url.PathEscape(id),
		query: fieldsQuery(userFields), idempotent: true,
	}, nil, &u)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// User returns the user with this id, or (nil, nil).
func (c *Client) User(ctx context.Context, id ID) (*User, error) {
	var u User
	err := c.call(ctx, request{
		method: http.MethodGet, op: "GET /users/{user_id}", path: "/users/" + url.PathEscape(string(id)),
		query: fieldsQuery(loginFields + ",email,is_disabled,role_ids,group_ids"), idempotent: true,
	}, nil, &u)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// Me returns the user the API credentials belong to (GET /user). It is
// asked once per client: the credentials, and so the user, live as long.
func (c *Client) Me(ctx context.Context) (*User, error) {
	c.mu.Lock()
	me := c.me
	c.mu.Unlock()
	if me != nil {
		return me, nil
	}
	var u User
	err := c.call(ctx, request{method: http.MethodGet, op: "GET /user", path: "/user", query: fieldsQuery("id,email"), idempotent: true}, nil, &u)
	if err != nil {
		return nil, err
	}
	if u.ID == "" {
		return nil, errors.New("looker: GET /user: answer carried no user id")
	}
	c.mu.Lock()
	c.me = &u
	c.mu.Unlock()
	return &u, nil
}

// SearchUserByEmail finds a user by any of its emails through search_users,
// which also sees users whose email comes from an identity provider. Search
// treats % and _ as wildcards, so only an exact case-insensitive match counts.
func (c *Client) SearchUserByEmail(ctx context.Context, email string) (*User, error) {
	var users []User
	err := c.call(ctx, request{
		method: http.MethodGet, op: "GET /users/search", path: "/users/search",
		query:      url.Values{"email": {email}, "fields": {userFields}, "limit": {"50"}},
		idempotent: true,
	}, nil, &users)
	if err != nil {
		return nil, err
	}
	for i := range users {
		u := &users[i]
		if strings.EqualFold(u.Email, email) || (u.CredentialsEmail != nil && strings.EqualFold(u.CredentialsEmail.Email, email)) {
			return u, nil
		}
	}
	return nil, nil
}

// markedPage is how many users one page of UserWithMark's search holds.
const markedPage = 100

// UserWithMark finds the user nobody can log in as yet whose ui_state holds
// key = mark. No search filters on ui_state, so it searches by the names
// the user was created with (LIKE patterns, so possibly more than the exact
// names) or, without names, lists every user, and decides by the mark alone.
// An empty mark matches nobody.
func (c *Client) UserWithMark(ctx context.Context, firstName, lastName, key, mark string) (*User, error) {
	if mark == "" {
		return nil, nil
	}
	q := url.Values{"fields": {loginFields + ",ui_state"}, "sorts": {"id"}, "limit": {strconv.Itoa(markedPage)}}
	if firstName != "" {
		q.Set("first_name", firstName)
	}
	if lastName != "" {
		q.Set("last_name", lastName)
	}
	for offset := 0; ; offset += markedPage {
		q.Set("offset", strconv.Itoa(offset))
		var users []User
		err := c.call(ctx, request{
			method: http.MethodGet, op: "GET /users/search", path: "/users/search", query: q, idempotent: true,
		}, nil, &users)
		if err != nil {
			return nil, err
		}
		for i := range users {
			if users[i].UIState[key] == mark && users[i].hasNoLogin() {
				return &users[i], nil
			}
		}
		if len(users) < markedPage {
			return nil, nil
		}
	}
}

// CreateUser creates a user with names and a ui_state: Swagger 2 marks email
// and credentials read-only on User, so the email credential is a second call.
func (c *Client) CreateUser(ctx context.Context, firstName, lastName string, uiState map[string]string) (*User, error) {
	var u User
	err := c.call(ctx, request{
		method: http.MethodPost, op: "POST /users", path: "/users", query: fieldsQuery(userFields),
	}, userWrite{FirstName: &firstName, LastName: &lastName, UIState: uiState}, &u)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// SetDisabled enables or disables a user.
func (c *Client) SetDisabled(ctx context.Context, id ID, disabled bool) error {
	return c.call(ctx, request{
		method: http.MethodPatch, op: "PATCH /users/{user_id}", path: "/users/" + url.PathEscape(string(id)),
		query: fieldsQuery("id,is_disabled"), idempotent: true,
	}, userWrite{IsDisabled: &disabled}, nil)
}

// SetNames sets a user's first and last name.
func (c *Client) SetNames(ctx context.Context, id ID, firstName, lastName string) error {
	return c.call(ctx, request{
		method: http.MethodPatch, op: "PATCH /users/{user_id}", path: "/users/" + url.PathEscape(string(id)),
		query: fieldsQuery("id"), idempotent: true,
	}, userWrite{FirstName: &firstName, LastName: &lastName}, nil)
}

// DeleteUser deletes a user for good.
func (c *Client) DeleteUser(ctx context.Context, id ID) error {
	err := c.call(ctx, request{
		method: http.MethodDelete, op: "DELETE /users/{user_id}", path: "/users/" + url.PathEscape(string(id)), idempotent: true,
	}, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// CreateEmailCredentials gives a user an email login.
func (c *Client) CreateEmailCredentials(ctx context.Context, id ID, email string) error {
	return c.call(ctx, request{
		method: http.MethodPost, op: "POST /users/{user_id}/credentials_email",
		path: "/users/" + url.PathEscape(string(id)) + "/credentials_email", query: fieldsQuery("email"),
	}, map[string]string{"email": email}, nil)
}

// SetupLink creates a password-reset token and returns a link a new user can
// set their password with. No expires parameter: invitation links should not
// die after Looker's 60 minutes.
func (c *Client) SetupLink(ctx context.Context, id ID) (string, error) {
	var cred CredentialsEmail
	// Retrying is safe: each call invalidates the previous token and we only keep the last.
	err := c.call(ctx, request{
		method: http.MethodPost, op: "POST /users/{user_id}/credentials_email/password_reset",
		path:  "/users/" + url.PathEscape(string(id)) + "/credentials_email/password_reset",
		query: fieldsQuery("email,logged_in_at,password_reset_url,account_setup_url"), idempotent: true,
	}, nil, &cred)
	if err != nil {
		return "", err
	}
	return setupURL(cred), nil
}

// setupURL prefers account_setup_url. Older instances only fill
// password_reset_url; for an account never logged into, the same token works
// on the account-setup page, which asks for names too.
func setupURL(cred CredentialsEmail) string {
	if cred.AccountSetupURL != "" {
		return cred.AccountSetupURL
	}
	if cred.LoggedInAt == "" {
		return strings.Replace(cred.PasswordResetURL, "/password/reset", "/account/setup", 1)
	}
	return cred.PasswordResetURL
}

// SendSetupEmail asks Looker to email the user a setup (or reset) link itself.
func (c *Client) SendSetupEmail(ctx context.Context, id ID) error {
	return c.call(ctx, request{
		method: http.MethodPost, op: "POST /users/{user_id}/credentials_email/send_password_reset",
		path:  "/users/" + url.PathEscape(string(id)) + "/credentials_email/send_password_reset",
		query: fieldsQuery("email"),
	}, nil, nil)
}

// DirectRoleIDs lists the roles given to the user directly, not through groups.
func (c *Client) DirectRoleIDs(ctx context.Context, id ID) ([]ID, error) {
	var roles []Role
	err := c.call(ctx, request{
		method: http.MethodGet, op: "GET /users/{user_id}/roles", path: "/users/" + url.PathEscape(string(id)) + "/roles",
		query: url.Values{"direct_association_only": {"true"}, "fields": {"id"}}, idempotent: true,
	}, nil, &roles)
	ids := make([]ID, len(roles))
	for i, r := range roles {
		ids[i] = r.ID
	}
	return ids, err
}

// SetRoles replaces the user's direct roles with ids.
func (c *Client) SetRoles(ctx context.Context, id ID, roleIDs []ID) error {
	return c.call(ctx, request{
		method: http.MethodPut, op: "PUT /users/{user_id}/roles", path: "/users/" + url.PathEscape(string(id)) + "/roles",
		query: fieldsQuery("id"), idempotent: true,
	}, roleIDs, nil)
}

// AddToGroup adds the user to a group; Looker answers 200 if already a member.
func (c *Client) AddToGroup(ctx context.Context, groupID, userID ID) error {
	return c.call(ctx, request{
		method: http.MethodPost, op: "POST /groups/{group_id}/users", path: "/groups/" + url.PathEscape(string(groupID)) + "/users",
		idempotent: true,
	}, map[string]ID{"user_id": userID}, nil)
}

// RemoveFromGroup takes the user out of a group. Looker answers 204, or
// 404 when there is nothing to remove, which is as good.
func (c *Client) RemoveFromGroup(ctx context.Context, groupID, userID ID) error {
	err := c.call(ctx, request{
		method: http.MethodDelete, op: "DELETE /groups/{group_id}/users/{user_id}",
		path:       "/groups/" + url.PathEscape(string(groupID)) + "/users/" + url.PathEscape(string(userID)),
		idempotent: true,
	}, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// AttributeValues returns the user's values of the given attributes, by attribute id.
func (c *Client) AttributeValues(ctx context.Context, id ID, attrIDs []ID) (map[ID]UserAttributeValue, error) {
	ids := make([]string, len(attrIDs))
	for i, a := range attrIDs {
		ids[i] = string(a)
	}
	var vals []UserAttributeValue
	err := c.call(ctx, request{
		method: http.MethodGet, op: "GET /users/{user_id}/attribute_values", path: "/users/" + url.PathEscape(string(id)) + "/attribute_values",
		query: url.Values{"user_attribute_ids": {strings.Join(ids, ",")}, "fields": {"user_attribute_id,name,value,source"}}, idempotent: true,
	}, nil, &vals)
	out := make(map[ID]UserAttributeValue, len(vals))
	for _, v := range vals {
		out[v.UserAttributeID] = v
	}
	return out, err
}

// SetAttributeValue sets the user's own value of one attribute.
func (c *Client) SetAttributeValue(ctx context.Context, userID, attrID ID, value string) error {
	return c.call(ctx, request{
		method: http.MethodPatch, op: "PATCH /users/{user_id}/attribute_values/{user_attribute_id}",
		path:       "/users/" + url.PathEscape(string(userID)) + "/attribute_values/" + url.PathEscape(string(attrID)),
		idempotent: true,
	}, map[string]string{"value": value}, nil)
}

// CreateEmbedUser creates an embed user keyed by external_user_id.
func (c *Client) CreateEmbedUser(ctx context.Context, externalUserID string) (ID, error) {
	var u struct {
		ID ID `json:"id"`
	}
	err := c.call(ctx, request{
		method: http.MethodPost, op: "POST /users/embed_user", path: "/users/embed_user",
	}, map[string]string{"external_user_id": externalUserID}, &u)
	return u.ID, err
}

// Roles, Groups and UserAttributes list what profiles can refer to by name.
func (c *Client) Roles(ctx context.Context) ([]Role, error) {
	var rs []Role
	err := c.call(ctx, request{method: http.MethodGet, op: "GET /roles", path: "/roles", query: fieldsQuery("id,name"), idempotent: true}, nil, &rs)
	return rs, err
}

// Groups lists every group.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var gs []Group
	err := c.call(ctx, request{method: http.MethodGet, op: "GET /groups", path: "/groups", query: fieldsQuery("id,name"), idempotent: true}, nil, &gs)
	return gs, err
}

// UserAttributes lists every user attribute definition.
func (c *Client) UserAttributes(ctx context.Context) ([]UserAttribute, error) {
	var as []UserAttribute
	err := c.call(ctx, request{method: http.MethodGet, op: "GET /user_attributes", path: "/user_attributes", query: fieldsQuery("id,name,is_system"), idempotent: true}, nil, &as)
	return as, err
}
