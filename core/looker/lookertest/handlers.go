package lookertest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const docURL = "https://cloud.google.com/looker/docs/r/api/4.0"

// resetLinkTTL is how long a password_reset link lives when expires=true.
const resetLinkTTL = 60 * time.Minute

type call struct {
	req    Request
	params map[string]string
}

func (c *call) decode(dst any) *reply {
	if err := json.Unmarshal(c.req.Body, dst); err != nil {
		return &reply{http.StatusBadRequest, apiError{"Looker could not parse the JSON body: " + err.Error(), docURL}}
	}
	return nil
}

type route struct {
	method       string
	segments     []string
	handle       func(*Server, *call) reply
	public       bool // served without a token
	deniedOnCore bool // 403 on Looker (Google Cloud core)
}

func newRoute(method, tmpl string, h func(*Server, *call) reply) route {
	return route{method: method, segments: splitPath(tmpl), handle: h}
}

var routes = []route{
	{method: "POST", segments: splitPath("/login"), handle: (*Server).login, public: true},
	newRoute("DELETE", "/logout", (*Server).logout),
	newRoute("GET", "/user", (*Server).me),
	newRoute("GET", "/users", (*Server).allUsers),
	newRoute("POST", "/users", (*Server).createUser),
	newRoute("GET", "/users/search", (*Server).searchUsers),
	newRoute("GET", "/users/credential/{credential_type}/{credential_id}", (*Server).userForCredential),
	newRoute("POST", "/users/embed_user", (*Server).createEmbedUser),
	newRoute("GET", "/users/{user_id}", (*Server).getUser),
	newRoute("PATCH", "/users/{user_id}", (*Server).updateUser),
	newRoute("DELETE", "/users/{user_id}", (*Server).deleteUser),
	onCore(newRoute("GET", "/users/{user_id}/credentials_email", (*Server).getCredentialsEmail)),
	onCore(newRoute("POST", "/users/{user_id}/credentials_email", (*Server).createCredentialsEmail)),
	onCore(newRoute("POST", "/users/{user_id}/credentials_email/password_reset", (*Server).passwordReset)),
	onCore(newRoute("POST", "/users/{user_id}/credentials_email/send_password_reset", (*Server).sendPasswordReset)),
	newRoute("GET", "/users/{user_id}/roles", (*Server).userRoles),
	newRoute("PUT", "/users/{user_id}/roles", (*Server).setUserRoles),
	newRoute("GET", "/users/{user_id}/attribute_values", (*Server).userAttributeValues),
	newRoute("PATCH", "/users/{user_id}/attribute_values/{user_attribute_id}", (*Server).setUserAttributeValue),
	newRoute("DELETE", "/users/{user_id}/attribute_values/{user_attribute_id}", (*Server).deleteUserAttributeValue),
	newRoute("GET", "/roles", (*Server).allRoles),
	newRoute("GET", "/roles/search", (*Server).searchRoles),
	newRoute("GET", "/groups", (*Server).allGroups),
	newRoute("GET", "/groups/search", (*Server).searchGroups),
	newRoute("POST", "/groups/{group_id}/users", (*Server).addGroupUser),
	newRoute("DELETE", "/groups/{group_id}/users/{user_id}", (*Server).deleteGroupUser),
	newRoute("GET", "/user_attributes", (*Server).allUserAttributes),
}

func onCore(rt route) route {
	rt.deniedOnCore = true
	return rt
}

// findRoute picks the most literal matching route, as the spec lookup does.
func findRoute(method string, segs []string) (*route, map[string]string) {
	var best *route
	bestLit := -1
	for i := range routes {
		rt := &routes[i]
		if rt.method != method {
			continue
		}
		if lit, ok := matchSegments(rt.segments, segs); ok && lit > bestLit {
			best, bestLit = rt, lit
		}
	}
	if best == nil {
		return nil, nil
	}
	params := map[string]string{}
	for i, t := range best.segments {
		if strings.HasPrefix(t, "{") {
			params[strings.Trim(t, "{}")] = segs[i]
		}
	}
	return best, params
}

