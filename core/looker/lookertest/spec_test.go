package lookertest

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestValidateRequest(t *testing.T) {
	sp := mustSpec(t)
	const (
		form = "application/x-www-form-urlencoded"
		js   = "application/json"
	)
	creds := "client_id=a&client_secret=b"
	tests := []struct {
		name, method, path string
		query              url.Values
		ctype, body        string
		want               string // substring of the violation; "" = valid
	}{
		{"login form", "POST", "/login", nil, form, creds, ""},
		{"login creds in query", "POST", "/login", url.Values{"client_id": {"a"}, "client_secret": {"b"}}, form, "", "client_id must be sent in the form body"},
		{"login JSON", "POST", "/login", nil, js, `{"client_id":"a","client_secret":"b"}`, "consumes application/x-www-form-urlencoded"},
		{"login missing secret", "POST", "/login", nil, form, "client_id=a", "form field client_secret is missing"},
		{"create user names", "POST", "/users", nil, js, `{"first_name":"A","last_name":"B","is_disabled":false}`, ""},
		{"create user without body", "POST", "/users", nil, "", "", ""},
		{"create user with email", "POST", "/users", nil, js, `{"first_name":"A","email":"a@x.com"}`, "body.email: property is readOnly in Swagger 2 in User"},
		{"create user with role_ids", "POST", "/users", nil, js, `{"role_ids":["1"]}`, "body.role_ids: property is readOnly"},
		{"readOnly $ref property", "POST", "/users", nil, js, `{"credentials_email":{"email":"a@x.com"}}`, "body.credentials_email: property is readOnly"},
		{"unknown property", "POST", "/users", nil, js, `{"nickname":"A"}`, "body.nickname: property does not exist in User"},
		{"wrong type", "PATCH", "/users/1", nil, js, `{"is_disabled":"yes"}`, "body.is_disabled: want a boolean"},
		{"null on non-nullable", "PATCH", "/users/1", nil, js, `{"is_disabled":null}`, "null is not allowed"},
		{"null on nullable", "PATCH", "/users/1", nil, js, `{"last_name":null}`, ""},
		{"update needs a body", "PATCH", "/users/1", nil, "", "", "the request body is required"},
		{"not JSON", "PATCH", "/users/1", nil, js, `{`, "body is not valid JSON"},
		{"wrong content type", "PATCH", "/users/1", nil, "text/plain", `{}`, `content type "text/plain"`},
		{"search known params", "GET", "/users/search", url.Values{"email": {"a%"}, "limit": {"10"}, "offset": {"0"}, "fields": {"id"}}, "", "", ""},
		{"unknown query param", "GET", "/users/search", url.Values{"mail": {"a"}}, "", "", `query parameter "mail" is not declared`},
		{"bad boolean", "GET", "/users/search", url.Values{"is_disabled": {"yes"}}, "", "", `"yes" is not a boolean`},
		{"bad integer", "GET", "/users/search", url.Values{"limit": {"ten"}}, "", "", `"ten" is not an integer`},
		{"repeated param", "GET", "/roles", url.Values{"ids": {"1", "2"}}, "", "", "is repeated"},
		{"csv param", "GET", "/roles", url.Values{"ids": {"1,2"}}, "", "", ""},
		{"escaped email in path", "GET", "/users/credential/email/a%40x.com", nil, "", "", ""},
		{"credentials email", "POST", "/users/1/credentials_email", nil, js, `{"email":"a@x.com","forced_password_reset_at_next_login":false}`, ""},
		{"credentials email readOnly", "POST", "/users/1/credentials_email", nil, js, `{"email":"a@x.com","user_id":"1"}`, "body.user_id: property is readOnly in Swagger 2 in CredentialsEmail"},
		{"password reset no body", "POST", "/users/1/credentials_email/password_reset", url.Values{"expires": {"false"}}, "", "", ""},
		{"password reset with body", "POST", "/users/1/credentials_email/password_reset", nil, js, `{}`, "takes no request body"},
		{"set roles", "PUT", "/users/1/roles", nil, js, `["1","2"]`, ""},
		{"set roles numbers", "PUT", "/users/1/roles", nil, js, `[1]`, "body[0]: want a string"},
		{"set roles object", "PUT", "/users/1/roles", nil, js, `{"role_ids":["1"]}`, "want an array"},
		{"add group user (allow-listed readOnly)", "POST", "/groups/1/users", nil, js, `{"user_id":"5"}`, ""},
		{"embed user", "POST", "/users/embed_user", nil, js, `{"external_user_id":"e"}`, ""},
		{"embed user missing id", "POST", "/users/embed_user", nil, js, `{}`, "body.external_user_id: required property is missing"},
		{"attribute value", "PATCH", "/users/1/attribute_values/2", nil, js, `{"value":"v"}`, ""},
		{"attribute value readOnly", "PATCH", "/users/1/attribute_values/2", nil, js, `{"value":"v","user_id":"1"}`, "body.user_id: property is readOnly"},
		{"no such operation", "POST", "/users/1/nothing", nil, "", "", "no operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sp.ValidateRequest(tt.method, tt.path, tt.query, tt.ctype, []byte(tt.body))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("valid request reported: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error = %v, want it to mention %q", err, tt.want)
			}
			var v *Violation
			if err != nil && (!errors.As(err, &v) || (tt.name != "no such operation" && v.OperationID == "")) {
				t.Errorf("want a *Violation naming the operation, got %#v", err)
			}
		})
	}
}

