package lookertest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/internal/fakehttp"
)

func TestLogin(t *testing.T) {
	creds := url.Values{"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}}
	tests := []struct {
		name          string
		query         url.Values
		form          url.Values
		want          int
		wantViolation bool
	}{
		{"form body", nil, creds, http.StatusOK, false},
		{"credentials in query", creds, url.Values{}, http.StatusBadRequest, true},
		{"wrong secret", nil, url.Values{"client_id": {DefaultClientID}, "client_secret": {"nope"}}, http.StatusNotFound, false},
		{"unknown client", nil, url.Values{"client_id": {"x"}, "client_secret": {DefaultClientSecret}}, http.StatusNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, v := newRecordingFake(t, Options{})
			c.token = ""
			r := c.call("POST", "/login", tt.query, tt.form, tt.want, nil)
			if tt.want == http.StatusOK {
				var tok map[string]any
				if err := json.Unmarshal(r.body, &tok); err != nil || tok["token_type"] != "Bearer" || tok["expires_in"] != 3600.0 || tok["refresh_token"] != nil || tok["access_token"] == "" {
					t.Errorf("AccessToken = %s", r.body)
				}
			} else if e := c.errorBody(r); tt.want == http.StatusNotFound && e.Message != "Not found" {
				t.Errorf("message = %q, want Looker's %q", e.Message, "Not found")
			}
			if got := len(v.all()) > 0; got != tt.wantViolation {
				t.Errorf("violations = %v, want violation %v", v.all(), tt.wantViolation)
			}
		})
	}
}

func TestLoginHonoursTokenTTL(t *testing.T) {
	_, c := newFake(t, Options{TokenTTL: 90 * time.Second, ClientID: "id", ClientSecret: "secret"})
	var tok accessToken
	c.call("POST", "/login", nil, url.Values{"client_id": {"id"}, "client_secret": {"secret"}}, http.StatusOK, &tok)
	if tok.ExpiresIn != 90 {
		t.Errorf("expires_in = %d, want 90", tok.ExpiresIn)
	}
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *Server, c *client, clock *fakeClock)
		want  int
	}{
		{"token scheme", func(*Server, *client, *fakeClock) {}, http.StatusOK},
		{"no header", func(_ *Server, c *client, _ *fakeClock) { c.token = "" }, http.StatusUnauthorized},
		{"unknown token", func(_ *Server, c *client, _ *fakeClock) { c.token = "deadbeef" }, http.StatusUnauthorized},
		{"revoked", func(s *Server, _ *client, _ *fakeClock) { s.RevokeTokens() }, http.StatusUnauthorized},
		{"just before expiry", func(_ *Server, _ *client, k *fakeClock) { k.Advance(time.Hour - time.Second) }, http.StatusOK},
		{"expired", func(_ *Server, _ *client, k *fakeClock) { k.Advance(time.Hour) }, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			s, c := newFake(t, Options{Now: clock.Now})
			tt.setup(s, c, clock)
			r := c.call("GET", "/roles", nil, nil, tt.want, nil)
			if tt.want == http.StatusUnauthorized && c.errorBody(r).Message != "Requires authentication." {
				t.Errorf("401 body = %s", r.body)
			}
		})
	}
}