// ---- error replies ----

func notFound() apiError { return apiError{"Not found", docURL} }

func errReply(status int, msg string) reply { return reply{status, apiError{msg, docURL}} }

func notFoundReply() reply { return reply{http.StatusNotFound, notFound()} }

func unsupportedOnCore() reply {
	return errReply(http.StatusForbidden, "Unsupported in Looker (Google Cloud core)")
}

func validationFailed(field, code, msg string) reply {
	return reply{http.StatusUnprocessableEntity, validationError{
		Message:          "Validation Failed",
		Errors:           []validationErrorDetail{{Field: field, Code: code, Message: msg, DocumentationURL: docURL}},
		DocumentationURL: docURL,
	}}
}

func okReply(body any) reply { return reply{http.StatusOK, body} }

func noContent() reply { return reply{http.StatusNoContent, nil} }

// ---- auth ----

func (s *Server) login(c *call) reply {
	if c.req.Query.Has("client_id") || c.req.Query.Has("client_secret") {
		return errReply(http.StatusBadRequest, "client_id and client_secret must be sent in the form body, not the query string")
	}
	form, err := url.ParseQuery(string(c.req.Body))
	if mt, _, _ := mime.ParseMediaType(c.req.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return errReply(http.StatusBadRequest, "login expects an application/x-www-form-urlencoded body")
	}
	if form.Get("client_id") != s.opts.ClientID || form.Get("client_secret") != s.opts.ClientSecret {
		return notFoundReply()
	}
	tok := newToken()
	s.tokens[tok] = s.opts.Now().Add(s.opts.TokenTTL)
	return okReply(accessToken{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(s.opts.TokenTTL / time.Second)})
}

func (s *Server) logout(c *call) reply {
	_, tok, _ := strings.Cut(strings.TrimSpace(c.req.Header.Get("Authorization")), " ")
	delete(s.tokens, strings.TrimSpace(tok))
	return noContent()
}

// ---- users ----

func (u *user) primaryEmail() string {
	if u.email != nil {
		return u.email.email
	}
	return u.idpEmail
}

// byID lists a store's values in id order, the order Looker lists them in.
func byID[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, k := range slices.SortedFunc(maps.Keys(m), compareIDs) {
		out = append(out, m[k])
	}
	return out
}

// withIDs keeps the items named in a csv ids parameter; empty keeps all.
func withIDs[T any](csv string, items []T, id func(T) string) []T {
	if csv == "" {
		return items
	}
	want := strings.Split(csv, ",")
	return slices.DeleteFunc(items, func(it T) bool { return !slices.Contains(want, id(it)) })
}

func compareIDs(a, b string) int {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	if aerr == nil && berr == nil {
		return ai - bi
	}
	return strings.Compare(a, b)
}

func (s *Server) userByEmailCred(email string) *user {
	for _, u := range s.users {
		if u.email != nil && strings.EqualFold(u.email.email, email) {
			return u
		}
	}
	return nil
}