// TestSpecQuirks pins the spec facts behind readOnlyAllowed, so a spec update
// that fixes or adds such a quirk shows up here.
func TestSpecQuirks(t *testing.T) {
	sp := mustSpec(t)
	readOnly := func(def, prop string) bool {
		p := sp.defs[def].Properties[prop]
		if p == nil {
			t.Fatalf("%s.%s missing from the spec", def, prop)
		}
		return p.ReadOnly
	}
	if !readOnly("GroupIdForGroupUserInclusion", "user_id") {
		t.Error("GroupIdForGroupUserInclusion.user_id is no longer readOnly: drop it from readOnlyAllowed")
	}
	for _, p := range [][2]string{{"CreateEmbedUserRequest", "external_user_id"}, {"UserAttributeWithValue", "value"}, {"CredentialsEmail", "email"}, {"User", "first_name"}} {
		if readOnly(p[0], p[1]) {
			t.Errorf("%s.%s became readOnly: decide whether it belongs in readOnlyAllowed", p[0], p[1])
		}
	}
	// The reason this package reads Swagger 2: a readOnly flag beside a $ref.
	if p := sp.defs["User"].Properties["credentials_email"]; p.Ref == "" || !p.ReadOnly {
		t.Errorf("User.credentials_email = %+v, want a readOnly $ref", p)
	}
}

func TestLoadSpecIsCached(t *testing.T) {
	sp := mustSpec(t)
	again, err := LoadSpec(sp.Path)
	if err != nil || again != sp {
		t.Errorf("LoadSpec parsed twice (%p vs %p, %v)", sp, again, err)
	}
	if _, err := LoadSpec(sp.Path + ".missing"); err == nil {
		t.Error("missing file: want an error")
	}
}

func TestSpecPathFromEnv(t *testing.T) {
	t.Setenv(SpecEnv, "/elsewhere/Looker.4.0.json")
	if p, explicit := SpecPath(); p != "/elsewhere/Looker.4.0.json" || !explicit {
		t.Errorf("SpecPath() = %q, %v", p, explicit)
	}
}