func TestBearerSchemeAccepted(t *testing.T) {
	s, c := newFake(t, Options{})
	req, _ := http.NewRequest("GET", s.URL+APIPrefix+"/roles", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
}

func TestUserLifecycle(t *testing.T) {
	s, c := newFake(t, Options{})
	u := c.newUser("Ada", "Lovelace", "Ada.Lovelace@Example.com")

	var found User
	c.call("GET", "/users/credential/email/"+url.PathEscape("ada.lovelace@example.COM"), nil, nil, http.StatusOK, &found)
	if found.ID != u.ID || found.CredentialsEmail == nil || found.CredentialsEmail.Email != "Ada.Lovelace@Example.com" ||
		found.Email != "Ada.Lovelace@Example.com" || found.DisplayName != "Ada Lovelace" || found.CredentialsEmail.LoggedInAt != nil {
		t.Fatalf("lookup by email = %+v", found)
	}
	c.call("GET", "/users/credential/email/nobody@example.com", nil, nil, http.StatusNotFound, nil)

	var patched User
	c.call("PATCH", "/users/"+u.ID, nil, map[string]any{"is_disabled": true}, http.StatusOK, &patched)
	if !patched.IsDisabled || patched.FirstName != "Ada" {
		t.Errorf("PATCH is partial: got %+v", patched)
	}
	c.call("PATCH", "/users/"+u.ID, nil, map[string]any{"last_name": nil}, http.StatusOK, &patched)
	if patched.LastName != "" || !patched.IsDisabled {
		t.Errorf("PATCH null clears only that field: got %+v", patched)
	}
	if got, _ := s.UserByEmail("ADA.LOVELACE@example.com"); got.ID != u.ID {
		t.Errorf("UserByEmail = %+v", got)
	}

	r := c.call("DELETE", "/users/"+u.ID, nil, nil, http.StatusNoContent, nil)
	if len(r.body) != 0 {
		t.Errorf("DELETE body = %q, want empty", r.body)
	}
	c.call("GET", "/users/"+u.ID, nil, nil, http.StatusNotFound, nil)
	// The email is free again once its user is gone.
	c.newUser("Ada", "Again", "ada.lovelace@example.com")
}

func TestCreateUserIgnoresReadOnlyFields(t *testing.T) {
	_, c, v := newRecordingFake(t, Options{})
	var u User
	c.call("POST", "/users", nil, map[string]any{"first_name": "A", "email": "a@x.com", "role_ids": []string{"1"}}, http.StatusOK, &u)
	if u.Email != "" || u.CredentialsEmail != nil || len(u.RoleIDs) != 0 {
		t.Errorf("readOnly fields took effect: %+v", u)
	}
	if len(v.all()) != 1 {
		t.Errorf("violations = %v, want exactly one", v.all())
	}
}

// ui_state is the one writable object on User: a client can keep its own
// keys there, and the fake stores, returns and replaces it as a whole.
func TestUIState(t *testing.T) {
	s, c := newFake(t, Options{})
	var u User
	c.call("POST", "/users", nil, map[string]any{"first_name": "Ada", "ui_state": map[string]string{"mark": "m-1"}}, http.StatusOK, &u)
	if u.UIState["mark"] != "m-1" {
		t.Fatalf("create answered ui_state %v", u.UIState)
	}
	var got User
	c.call("GET", "/users/"+u.ID, url.Values{"fields": {"id,ui_state"}}, nil, http.StatusOK, &got)
	if got.UIState["mark"] != "m-1" || got.FirstName != "" {
		t.Errorf("GET with fields=id,ui_state: %+v", got)
	}
	var found []User
	c.call("GET", "/users/search", url.Values{"first_name": {"Ada"}, "fields": {"id,ui_state"}}, nil, http.StatusOK, &found)
	if len(found) != 1 || found[0].UIState["mark"] != "m-1" {
		t.Errorf("search: %+v", found)
	}
	var replaced, cleared User
	c.call("PATCH", "/users/"+u.ID, nil, map[string]any{"ui_state": map[string]string{"other": "x"}}, http.StatusOK, &replaced)
	if len(replaced.UIState) != 1 || replaced.UIState["other"] != "x" {
		t.Errorf("PATCH ui_state must replace the dictionary: %v", replaced.UIState)
	}
	c.call("PATCH", "/users/"+u.ID, nil, map[string]any{"ui_state": nil}, http.StatusOK, &cleared)
	if cleared.UIState != nil {
		t.Errorf("PATCH ui_state null: %v", cleared.UIState)
	}
	if all := s.Users(); len(all) != 1 || all[0].UIState != nil {
		t.Errorf("stored: %+v", all)
	}
}

func TestCreateCredentialsEmailErrors(t *testing.T) {
	tests := []struct {
		name      string
		email     string
		sameUser  bool // the target already has email credentials
		want      int
		wantField string
	}{
		{"email of another user, other case", "TAKEN@example.com", false, http.StatusConflict, ""},
		{"user already has credentials", "fresh@example.com", true, http.StatusConflict, ""},
		{"no at sign", "not-an-email", false, http.StatusUnprocessableEntity, "email"},
		{"display name form", "Ann <ann@example.com>", false, http.StatusUnprocessableEntity, "email"},
		{"empty", "", false, http.StatusUnprocessableEntity, "email"},
		{"valid", "fresh@example.com", false, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newFake(t, Options{})
			c.newUser("T", "Aken", "taken@example.com")
			target := c.newUser("N", "Ew", "")
			if tt.sameUser {
				target = c.newUser("N", "Ew", "mine@example.com")
			}
			r := c.call("POST", "/users/"+target.ID+"/credentials_email", nil, map[string]any{"email": tt.email}, tt.want, nil)
			switch tt.want {
			case http.StatusConflict:
				if e := c.errorBody(r); e.Message != "Resource Already Exists" {
					t.Errorf("409 message = %q", e.Message)
				}
			case http.StatusUnprocessableEntity:
				e := c.errorBody(r)
				if e.Message != "Validation Failed" || len(e.Errors) != 1 || e.Errors[0].Field != tt.wantField || e.Errors[0].Code != "invalid" {
					t.Errorf("422 body = %s", r.body)
				}
			}
		})
	}
}