func (s *Server) render(u *user) User {
	out := User{
		ID: u.id, FirstName: u.firstName, LastName: u.lastName,
		DisplayName: strings.TrimSpace(u.firstName + " " + u.lastName),
		Email:       u.primaryEmail(), IsDisabled: u.disabled,
		Locale: u.locale, HomeFolderID: u.homeFolderID, ModelsDirValidated: u.modelsDirValidated,
		UIState: u.uiState, CanManageAPI3Creds: u.canManageAPI3Creds,
		RoleIDs: append([]string{}, u.roleIDs...), GroupIDs: append([]string{}, u.groupIDs...),
		CredentialsEmbed: []CredentialsEmbed{}, CredentialsAPI3: []struct{}{}, Sessions: []struct{}{},
		AllowDirectRoles: true, AllowNormalGroupMembership: true, AllowRolesFromNormalGroups: true,
		AvatarURL: s.URL + "/avatar/" + u.id, URL: s.URL + APIPrefix + "/users/" + u.id,
	}
	if u.email != nil {
		out.CredentialsEmail = s.renderEmailCred(u)
	}
	if u.embed != nil {
		out.CredentialsEmbed = append(out.CredentialsEmbed, CredentialsEmbed{
			ID: u.embed.id, ExternalUserID: u.embed.externalUserID, CreatedAt: formatTime(u.embed.createdAt),
			LoggedInAt: timePtr(u.loggedInAt), IsDisabled: u.disabled, Type: "embed",
			URL: out.URL + "/credentials_embed/" + u.embed.id,
		})
	}
	if u.idpEmail != "" {
		out.CredentialsGoogle = &CredentialsGoogle{
			Email: u.idpEmail, GoogleUserID: "g-" + u.id, Domain: domainOf(u.idpEmail),
			CreatedAt: formatTime(u.createdAt), LoggedInAt: timePtr(u.loggedInAt), IsDisabled: u.disabled, Type: "google",
		}
	}
	return out
}

func domainOf(email string) string {
	_, d, _ := strings.Cut(email, "@")
	return d
}

func (s *Server) renderEmailCred(u *user) *CredentialsEmail {
	e := u.email
	userURL := s.URL + APIPrefix + "/users/" + u.id
	out := &CredentialsEmail{
		Email: e.email, CreatedAt: formatTime(e.createdAt), LoggedInAt: timePtr(u.loggedInAt),
		IsDisabled: u.disabled, ForcedPasswordResetAtNextLogin: e.forcedReset, UserID: u.id,
		Type: "email", URL: userURL + "/credentials_email", UserURL: userURL,
	}
	if e.resetToken != "" {
		out.PasswordResetURL = ptr(s.URL + "/password/reset/" + e.resetToken)
		out.PasswordResetURLExpired = e.resetExpires && !s.opts.Now().Before(e.resetIssued.Add(resetLinkTTL))
		if s.opts.AccountSetupURL && u.loggedInAt == nil {
			out.AccountSetupURL = ptr(s.URL + "/account/setup/" + e.resetToken)
			out.AccountSetupURLExpired = out.PasswordResetURLExpired
		}
	}
	return out
}

// userParam resolves {user_id}, or answers 404.
func (s *Server) userParam(c *call) (*user, *reply) {
	if u := s.users[c.params["user_id"]]; u != nil {
		return u, nil
	}
	rp := notFoundReply()
	return nil, &rp
}

func (s *Server) getUser(c *call) reply {
	u, rp := s.userParam(c)
	if rp != nil {
		return *rp
	}
	return okReply(s.render(u))
}

// unlistedAPIUserID is the id of the API user of a fake seeded without one.
const unlistedAPIUserID = "api"

func (s *Server) me(*call) reply {
	if u := s.users[s.apiUser]; u != nil {
		return okReply(s.render(u))
	}
	return okReply(User{ID: unlistedAPIUserID})
}

func (s *Server) allUsers(c *call) reply {
	users := withIDs(c.req.Query.Get("ids"), byID(s.users), func(u *user) string { return u.id })
	return okReply(s.renderUsers(paginate(c.req.Query, users)))
}

func (s *Server) renderUsers(users []*user) []User {
	out := []User{}
	for _, u := range users {
		out = append(out, s.render(u))
	}
	return out
}

