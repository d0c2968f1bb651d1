package periscopetest

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

type wire struct {
	status int
	header http.Header
	body   string
}

// send makes one request as the API's examples do; auth "" sends no auth header.
func send(t *testing.T, s *Server, method, path, auth, email, body string) wire {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("HTTP-X-PARTNER-AUTH", auth)
	}
	if email != "" {
		req.Header.Set("HTTP-X-EMAIL", email)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return wire{resp.StatusCode, resp.Header, string(b)}
}

func newSites(t *testing.T) *Server {
	return NewTestServer(t, Options{Sites: map[string]string{"acme": "key-acme", "beta": "key-beta"}})
}

const (
	acme = "acme:key-acme"
	beta = "beta:key-beta"
)

func TestEachSiteHasItsOwnKey(t *testing.T) {
	s := newSites(t)
	for _, auth := range []string{"", "acme:key-beta", "beta:key-acme", "key-acme", "gamma:key-acme", "acme:"} {
		if w := send(t, s, "GET", "/api/v1/users", auth, "", ""); w.status != 401 {
			t.Errorf("auth %q: %d %s", auth, w.status, w.body)
		}
	}
	for _, auth := range []string{acme, beta} {
		if w := send(t, s, "GET", "/api/v1/users", auth, "", ""); w.status != 200 || w.body != "[]" {
			t.Errorf("auth %q: %d %s", auth, w.status, w.body)
		}
	}
	for _, r := range s.Requests() {
		if strings.Contains(r.Site, "key-") {
			t.Errorf("a key was recorded as a site: %+v", r)
		}
	}
	if got := s.Requests()[1]; got.Site != "acme" || got.Authorized {
		t.Errorf("wrong key for acme recorded as %+v", got)
	}
}

func TestUsersByEmailPerSite(t *testing.T) {
	s := newSites(t)
	s.AddGroup("acme", "Analysts")
	create := `{"first_name":"Ada","last_name":"Lovelace","email":"Ada@Example.com","groups":["analysts"],"invited_by_email":"data@example.com"}`
	if w := send(t, s, "POST", "/api/v1/users", acme, "", create); w.status != 200 {
		t.Fatalf("create: %d %s", w.status, w.body)
	}
	w := send(t, s, "GET", "/api/v1/users", acme, "ada@example.COM", "")
	var u User
	if w.status != 200 || json.Unmarshal([]byte(w.body), &u) != nil || u.Email != "Ada@Example.com" || !slices.Equal(u.Groups, []string{"Analysts"}) {
		t.Errorf("get: %d %s", w.status, w.body)
	}
	if w := send(t, s, "GET", "/api/v1/users", beta, "ada@example.com", ""); w.status != 404 {
		t.Errorf("another site sees the user: %d %s", w.status, w.body)
	}
	if w := send(t, s, "POST", "/api/v1/users", acme, "", strings.Replace(create, "Ada@", "ada@", 1)); w.status != 400 || !strings.Contains(w.body, "already been taken") {
		t.Errorf("duplicate: %d %s", w.status, w.body)
	}
	if w := send(t, s, "PUT", "/api/v1/users", acme, "ada@example.com", `{"groups":[]}`); w.status != 200 {
		t.Errorf("update: %d %s", w.status, w.body)
	}
	if u, _ := s.User("acme", "ada@example.com"); len(u.Groups) != 0 || u.FirstName != "Ada" {
		t.Errorf("after update %+v: groups are replaced, names kept", u)
	}
	if w := send(t, s, "DELETE", "/api/v1/users", acme, "ada@example.com", ""); w.status != 200 {
		t.Errorf("delete: %d %s", w.status, w.body)
	}
	if w := send(t, s, "DELETE", "/api/v1/users", acme, "ada@example.com", ""); w.status != 404 {
		t.Errorf("delete again: %d %s", w.status, w.body)
	}
}

func TestRequestsAreValidated(t *testing.T) {
	s := newSites(t)
	s.AddUser("acme", User{Email: "bob@example.com"})
	for name, tc := range map[string]struct {
		method, email, body string
		status              int
	}{
		"unknown field":      {"POST", "", `{"email":"a@example.com","invited_by_email":"d@example.com","role":"admin"}`, 400},
		"no inviter":         {"POST", "", `{"email":"a@example.com"}`, 400},
		"bad email":          {"POST", "", `{"email":"not-an-email","invited_by_email":"d@example.com"}`, 400},
		"unknown group":      {"POST", "", `{"email":"a@example.com","invited_by_email":"d@example.com","groups":["Nope"]}`, 400},
		"update w/o email":   {"PUT", "", `{"first_name":"B"}`, 400},
		"update absent user": {"PUT", "zed@example.com", `{"first_name":"Z"}`, 404},
		"update unknown grp": {"PUT", "bob@example.com", `{"groups":["Nope"]}`, 400},
		"delete w/o email":   {"DELETE", "", "", 400},
	} {
		if w := send(t, s, tc.method, "/api/v1/users", acme, tc.email, tc.body); w.status != tc.status || !strings.Contains(w.body, `"error"`) {
			t.Errorf("%s: %d %s, want %d with an error body", name, w.status, w.body, tc.status)
		}
	}
	if w := send(t, s, "POST", "/api/v1/groups", acme, "", `{"name":"G"}`); w.status != 400 {
		t.Errorf("group without created_by_email: %d", w.status)
	}
	if n := len(s.Users("acme")); n != 1 {
		t.Errorf("%d users after refused requests", n)
	}
}