func TestPasswordReset(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		loggedIn   bool
		query      url.Values
		wantSetup  bool
		wantExpiry bool
	}{
		{"default: no account_setup_url", Options{}, false, nil, false, false},
		{"setup url for a new user", Options{AccountSetupURL: true}, false, url.Values{"expires": {"false"}}, true, false},
		{"no setup url once logged in", Options{AccountSetupURL: true}, true, nil, false, false},
		{"expiring link", Options{}, true, url.Values{"expires": {"true"}}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			tt.opts.Now = clock.Now
			s, c := newFake(t, tt.opts)
			id := s.AddUser(SeedUser{FirstName: "P", Email: "p@example.com", LoggedIn: tt.loggedIn})
			var cred CredentialsEmail
			c.call("POST", "/users/"+id+"/credentials_email/password_reset", tt.query, nil, http.StatusOK, &cred)

			resetRE := regexp.MustCompile("^" + regexp.QuoteMeta(s.URL) + "/password/reset/([0-9a-f]{40})$")
			m := resetRE.FindStringSubmatch(deref(cred.PasswordResetURL))
			if m == nil {
				t.Fatalf("password_reset_url = %v, want %s/password/reset/<token>", deref(cred.PasswordResetURL), s.URL)
			}
			wantSetup := ""
			if tt.wantSetup {
				wantSetup = s.URL + "/account/setup/" + m[1]
			}
			if deref(cred.AccountSetupURL) != wantSetup {
				t.Errorf("account_setup_url = %q, want %q", deref(cred.AccountSetupURL), wantSetup)
			}
			resets := s.PasswordResets()
			if len(resets) != 1 || resets[0].ExpiresSent != tt.query.Has("expires") || resets[0].Expires != tt.wantExpiry {
				t.Errorf("PasswordResets = %+v", resets)
			}

			clock.Advance(61 * time.Minute)
			c.token = c.login()
			c.call("GET", "/users/"+id+"/credentials_email", nil, nil, http.StatusOK, &cred)
			if cred.PasswordResetURLExpired != tt.wantExpiry {
				t.Errorf("password_reset_url_expired after 61m = %v, want %v", cred.PasswordResetURLExpired, tt.wantExpiry)
			}
		})
	}
}

func TestSendPasswordResetRecordsEmail(t *testing.T) {
	s, c := newFake(t, Options{})
	u := c.newUser("S", "E", "send@example.com")
	c.call("POST", "/users/"+u.ID+"/credentials_email/send_password_reset", nil, nil, http.StatusOK, nil)
	if got := s.SentSetupEmails(); !slices.Equal(got, []string{"send@example.com"}) {
		t.Errorf("SentSetupEmails = %v", got)
	}
	noCreds := c.newUser("No", "Creds", "")
	c.call("POST", "/users/"+noCreds.ID+"/credentials_email/send_password_reset", nil, nil, http.StatusNotFound, nil)
}