func (s *Server) searchUsers(c *call) reply {
	users := search(c.req.Query, byID(s.users), searchSpec[*user]{
		like: map[string]func(*user) string{
			"email":      (*user).primaryEmail,
			"first_name": func(u *user) string { return u.firstName },
			"last_name":  func(u *user) string { return u.lastName },
			"full_name":  func(u *user) string { return strings.TrimSpace(u.firstName + " " + u.lastName) },
		},
		bools: map[string]func(*user) bool{
			"is_disabled":              func(u *user) bool { return u.disabled },
			"embed_user":               func(u *user) bool { return u.embed != nil },
			"verified_looker_employee": func(*user) bool { return false },
			"is_service_account":       func(*user) bool { return false },
			"can_manage_api3_creds":    func(u *user) bool { return u.canManageAPI3Creds },
		},
		ids: map[string]func(*user) []string{
			"id":       func(u *user) []string { return []string{u.id} },
			"group_id": func(u *user) []string { return u.groupIDs },
		},
	})
	return okReply(s.renderUsers(users))
}

func (s *Server) userForCredential(c *call) reply {
	typ, id := c.params["credential_type"], c.params["credential_id"]
	if typ == "email" && s.opts.GoogleCloudCore {
		return unsupportedOnCore()
	}
	for _, u := range byID(s.users) {
		switch {
		case typ == "email" && u.email != nil && strings.EqualFold(u.email.email, id),
			typ == "embed" && u.embed != nil && u.embed.externalUserID == id,
			typ == "google" && u.idpEmail != "" && "g-"+u.id == id:
			return okReply(s.render(u))
		}
	}
	return notFoundReply()
}

// userWritable is the body of create_user/update_user keyed by property, so
// that "absent" and "null" differ: PATCH touches only the fields sent.
type userWritable map[string]json.RawMessage