func TestTestModeWritesNothing(t *testing.T) {
	s := newSites(t)
	s.AddUser("acme", User{Email: "bob@example.com"})
	for _, c := range []struct{ method, path, email, body string }{
		{"POST", "/api/v1/groups?test_mode=true", "", `{"name":"New","created_by_email":"d@example.com"}`},
		{"POST", "/api/v1/users?test_mode=true", "", `{"email":"a@example.com","invited_by_email":"d@example.com"}`},
		{"PUT", "/api/v1/users?test_mode=true", "bob@example.com", `{"first_name":"Robert"}`},
		{"DELETE", "/api/v1/users?test_mode=true", "bob@example.com", ""},
	} {
		if w := send(t, s, c.method, c.path, acme, c.email, c.body); w.status != 200 {
			t.Errorf("%s %s: %d %s", c.method, c.path, w.status, w.body)
		}
	}
	if u := s.Users("acme"); len(u) != 1 || u[0].FirstName != "" || len(s.Groups("acme")) != 0 {
		t.Errorf("test mode changed state: %+v %+v", u, s.Groups("acme"))
	}
	for _, r := range s.Requests() {
		if !r.TestMode {
			t.Errorf("%s %s not recorded as test mode", r.Method, r.Path)
		}
	}
	// A group made in test mode was never made: a user naming it is
	// refused, as Periscope refuses it.
	if w := send(t, s, "POST", "/api/v1/users?test_mode=true", acme, "", `{"email":"a@example.com","invited_by_email":"d@example.com","groups":["New"]}`); w.status != 400 || !strings.Contains(w.body, "Group New does not exist") {
		t.Errorf("a test-mode user naming a test-mode group: %d %s", w.status, w.body)
	}
	// test_mode=False, as one of the examples sends it, is a real write.
	if w := send(t, s, "DELETE", "/api/v1/users?test_mode=False", acme, "bob@example.com", ""); w.status != 200 || len(s.Users("acme")) != 0 {
		t.Errorf("test_mode=False: %d %v", w.status, s.Users("acme"))
	}
}

func TestGroupsByName(t *testing.T) {
	s := newSites(t)
	if w := send(t, s, "POST", "/api/v1/groups", acme, "", `{"name":"Finance","access":"View","created_by_email":"d@example.com"}`); w.status != 200 {
		t.Fatalf("create: %d %s", w.status, w.body)
	}
	if w := send(t, s, "POST", "/api/v1/groups", acme, "", `{"name":"finance","created_by_email":"d@example.com"}`); w.status != 400 || !strings.Contains(w.body, "already been taken") {
		t.Errorf("duplicate name: %d %s", w.status, w.body)
	}
	if w := send(t, s, "GET", "/api/v1/groups", acme, "", ""); w.status != 200 || !strings.Contains(w.body, `"name":"Finance"`) {
		t.Errorf("list: %d %s", w.status, w.body)
	}
	if w := send(t, s, "GET", "/api/v1/groups/Finance", acme, "", ""); w.status != 200 {
		t.Errorf("get one: %d %s", w.status, w.body)
	}
	if w := send(t, s, "GET", "/api/v1/groups", beta, "", ""); w.body != "[]" {
		t.Errorf("beta sees acme's groups: %s", w.body)
	}
	if g := s.Groups("acme"); len(g) != 1 || g[0].Access != "View" || g[0].CreatedByEmail != "d@example.com" {
		t.Errorf("groups %+v", g)
	}
}

func TestFaults(t *testing.T) {
	s := newSites(t)
	s.InjectFault(Fault{Site: "beta", Method: "GET", Path: "/api/v1/users", Status: 429, RetryAfter: "9", Times: 1})
	s.InjectFault(Fault{Method: "POST", Status: 418, Body: "<html>teapot</html>", ContentType: "text/html"})
	if w := send(t, s, "GET", "/api/v1/users", acme, "", ""); w.status != 200 {
		t.Errorf("acme hit beta's fault: %d", w.status)
	}
	if w := send(t, s, "GET", "/api/v1/users", beta, "", ""); w.status != 429 || w.header.Get("Retry-After") != "9" {
		t.Errorf("fault: %d %v", w.status, w.header)
	}
	if w := send(t, s, "GET", "/api/v1/users", beta, "", ""); w.status != 200 {
		t.Errorf("fault outlived Times: %d", w.status)
	}
	w := send(t, s, "POST", "/api/v1/groups", acme, "", `{}`)
	if w.status != 418 || w.body != "<html>teapot</html>" || w.header.Get("Content-Type") != "text/html" {
		t.Errorf("body fault: %d %q %v", w.status, w.body, w.header)
	}
	if n := s.Count("beta", "GET", "/api/v1/users"); n != 2 {
		t.Errorf("count %d", n)
	}
}