func TestGoogleCloudCore(t *testing.T) {
	s, c := newFake(t, Options{GoogleCloudCore: true})
	id := s.AddUser(SeedUser{FirstName: "Idp", LastName: "User", IdPEmail: "idp@corp.example.com"})
	denied := []struct {
		method, path string
		body         any
	}{
		{"GET", "/users/credential/email/idp@corp.example.com", nil},
		{"POST", "/users/" + id + "/credentials_email", map[string]any{"email": "x@example.com"}},
		{"GET", "/users/" + id + "/credentials_email", nil},
		{"POST", "/users/" + id + "/credentials_email/password_reset", nil},
		{"POST", "/users/" + id + "/credentials_email/send_password_reset", nil},
	}
	for _, d := range denied {
		r := c.call(d.method, d.path, nil, d.body, http.StatusForbidden, nil)
		if e := c.errorBody(r); e.Message != "Unsupported in Looker (Google Cloud core)" {
			t.Errorf("%s %s: message %q", d.method, d.path, e.Message)
		}
	}
	var found []User
	c.call("GET", "/users/search", url.Values{"email": {"IDP@corp.example.com"}}, nil, http.StatusOK, &found)
	if len(found) != 1 || found[0].ID != id || found[0].CredentialsGoogle == nil || found[0].CredentialsEmail != nil {
		t.Errorf("search on core = %+v", found)
	}
	c.call("PATCH", "/users/"+id, nil, map[string]any{"is_disabled": true}, http.StatusOK, nil)
}

func TestGroupMembership(t *testing.T) {
	s, c := newFake(t, Options{})
	gid := s.AddGroup("Analysts")
	u := c.newUser("G", "M", "")
	for range 2 { // add_group_user is idempotent
		var got User
		c.call("POST", "/groups/"+gid+"/users", nil, map[string]string{"user_id": u.ID}, http.StatusOK, &got)
		if !slices.Equal(got.GroupIDs, []string{gid}) {
			t.Errorf("group_ids = %v", got.GroupIDs)
		}
	}
	var groups []groupJSON
	c.call("GET", "/groups/search", url.Values{"name": {"analyst%"}}, nil, http.StatusOK, &groups)
	if len(groups) != 1 || groups[0].UserCount != 1 {
		t.Errorf("search groups = %+v", groups)
	}
	for range 2 { // and so is delete_group_user
		c.call("DELETE", "/groups/"+gid+"/users/"+u.ID, nil, nil, http.StatusNoContent, nil)
	}
	if got := s.UserGroupIDs(u.ID); len(got) != 0 {
		t.Errorf("UserGroupIDs = %v", got)
	}
	c.call("POST", "/groups/999/users", nil, map[string]string{"user_id": u.ID}, http.StatusNotFound, nil)
	c.call("POST", "/groups/"+gid+"/users", nil, map[string]string{"user_id": "999"}, http.StatusNotFound, nil)
}

func TestSetUserRolesReplaces(t *testing.T) {
	s, c := newFake(t, Options{})
	admin, viewer := s.AddRole("Admin"), s.AddRole("Viewer")
	u := c.newUser("R", "O", "")
	c.call("PUT", "/users/"+u.ID+"/roles", nil, []string{admin, viewer, viewer}, http.StatusOK, nil)
	var roles []roleJSON
	c.call("PUT", "/users/"+u.ID+"/roles", nil, []string{viewer}, http.StatusOK, &roles)
	if len(roles) != 1 || roles[0].Name != "Viewer" || !slices.Equal(s.UserRoleIDs(u.ID), []string{viewer}) {
		t.Errorf("after replace: answer %+v, stored %v", roles, s.UserRoleIDs(u.ID))
	}
	r := c.call("PUT", "/users/"+u.ID+"/roles", nil, []string{admin, "999"}, http.StatusUnprocessableEntity, nil)
	if e := c.errorBody(r); len(e.Errors) != 1 || !slices.Equal(s.UserRoleIDs(u.ID), []string{viewer}) {
		t.Errorf("unknown role: body %s, stored %v", r.body, s.UserRoleIDs(u.ID))
	}
	c.call("GET", "/users/"+u.ID+"/roles", url.Values{"direct_association_only": {"true"}}, nil, http.StatusOK, &roles)
	if len(roles) != 1 || roles[0].ID != viewer {
		t.Errorf("user_roles = %+v", roles)
	}
	c.call("GET", "/roles/search", url.Values{"name": {"ADMIN"}}, nil, http.StatusOK, &roles)
	if len(roles) != 1 || roles[0].ID != admin {
		t.Errorf("search_roles = %+v", roles)
	}
}