// apply writes the writable Swagger-2 User fields; readOnly ones (email,
// role_ids, credentials_*, ...) are dropped silently, as Looker drops them.
func (w userWritable) apply(u *user) error {
	var first, last *string
	var disabled, canManage *bool
	// ui_state is decoded into a map of its own: decoding into the user's
	// would merge keys, and into a map an unapplied PATCH still shares.
	var uiState map[string]string
	targets := map[string]any{
		"first_name": &first, "last_name": &last, "is_disabled": &disabled,
		"locale": &u.locale, "home_folder_id": &u.homeFolderID,
		"models_dir_validated": &u.modelsDirValidated, "ui_state": &uiState,
		"can_manage_api3_creds": &canManage,
	}
	for _, k := range sortedKeys(w) {
		if dst, writable := targets[k]; writable {
			if err := json.Unmarshal(w[k], dst); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	if _, sent := w["first_name"]; sent {
		u.firstName = deref(first)
	}
	if _, sent := w["last_name"]; sent {
		u.lastName = deref(last)
	}
	if _, sent := w["ui_state"]; sent {
		u.uiState = uiState
	}
	if disabled != nil {
		u.disabled = *disabled
	}
	if canManage != nil {
		u.canManageAPI3Creds = *canManage
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) createUser(c *call) reply {
	w := userWritable{}
	if len(strings.TrimSpace(string(c.req.Body))) > 0 {
		if rp := c.decode(&w); rp != nil {
			return *rp
		}
	}
	u := &user{id: s.newID(), createdAt: s.opts.Now(), attrValues: map[string]string{}}
	if err := w.apply(u); err != nil {
		return validationFailed("body", "invalid", err.Error())
	}
	s.users[u.id] = u
	return okReply(s.render(u))
}

func (s *Server) updateUser(c *call) reply {
	u, rp := s.userParam(c)
	if rp != nil {
		return *rp
	}
	w := userWritable{}
	if rp := c.decode(&w); rp != nil {
		return *rp
	}
	next := *u
	if err := w.apply(&next); err != nil {
		return validationFailed("body", "invalid", err.Error())
	}
	*u = next
	return okReply(s.render(u))
}

func (s *Server) deleteUser(c *call) reply {
	u, rp := s.userParam(c)
	if rp != nil {
		return *rp
	}
	delete(s.users, u.id)
	return noContent()
}

// ---- email credentials ----

func (s *Server) getCredentialsEmail(c *call) reply {
	u, rp := s.emailCredParam(c)
	if rp != nil {
		return *rp
	}
	return okReply(s.renderEmailCred(u))
}

func (s *Server) emailCredParam(c *call) (*user, *reply) {
	u, rp := s.userParam(c)
	if rp == nil && u.email == nil {
		nf := notFoundReply()
		return nil, &nf
	}
	return u, rp
}

func (s *Server) createCredentialsEmail(c *call) reply {
	u, rp := s.userParam(c)
	if rp != nil {
		return *rp
	}
	var body struct {
		Email       *string `json:"email"`
		ForcedReset bool    `json:"forced_password_reset_at_next_login"`
	}
	if rp := c.decode(&body); rp != nil {
		return *rp
	}
	email := strings.TrimSpace(deref(body.Email))
	if !validEmail(email) {
		return validationFailed("email", "invalid", fmt.Sprintf("%q is not a valid email address", email))
	}
	if u.email != nil || s.userByEmailCred(email) != nil {
		return errReply(http.StatusConflict, "Resource Already Exists")
	}
	u.email = &emailCred{email: email, createdAt: s.opts.Now(), forcedReset: body.ForcedReset}
	return okReply(s.renderEmailCred(u))
}

// validEmail accepts a bare addr-spec with a dotted domain, which is about
// what Looker accepts; display names ("Ann <a@x.com>") are refused.
func validEmail(email string) bool {
	a, err := mail.ParseAddress(email)
	return err == nil && a.Address == email && strings.Contains(domainOf(email), ".")
}

func (s *Server) passwordReset(c *call) reply {
	u, rp := s.emailCredParam(c)
	if rp != nil {
		return *rp
	}
	e := u.email
	e.resetToken = newToken()
	e.resetIssued = s.opts.Now()
	e.resetExpires = c.req.Query.Get("expires") == "true"
	out := s.renderEmailCred(u)
	s.resets = append(s.resets, PasswordReset{
		UserID: u.id, Email: e.email, URL: *out.PasswordResetURL,
		ExpiresSent: c.req.Query.Has("expires"), Expires: e.resetExpires,
	})
	return okReply(out)
}

func (s *Server) sendPasswordReset(c *call) reply {
	u, rp := s.emailCredParam(c)
	if rp != nil {
		return *rp
	}
	s.sent = append(s.sent, u.email.email)
	return okReply(s.renderEmailCred(u))
}

// ---- embed users ----

func (s *Server) createEmbedUser(c *call) reply {
	var body struct {
		ExternalUserID string `json:"external_user_id"`
	}
	if rp := c.decode(&body); rp != nil {
		return *rp
	}
	if body.ExternalUserID == "" {
		return validationFailed("external_user_id", "missing", "external_user_id is required")
	}
	for _, u := range s.users {
		if u.embed != nil && u.embed.externalUserID == body.ExternalUserID {
			return errReply(http.StatusConflict, "Resource Already Exists")
		}
	}
	now := s.opts.Now()
	u := &user{id: s.newID(), createdAt: now, attrValues: map[string]string{}}
	u.embed = &embedCred{id: s.newID(), externalUserID: body.ExternalUserID, createdAt: now}
	s.users[u.id] = u
	full := s.render(u)
	return okReply(userPublic{ID: full.ID, FirstName: full.FirstName, LastName: full.LastName,
		DisplayName: full.DisplayName, AvatarURL: full.AvatarURL, URL: full.URL})
}

// ---- roles ----

func (s *Server) renderRoles(roles []*role) []roleJSON {
	out := []roleJSON{}
	for _, r := range roles {
		u := s.URL + APIPrefix + "/roles/" + r.id
		out = append(out, roleJSON{ID: r.id, Name: r.name, URL: u, UsersURL: u + "/users"})
	}
	return out
}

func (s *Server) allRoles(c *call) reply {
	return okReply(s.renderRoles(withIDs(c.req.Query.Get("ids"), byID(s.roles), func(r *role) string { return r.id })))
}

func (s *Server) searchRoles(c *call) reply {
	return okReply(s.renderRoles(search(c.req.Query, byID(s.roles), searchSpec[*role]{
		like: map[string]func(*role) string{"name": func(r *role) string { return r.name }},
		ids:  map[string]func(*role) []string{"id": func(r *role) []string { return []string{r.id} }},
	})))
}

func (s *Server) userRoles(c *call) reply {
	u, rp := s.userParam(c)
	if rp != nil {
		return *rp
	}
	// Roles only come directly in this fake, so direct_association_only
	// changes nothing.
	var roles []*role
	for _, id := range u.roleIDs {
		roles = append(roles, s.roles[id])
	}
	return okReply(s.renderRoles(roles))
}

func (s *Server) setUserRoles(c *call) reply {
	u, rp := s.userParam(c)
	if rp != nil {
		return *rp
	}
	var raw []json.RawMessage
	if rp := c.decode(&raw); rp != nil {
		return *rp
	}
	ids := []string{}
	for _, r := range raw {
		id, _ := idString(r)
		if s.roles[id] == nil {
			return validationFailed("role_ids", "invalid", fmt.Sprintf("role %s does not exist", r))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	u.roleIDs = ids
	return s.userRoles(c)
}

// ---- groups ----

func (s *Server) renderGroups(groups []*group) []groupJSON {
	out := []groupJSON{}
	for _, g := range groups {
		n := 0
		for _, u := range s.users {
			if slices.Contains(u.groupIDs, g.id) {
				n++
			}
		}
		out = append(out, groupJSON{ID: g.id, Name: g.name, UserCount: n, CanAddToContentMetadata: true})
	}
	return out
}

func (s *Server) allGroups(c *call) reply {
	groups := withIDs(c.req.Query.Get("ids"), byID(s.groups), func(g *group) string { return g.id })
	return okReply(s.renderGroups(paginate(c.req.Query, groups)))
}

func (s *Server) searchGroups(c *call) reply {
	return okReply(s.renderGroups(search(c.req.Query, byID(s.groups), searchSpec[*group]{
		like: map[string]func(*group) string{"name": func(g *group) string { return g.name }},
		ids:  map[string]func(*group) []string{"id": func(g *group) []string { return []string{g.id} }},
		bools: map[string]func(*group) bool{
			"externally_managed":  func(*group) bool { return false },
			"externally_orphaned": func(*group) bool { return false },
		},
	})))
}

func (s *Server) addGroupUser(c *call) reply {
	g := s.groups[c.params["group_id"]]
	if g == nil {
		return notFoundReply()
	}
	var body struct {
		UserID json.RawMessage `json:"user_id"`
	}
	if rp := c.decode(&body); rp != nil {
		return *rp
	}
	id, _ := idString(body.UserID)
	u := s.users[id]
	if u == nil {
		return notFoundReply()
	}
	if !slices.Contains(u.groupIDs, g.id) {
		u.groupIDs = append(u.groupIDs, g.id)
	}
	return okReply(s.render(u))
}

func (s *Server) deleteGroupUser(c *call) reply {
	if s.groups[c.params["group_id"]] == nil {
		return notFoundReply()
	}
	u, rp := s.userParam(c)
	if rp != nil {
		return *rp
	}
	u.groupIDs = slices.DeleteFunc(u.groupIDs, func(id string) bool { return id == c.params["group_id"] })
	return noContent()
}

// ---- user attributes ----

func (s *Server) allUserAttributes(*call) reply {
	out := []userAttributeJSON{}
	for _, a := range byID(s.attrs) {
		out = append(out, userAttributeJSON{
			ID: a.id, Name: a.name, Label: a.name, Type: "string",
			IsSystem: a.isSystem, IsPermanent: a.isSystem, UserCanView: true, UserCanEdit: !a.isSystem,
		})
	}
	return okReply(out)
}

func (s *Server) attrValue(u *user, a *userAttr, value *string) userAttributeWithValueJSON {
	out := userAttributeWithValueJSON{
		Name: a.name, Label: a.name, Value: value, UserID: u.id,
		UserCanEdit: !a.isSystem, UserAttributeID: a.id,
	}
	if value != nil {
		out.Rank, out.Source = ptr(1), ptr("user")
	}
	return out
}

func (s *Server) userAttributeValues(c *call) reply {
	u, rp := s.userParam(c)
	if rp != nil {
		return *rp
	}
	out := []userAttributeWithValueJSON{}
	attrs := withIDs(c.req.Query.Get("user_attribute_ids"), byID(s.attrs), func(a *userAttr) string { return a.id })
	for _, a := range attrs {
		// Without include_unset Looker lists only attributes that have a
		// value; this fake has no defaults or group values.
		if v, set := u.attrValues[a.id]; set {
			out = append(out, s.attrValue(u, a, &v))
		} else if c.req.Query.Get("include_unset") == "true" {
			out = append(out, s.attrValue(u, a, nil))
		}
	}
	return okReply(out)
}

// attrParams resolves {user_id} and {user_attribute_id} and refuses system
// attributes, whose values Looker derives from the user itself.
func (s *Server) attrParams(c *call) (*user, *userAttr, *reply) {
	u, rp := s.userParam(c)
	if rp != nil {
		return nil, nil, rp
	}
	a := s.attrs[c.params["user_attribute_id"]]
	if a == nil {
		nf := notFoundReply()
		return nil, nil, &nf
	}
	if a.isSystem {
		forbidden := errReply(http.StatusForbidden, fmt.Sprintf("Cannot set or delete a value for the system user attribute %q", a.name))
		return nil, nil, &forbidden
	}
	return u, a, nil
}

func (s *Server) setUserAttributeValue(c *call) reply {
	u, a, rp := s.attrParams(c)
	if rp != nil {
		return *rp
	}
	var body struct {
		Value *string `json:"value"`
	}
	if rp := c.decode(&body); rp != nil {
		return *rp
	}
	if body.Value == nil {
		return validationFailed("value", "missing", "value is required")
	}
	u.attrValues[a.id] = *body.Value
	return okReply(s.attrValue(u, a, body.Value))
}

func (s *Server) deleteUserAttributeValue(c *call) reply {
	u, a, rp := s.attrParams(c)
	if rp != nil {
		return *rp
	}
	delete(u.attrValues, a.id)
	return noContent()
}

// ---- search, paging, fields, numeric ids ----

// searchSpec maps Looker search parameters to item accessors: like params are
// case-insensitive SQL LIKE patterns, bools compare "true"/"false", and ids
// take a comma-separated list (Looker ORs the values).
type searchSpec[T any] struct {
	like  map[string]func(T) string
	bools map[string]func(T) bool
	ids   map[string]func(T) []string
}

func search[T any](q url.Values, items []T, spec searchSpec[T]) []T {
	var preds []func(T) bool
	for name, get := range spec.like {
		if q.Has(name) {
			pat := q.Get(name)
			preds = append(preds, func(it T) bool { return like(pat, get(it)) })
		}
	}
	for name, get := range spec.bools {
		if q.Has(name) {
			want := q.Get(name) == "true"
			preds = append(preds, func(it T) bool { return get(it) == want })
		}
	}
	for name, get := range spec.ids {
		if q.Has(name) {
			want := strings.Split(q.Get(name), ",")
			preds = append(preds, func(it T) bool {
				return slices.ContainsFunc(get(it), func(id string) bool { return slices.Contains(want, id) })
			})
		}
	}
	or := q.Get("filter_or") == "true"
	out := []T{}
	for _, it := range items {
		if len(preds) == 0 || matchAll(preds, it, or) {
			out = append(out, it)
		}
	}
	if sorts := q.Get("sorts"); sorts != "" {
		sortBy(out, sorts, spec.like)
	}
	return paginate(q, out)
}

// matchAll ANDs the predicates, or ORs them when or is set (filter_or).
func matchAll[T any](preds []func(T) bool, it T, or bool) bool {
	for _, p := range preds {
		if p(it) == or {
			return or
		}
	}
	return !or
}

// idString reads an id sent as a JSON string or number; the spec says
// string, and the validator reports numbers, but the fake still serves them.
func idString(raw json.RawMessage) (string, bool) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	}
	return "", false
}

// sortBy applies Looker's "field [desc], ..." sorts over the like fields.
func sortBy[T any](items []T, sorts string, fields map[string]func(T) string) {
	keys := strings.Split(sorts, ",")
	slices.SortStableFunc(items, func(a, b T) int {
		for _, k := range keys {
			name, dir, _ := strings.Cut(strings.TrimSpace(k), " ")
			get, ok := fields[name]
			if !ok {
				continue
			}
			cmp := strings.Compare(strings.ToLower(get(a)), strings.ToLower(get(b)))
			if strings.EqualFold(dir, "desc") {
				cmp = -cmp
			}
			if cmp != 0 {
				return cmp
			}
		}
		return 0
	})
}

func paginate[T any](q url.Values, items []T) []T {
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = min(max(offset, 0), len(items))
	items = items[offset:]
	if limit, err := strconv.Atoi(q.Get("limit")); err == nil && limit >= 0 && limit < len(items) {
		items = items[:limit]
	}
	return items
}

// like is SQL LIKE, case-insensitive: % is any run, _ any one character.
// Looker searches work this way, so "a_b@x.com" also finds "axb@x.com".
func like(pattern, s string) bool {
	p := []rune(strings.ToLower(pattern))
	t := []rune(strings.ToLower(s))
	// Iterative matcher with backtracking to the last %.
	pi, ti, star, mark := 0, 0, -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '_' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '%':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}

// fieldSet is a parsed fields parameter: name -> nested selection (nil = all).
type fieldSet map[string]fieldSet

// parseFields reads Looker's "id,credentials_email(email,created_at)" syntax.
func parseFields(s string) fieldSet {
	fs, _ := parseFieldList(s)
	return fs
}

func parseFieldList(s string) (fieldSet, string) {
	fs := fieldSet{}
	for {
		end := strings.IndexAny(s, ",()")
		name := s
		if end >= 0 {
			name = s[:end]
		}
		name = strings.TrimSpace(name)
		if end < 0 {
			if name != "" {
				fs[name] = nil
			}
			return fs, ""
		}
		switch s[end] {
		case '(':
			sub, rest := parseFieldList(s[end+1:])
			fs[name] = sub
			s = strings.TrimPrefix(rest, ",")
		case ')':
			if name != "" {
				fs[name] = nil
			}
			return fs, s[end+1:]
		default:
			if name != "" {
				fs[name] = nil
			}
			s = s[end+1:]
		}
	}
}

func selectFields(v any, fs fieldSet) any {
	switch t := v.(type) {
	case []any:
		for i := range t {
			t[i] = selectFields(t[i], fs)
		}
	case map[string]any:
		for k := range t {
			sub, keep := fs[k]
			if !keep {
				delete(t, k)
			} else if sub != nil {
				t[k] = selectFields(t[k], sub)
			}
		}
	}
	return v
}

// idKeys are the properties that hold Looker database ids, the ones Looker
// has sent as numbers. Folder ids and external ids are not numeric in Looker.
var idKeys = map[string]bool{"id": true, "user_id": true, "user_attribute_id": true, "role_ids": true, "group_ids": true}

func numberIDs(v any, key string) any {
	switch t := v.(type) {
	case []any:
		for i := range t {
			t[i] = numberIDs(t[i], key)
		}
	case map[string]any:
		for k := range t {
			t[k] = numberIDs(t[k], k)
		}
	case string:
		if idKeys[key] {
			if _, err := strconv.ParseInt(t, 10, 64); err == nil {
				return json.Number(t)
			}
		}
	}
	return v
}

// newEncoder keeps URLs readable (no \u0026), as Looker sends them.
func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