// TestServerReportsViolations checks the wiring end to end: bad requests are
// reported once each and still served, good ones are not reported.
func TestServerReportsViolations(t *testing.T) {
	mustSpec(t)
	tests := []struct {
		name       string
		send       func(c *client)
		wantReport string
	}{
		{"valid create", func(c *client) {
			c.call("POST", "/users", nil, map[string]any{"first_name": "A"}, http.StatusOK, nil)
		}, ""},
		{"create with email", func(c *client) {
			c.call("POST", "/users", nil, map[string]any{"first_name": "A", "email": "a@x.com"}, http.StatusOK, nil)
		}, "create_user): body.email: property is readOnly"},
		{"create with role_ids", func(c *client) {
			c.call("POST", "/users", nil, map[string]any{"role_ids": []string{"1"}}, http.StatusOK, nil)
		}, "body.role_ids: property is readOnly"},
		{"unknown query param", func(c *client) {
			c.call("GET", "/users/search", url.Values{"emial": {"a"}}, nil, http.StatusOK, nil)
		}, `query parameter "emial" is not declared`},
		{"create with ui_state", func(c *client) {
			c.call("POST", "/users", nil, map[string]any{"ui_state": map[string]string{"k": "v"}}, http.StatusOK, nil)
		}, ""},
		{"ui_state value not a string", func(c *client) {
			c.call("POST", "/users", nil, map[string]any{"ui_state": map[string]any{"k": 1}}, http.StatusUnprocessableEntity, nil)
		}, "body.ui_state.k: want a string"},
		{"valid search", func(c *client) {
			c.call("GET", "/users/search", url.Values{"email": {"a%"}, "limit": {"5"}}, nil, http.StatusOK, nil)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, v := newRecordingFake(t, Options{})
			tt.send(c)
			got := v.all()
			switch {
			case tt.wantReport == "" && len(got) != 0:
				t.Errorf("valid requests reported: %v", got)
			case tt.wantReport != "" && (len(got) != 1 || !strings.Contains(got[0].Error(), tt.wantReport)):
				t.Errorf("reports = %v, want one mentioning %q", got, tt.wantReport)
			}
		})
	}
}

// recordingTB captures what loadTestSpec reports instead of failing.
type recordingTB struct {
	testing.TB
	fatal, logged bool
}

func (r *recordingTB) Helper()               {}
func (r *recordingTB) Fatalf(string, ...any) { r.fatal = true }
func (r *recordingTB) Logf(string, ...any)   { r.logged = true }

func TestMissingSpec(t *testing.T) {
	missing := t.TempDir() + "/Looker.4.0.json"
	tests := []struct {
		name      string
		ci        string
		explicit  bool
		wantFatal bool
	}{
		{"local run skips validation", "", false, false},
		{"CI fails", "true", false, true},
		{"explicit path must exist", "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			tb := &recordingTB{TB: t}
			if sp := loadTestSpec(tb, missing, tt.explicit); sp != nil || tb.fatal != tt.wantFatal {
				t.Errorf("spec %v, fatal %v; want nil, fatal %v", sp, tb.fatal, tt.wantFatal)
			}
		})
	}
}

func TestValidateResponse(t *testing.T) {
	sp := mustSpec(t)
	tests := []struct {
		name, method, path string
		status             int
		body, want         string
	}{
		{"error body", "GET", "/users/1", 404, `{"message":"Not found","documentation_url":"https://x"}`, ""},
		{"error body without documentation_url", "GET", "/users/1", 404, `{"message":"Not found"}`, "documentation_url: required property is missing"},
		{"undeclared status", "GET", "/users/1", 418, ``, "status 418 is not declared"},
		{"401 is Looker's everywhere", "GET", "/users/1", 401, `{"message":"Requires authentication.","documentation_url":"https://x"}`, ""},
		{"unknown user property", "GET", "/users/1", 200, `{"id":"1","nickname":"x"}`, "response.nickname: property does not exist in User"},
		{"non-nullable null", "POST", "/users/embed_user", 200, `{"id":"1","first_name":null}`, "response.first_name: null is not allowed"},
		{"numeric id", "GET", "/users/1", 200, `{"id":1}`, "response.id: want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sp.validateResponse(tt.method, tt.path, tt.status, []byte(tt.body))
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