func TestUserAttributes(t *testing.T) {
	s, c := newFake(t, Options{})
	team := s.AddUserAttribute("team", false)
	emailAttr := s.AddUserAttribute("email", true)
	u := c.newUser("U", "A", "")

	var attrs []userAttributeJSON
	c.call("GET", "/user_attributes", nil, nil, http.StatusOK, &attrs)
	if len(attrs) != 2 || attrs[0].Name != "team" || attrs[0].IsSystem || !attrs[1].IsSystem {
		t.Errorf("user_attributes = %+v", attrs)
	}
	var set userAttributeWithValueJSON
	c.call("PATCH", "/users/"+u.ID+"/attribute_values/"+team, nil, map[string]string{"value": "blue"}, http.StatusOK, &set)
	if deref(set.Value) != "blue" || deref(set.Source) != "user" {
		t.Errorf("set value = %+v", set)
	}
	r := c.call("PATCH", "/users/"+u.ID+"/attribute_values/"+emailAttr, nil, map[string]string{"value": "x@y.z"}, http.StatusForbidden, nil)
	c.errorBody(r)
	if got := s.UserAttributeValues(u.ID); len(got) != 1 || got["team"] != "blue" {
		t.Errorf("UserAttributeValues = %v", got)
	}
	var vals []userAttributeWithValueJSON
	c.call("GET", "/users/"+u.ID+"/attribute_values", url.Values{"user_attribute_ids": {team + "," + emailAttr}}, nil, http.StatusOK, &vals)
	if len(vals) != 1 || vals[0].UserAttributeID != team {
		t.Errorf("attribute_values = %+v", vals)
	}
	c.call("DELETE", "/users/"+u.ID+"/attribute_values/"+team, nil, nil, http.StatusNoContent, nil)
	if got := s.UserAttributeValues(u.ID); len(got) != 0 {
		t.Errorf("after delete: %v", got)
	}
}

func TestEmbedUser(t *testing.T) {
	_, c := newFake(t, Options{})
	var pub map[string]any
	c.call("POST", "/users/embed_user", nil, map[string]string{"external_user_id": "ext-42"}, http.StatusOK, &pub)
	if pub["id"] == nil || pub["credentials_embed"] != nil {
		t.Errorf("want a UserPublic, got %v", pub)
	}
	var u User
	c.call("GET", "/users/credential/embed/ext-42", nil, nil, http.StatusOK, &u)
	if u.ID != pub["id"] || len(u.CredentialsEmbed) != 1 || u.CredentialsEmbed[0].ExternalUserID != "ext-42" {
		t.Errorf("embed lookup = %+v", u)
	}
	var embedded []User
	c.call("GET", "/users/search", url.Values{"embed_user": {"true"}}, nil, http.StatusOK, &embedded)
	if len(embedded) != 1 {
		t.Errorf("search embed_user=true = %d users", len(embedded))
	}
	c.call("POST", "/users/embed_user", nil, map[string]string{"external_user_id": "ext-42"}, http.StatusConflict, nil)
	c.call("GET", "/users/credential/embed/ext-43", nil, nil, http.StatusNotFound, nil)
}

func TestFaultRetryAfterOnce(t *testing.T) {
	s, c := newFake(t, Options{})
	c.checkResponses = false
	u := c.newUser("F", "A", "")
	s.InjectFault(Fault{Method: "GET", Path: "/users/{id}", Status: http.StatusTooManyRequests, RetryAfter: "2", Times: 1})

	r := c.call("GET", "/users/"+u.ID, nil, nil, http.StatusTooManyRequests, nil)
	if r.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	c.errorBody(r)
	c.call("GET", "/users/"+u.ID, nil, nil, http.StatusOK, nil)
	c.call("PATCH", "/users/"+u.ID, nil, map[string]any{"locale": "en"}, http.StatusOK, nil)
	if n := s.Count("GET", "/users/{id}"); n != 2 {
		t.Errorf("Count(GET /users/{id}) = %d, want 2", n)
	}
	if n := s.Count("", APIPrefix+"/users/"+u.ID); n != 3 {
		t.Errorf("Count(any, exact path with prefix) = %d, want 3", n)
	}
}

func TestFaultForeverAndCustomBody(t *testing.T) {
	s, c := newFake(t, Options{})
	c.checkResponses = false
	s.InjectFault(Fault{Path: "/roles", Status: http.StatusServiceUnavailable, Body: `{"message":"down"}`})
	for range 3 {
		if r := c.call("GET", "/roles", nil, nil, http.StatusServiceUnavailable, nil); string(r.body) != `{"message":"down"}` {
			t.Errorf("body = %s", r.body)
		}
	}
	c.call("GET", "/groups", nil, nil, http.StatusOK, nil)
}

func TestFaultDropConnection(t *testing.T) {
	s, c := newFake(t, Options{})
	s.InjectFault(Fault{Method: "POST", Path: "/users", DropConnection: true, Times: 1})
	req, _ := http.NewRequest("POST", s.URL+APIPrefix+"/users", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "token "+c.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("want a transport error, got status %d", resp.StatusCode)
	}
	c.call("POST", "/users", nil, map[string]any{}, http.StatusOK, nil)
}

// A fault after acting is Looker making the change and the answer being
// lost: a 500, or a connection reset, after the user exists.
func TestFaultAfterActing(t *testing.T) {
	for _, f := range []Fault{
		{Method: "POST", Path: "/users", Status: http.StatusInternalServerError, AfterActing: true, Times: 1},
		{Method: "POST", Path: "/users", DropConnection: true, AfterActing: true, Times: 1},
	} {
		t.Run(fmt.Sprintf("drop=%t", f.DropConnection), func(t *testing.T) {
			s, c := newFake(t, Options{})
			c.checkResponses = false
			s.InjectFault(f)
			if f.DropConnection {
				req, _ := http.NewRequest("POST", s.URL+APIPrefix+"/users", strings.NewReader(`{"first_name":"Ada"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "token "+c.token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
					t.Fatalf("want a transport error, got status %d", resp.StatusCode)
				}
			} else {
				c.errorBody(c.call("POST", "/users", nil, map[string]any{"first_name": "Ada"}, http.StatusInternalServerError, nil))
			}
			if users := s.Users(); len(users) != 1 || users[0].FirstName != "Ada" {
				t.Fatalf("users after the failed answer: %+v, want the one it made", users)
			}
			// Unauthenticated, nothing is served before the fault either.
			s.InjectFault(Fault{Method: "POST", Path: "/users", Status: 500, AfterActing: true, Times: 1})
			c.token = "wrong"
			c.call("POST", "/users", nil, map[string]any{"first_name": "Eve"}, http.StatusInternalServerError, nil)
			if n := len(s.Users()); n != 1 {
				t.Errorf("%d users: an unauthenticated request acted", n)
			}
		})
	}
}

// Chaos decides by user, not by the id a user happened to get: users
// created in another order see the same faults.
func TestChaosFollowsUsersNotIDs(t *testing.T) {
	names := []string{"Ada", "Bob", "Cy", "Di", "Ed"}
	outcomes := func(order []string) map[string][]int {
		s, c := newFake(t, Options{})
		c.checkResponses = false
		chaos := fakehttp.NewChaos(fakehttp.NewSchedule(3), fakehttp.Chance[Fault]{Fault: Fault{Method: "GET", Status: 503}, Share: 0.3})
		s.InjectChaos(chaos)
		ids := map[string]string{}
		for _, n := range order {
			ids[n] = c.newUser(n, "X", "").ID
		}
		out := map[string][]int{}
		for _, n := range names {
			for range 10 {
				out[n] = append(out[n], c.do("GET", "/users/"+ids[n], nil, nil).status)
			}
		}
		if fired := chaos.Fired()[0]; fired == 0 || fired == len(names)*10 {
			t.Errorf("%d of %d requests failed, want about 30%%", fired, len(names)*10)
		}
		return out
	}
	reversed := slices.Clone(names)
	slices.Reverse(reversed)
	if a, b := outcomes(names), outcomes(reversed); !maps.EqualFunc(a, b, slices.Equal) {
		t.Errorf("same seed, other creation order, other faults:\n%v\n%v", a, b)
	}
}

func TestLatency(t *testing.T) {
	const latency = 50 * time.Millisecond
	start := time.Now()
	_, c := newFake(t, Options{Latency: latency}) // includes one login
	c.call("GET", "/roles", nil, nil, http.StatusOK, nil)
	if elapsed := time.Since(start); elapsed < 2*latency {
		t.Errorf("two requests took %v, want at least %v", elapsed, 2*latency)
	}
}

func TestNumericIDs(t *testing.T) {
	s, c := newFake(t, Options{NumericIDs: true})
	rid, gid := s.AddRole("Viewer"), s.AddGroup("G")
	uid := s.AddUser(SeedUser{FirstName: "N", Email: "n@example.com", RoleIDs: []string{rid}, GroupIDs: []string{gid}})
	var raw map[string]any
	c.call("GET", "/users/"+uid, nil, nil, http.StatusOK, &raw)
	isNum := func(v any) bool { _, ok := v.(float64); return ok }
	roleIDs, _ := raw["role_ids"].([]any)
	groupIDs, _ := raw["group_ids"].([]any)
	cred, _ := raw["credentials_email"].(map[string]any)
	if !isNum(raw["id"]) || len(roleIDs) != 1 || !isNum(roleIDs[0]) || len(groupIDs) != 1 || !isNum(groupIDs[0]) || !isNum(cred["user_id"]) {
		t.Errorf("ids are not numbers: %v", raw)
	}
	var errBody map[string]any
	c.call("GET", "/users/999", nil, nil, http.StatusNotFound, &errBody)
	if _, ok := errBody["message"].(string); !ok {
		t.Errorf("error bodies keep their shape: %v", errBody)
	}
}

func TestSearchUsers(t *testing.T) {
	_, c := newFake(t, Options{})
	for _, e := range []string{"a_b@x.com", "axb@x.com", "AYB@X.COM", "ab@x.com", "a%b@x.com", "zed@y.org"} {
		c.newUser("First", strings.ToUpper(e[:1]), e)
	}
	tests := []struct {
		query url.Values
		want  []string
	}{
		{url.Values{"email": {"a_b@x.com"}}, []string{"a_b@x.com", "axb@x.com", "AYB@X.COM", "a%b@x.com"}},
		{url.Values{"email": {"AXB@x.com"}}, []string{"axb@x.com"}},
		{url.Values{"email": {"a%b@x.com"}}, []string{"a_b@x.com", "axb@x.com", "AYB@X.COM", "ab@x.com", "a%b@x.com"}},
		{url.Values{"email": {"%@y.org"}}, []string{"zed@y.org"}},
		{url.Values{"email": {"x.com"}}, nil},
		{url.Values{"email": {"%x.com"}, "limit": {"2"}, "offset": {"1"}}, []string{"axb@x.com", "AYB@X.COM"}},
		{url.Values{"first_name": {"first"}, "last_name": {"z"}}, []string{"zed@y.org"}},
		{url.Values{"last_name": {"z"}, "email": {"ab@x.com"}, "filter_or": {"true"}}, []string{"ab@x.com", "zed@y.org"}},
		{url.Values{"email": {"%y.org"}, "fields": {"id,credentials_email(email)"}}, []string{"zed@y.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.query.Encode(), func(t *testing.T) {
			var got []User
			c.call("GET", "/users/search", tt.query, nil, http.StatusOK, &got)
			var emails []string
			for _, u := range got {
				emails = append(emails, u.CredentialsEmail.Email)
			}
			if !slices.Equal(emails, tt.want) {
				t.Errorf("emails = %v, want %v", emails, tt.want)
			}
			if tt.query.Has("fields") && len(got) > 0 && (got[0].FirstName != "" || got[0].CredentialsEmail.CreatedAt != "") {
				t.Errorf("fields did not trim: %+v", got[0])
			}
		})
	}
}

func TestLike(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"a_b", "axb", true}, {"a_b", "ab", false}, {"A%", "abc", true}, {"%c", "ABC", true},
		{"a%b%c", "aXXbYYc", true}, {"a%b%c", "aXXcYYb", false}, {"%", "", true}, {"_", "", false},
		{"é_", "ÉX", true}, {"abc", "abcd", false},
	}
	for _, tt := range tests {
		if got := like(tt.pattern, tt.s); got != tt.want {
			t.Errorf("like(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestUnknownRouteIs404(t *testing.T) {
	s, _, _ := newRecordingFake(t, Options{}) // unknown paths are spec violations too
	for _, p := range []string{APIPrefix + "/nope", "/api/3.1/users", "/"} {
		resp, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		var e apiError
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || e.Message != "Not found" {
			t.Errorf("GET %s: %d %+v", p, resp.StatusCode, e)
		}
	}
}
