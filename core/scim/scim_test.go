package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/scim"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
	"github.com/onboard-dev/onboard/core/state/statetest"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/emulators"
)

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

const token = "scim-test-token-0123456789"

const policy = `
default_profile: viewer
max_deprovision: 3
profiles:
  admin:
    scim_groups: [Looker Admins]
    stub: {}
  viewer:
    stub: {}
`

// recorder is a target that remembers what it was asked, by email.
type recorder struct {
	mu      sync.Mutex
	calls   []string // "provision ada@example.com viewer Ada Lovelace"
	failing string   // the calls beginning with it answer 503; "" none
}

func (r *recorder) Name() string                 { return "stub" }
func (r *recorder) Handles(p *core.Profile) bool { return p.Section("stub") != nil }
func (r *recorder) Provision(_ context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	return r.record("provision " + p.Email + " " + prof.Name + " " + p.FirstName + " " + p.LastName)
}
func (r *recorder) Deprovision(_ context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	return r.record("deprovision " + p.Email + " " + prof.Name)
}
func (r *recorder) record(call string) (core.TargetResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing != "" && strings.HasPrefix(call, r.failing) {
		return core.TargetResult{}, core.Unavailable("stub", 0, nil)
	}
	r.calls = append(r.calls, call)
	return core.TargetResult{Status: core.StatusCreated, ID: "1"}, nil
}

func (r *recorder) took(t *testing.T, want ...string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Join(r.calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the target was asked:\n%s\nwant:\n%s", strings.Join(r.calls, "\n"), strings.Join(want, "\n"))
	}
}

type env struct {
	t      *testing.T
	srv    http.Handler
	target *recorder
	logs   *bytes.Buffer
}

func newEnv(t *testing.T, store state.Store) *env {
	t.Helper()
	return newEnvWith(t, store, policy)
}

func newEnvWith(t *testing.T, store state.Store, policy string) *env {
	t.Helper()
	cfg, err := core.ParseConfig([]byte(policy), core.ConfigSchema{Profile: map[string]func(*yaml.Node, *core.Profile) (any, error){
		"stub": func(*yaml.Node, *core.Profile) (any, error) { return struct{}{}, nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	target := &recorder{}
	engine := &core.Engine{Config: cfg, Targets: []core.Target{target}, Store: store, Log: log}
	return &env{t: t, target: target, logs: logs, srv: &scim.Server{Engine: engine, Store: store, Log: log,
		Token: func(context.Context) (string, error) { return token, nil }}}
}

func fileStore(t *testing.T) state.Store {
	s, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) do(method, path, body string, headers ...string) answer {
	e.t.Helper()
	req := httptest.NewRequest(method, "http://onboard.test"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/scim+json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.serve(req)
}

// serve answers req as the IdP's, with its token.
func (e *env) serve(req *http.Request) answer {
	e.t.Helper()
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %s", req.Method, req.URL, rec.Body)
		}
	}
	if ct := rec.Header().Get("Content-Type"); rec.Body.Len() > 0 && ct != "application/scim+json" {
		e.t.Errorf("%s %s: Content-Type %q", req.Method, req.URL, ct)
	}
	return a
}

func (e *env) must(want int, method, path, body string, headers ...string) answer {
	e.t.Helper()
	a := e.do(method, path, body, headers...)
	if a.status != want {
		e.t.Fatalf("%s %s = %d %v, want %d", method, path, a.status, a.body, want)
	}
	return a
}

func (a answer) scimType(t *testing.T, status int, scimType string) {
	t.Helper()
	if a.status != status || a.body["scimType"] != scimType && scimType != "" {
		t.Fatalf("answer %d %v, want %d scimType %q", a.status, a.body, status, scimType)
	}
	if schemas, _ := a.body["schemas"].([]any); len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Fatalf("error body without the SCIM error schema: %v", a.body)
	}
}

func (a answer) total() int {
	n, _ := a.body["totalResults"].(float64)
	return int(n)
}

func (a answer) resources() []map[string]any {
	var out []map[string]any
	list, _ := a.body["Resources"].([]any)
	for _, r := range list {
		out = append(out, r.(map[string]any))
	}
	return out
}

const adaJSON = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","externalId":"00u1",
	"name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"primary":true,"value":"ada@example.com","type":"work"}],"active":true,"password":"hunter2-never-stored"}`

func TestAuthentication(t *testing.T) {
	e := newEnv(t, fileStore(t))
	for name, header := range map[string]string{"none": "", "wrong": "Bearer nope", "basic": "Basic " + token} {
		req := httptest.NewRequest("GET", "/scim/v2/Users", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), token) {
			t.Errorf("%s credential: %d %s", name, rec.Code, rec.Body)
		}
	}
	unset := &scim.Server{Store: fileStore(t), Token: func(context.Context) (string, error) { return "", nil }}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/scim/v2/Users", nil)
	req.Header.Set("Authorization", "Bearer ")
	unset.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("with no ONBOARD_SCIM_TOKEN: %d", rec.Code)
	}
}

// Okta's sequence: look the user up by userName, create, read back,
// deactivate with a value object.
func TestOktaUserSequence(t *testing.T) {
	e := newEnv(t, fileStore(t))
	if got := e.must(200, "GET", `/scim/v2/Users?filter=userName%20eq%20%22ada@example.com%22&startIndex=1&count=100`, ""); got.total() != 0 {
		t.Fatalf("before create: %v", got.body)
	}
	created := e.must(201, "POST", "/scim/v2/Users", adaJSON)
	id, _ := created.body["id"].(string)
	meta, _ := created.body["meta"].(map[string]any)
	if id == "" || meta["version"] != created.header.Get("ETag") || created.header.Get("Location") == "" || created.body["password"] != nil {
		t.Fatalf("created: %v %v", created.body, created.header)
	}
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace")

	// A retried POST (the first answer was lost) is answered with the same
	// user and provisions nothing again.
	again := e.must(201, "POST", "/scim/v2/Users", adaJSON)
	if again.body["id"] != id {
		t.Fatalf("retried POST made user %v, first was %s", again.body["id"], id)
	}
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace")
	other := strings.Replace(strings.Replace(adaJSON, `"00u1"`, `"00u2"`, 1), "ada@example.com\",\"externalId", "ADA@example.com\",\"externalId", 1)
	e.do("POST", "/scim/v2/Users", other).scimType(t, 409, "uniqueness")

	found := e.must(200, "GET", `/scim/v2/Users?filter=userName+eq+%22ADA@EXAMPLE.COM%22`, "")
	if found.total() != 1 || found.resources()[0]["id"] != id || found.resources()[0]["externalId"] != "00u1" {
		t.Fatalf("lookup by userName: %v", found.body)
	}
	e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer")
	// DELETE after deactivation deprovisions no one twice.
	e.must(204, "DELETE", "/scim/v2/Users/"+id, "")
	e.must(404, "GET", "/scim/v2/Users/"+id, "")
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer")
	if strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), "hunter2") {
		t.Error("a secret reached the log")
	}
	// The name is free again once the user is gone.
	e.must(201, "POST", "/scim/v2/Users", other)
}

// Entra's dialect: capitalised ops, a value-filter path, a string boolean;
// the leaver is deprovisioned by the email that was provisioned.
func TestEntraUserSequence(t *testing.T) {
	e := newEnv(t, fileStore(t))
	id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
	got := e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Replace","path":"emails[type eq \"work\"].value","value":"ada.king@example.com"},
		{"op":"Replace","path":"name.familyName","value":"King"},
		{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Math"},
		{"op":"Replace","path":"active","value":"False"}]}`)
	if got.body["active"] != false || got.body["name"].(map[string]any)["givenName"] != "Ada" {
		t.Fatalf("patched: %v", got.body)
	}
	if ext, _ := got.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any); ext["department"] != "Math" {
		t.Fatalf("enterprise extension: %v", got.body)
	}
	emails := got.body["emails"].([]any)
	if len(emails) != 1 || emails[0].(map[string]any)["value"] != "ada.king@example.com" {
		t.Fatalf("emails: %v", emails)
	}
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer")
	// Re-enabled: provisioned again, by the new email and name.
	e.must(200, "PATCH", "/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"True"}]}`)
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer", "provision ada.king@example.com viewer Ada King")
}

// Groups map to profiles by displayName; membership changes move the user.
func TestGroupsApplyProfiles(t *testing.T) {
	e := newEnv(t, fileStore(t))
	id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
	if got := e.must(200, "GET", `/scim/v2/Groups?filter=displayName%20eq%20%22Looker%20Admins%22`, ""); got.total() != 0 {
		t.Fatal(got.body)
	}
	g := e.must(201, "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Looker Admins","members":[]}`)
	gid := g.body["id"].(string)
	e.do("POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"looker admins"}`).scimType(t, 409, "uniqueness")
	e.do("PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"nobody"}]}]}`).scimType(t, 400, "invalidValue")
	e.must(200, "PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"`+id+`"}]}]}`)
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "provision ada@example.com admin Ada Lovelace")
	members := e.must(200, "GET", "/scim/v2/Groups/"+gid, "").body["members"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["value"] != id {
		t.Fatalf("members: %v", members)
	}
	if got := e.must(200, "GET", `/scim/v2/Groups?filter=members.value+eq+%22`+id+`%22&excludedAttributes=members`, ""); got.total() != 1 || got.resources()[0]["members"] != nil {
		t.Fatalf("filter by member, members excluded: %v", got.body)
	}
	user := e.must(200, "GET", "/scim/v2/Users/"+id+"?attributes=groups", "").body
	if groups, _ := user["groups"].([]any); len(groups) != 1 || user["userName"] != nil {
		t.Fatalf("user's groups, projected: %v", user)
	}
	e.must(200, "PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members[value eq \"`+id+`\"]"}]}`)
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "provision ada@example.com admin Ada Lovelace", "provision ada@example.com viewer Ada Lovelace")
	// A retried removal changes nothing and asks the target nothing.
	e.must(200, "PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members[value eq \"`+id+`\"]"}]}`)
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "provision ada@example.com admin Ada Lovelace", "provision ada@example.com viewer Ada Lovelace")
	e.must(204, "DELETE", "/scim/v2/Groups/"+gid, "")
}

func TestProtocolConformance(t *testing.T) {
	e := newEnv(t, fileStore(t))
	var ids []string
	for _, name := range []string{"carol", "alice", "bob", "dave", "erin"} {
		body := strings.ReplaceAll(adaJSON, "ada@", name+"@")
		ids = append(ids, e.must(201, "POST", "/scim/v2/Users", body).body["id"].(string))
	}
	for filter, want := range map[string]int{
		`userName sw "a"`:                    1,
		`userName co "example.com"`:          5,
		`USERNAME eq "BOB@example.com"`:      1,
		`externalId eq "00u1"`:               5,
		`emails.value eq "dave@example.com"`: 1,
		`userName eq "bob@example.com" or userName eq "erin@example.com"`: 2,
		`userName sw "a" and active eq true`:                              1,
		`title pr`:                                                        0,
		`id eq "` + ids[2] + `"`:                                          1,
	} {
		got := e.must(200, "GET", "/scim/v2/Users?filter="+urlEscape(filter), "")
		if got.total() != want || len(got.resources()) != want {
			t.Errorf("filter %s: %d results (%d listed), want %d", filter, got.total(), len(got.resources()), want)
		}
	}
	e.do("GET", "/scim/v2/Users?filter="+urlEscape(`userName eq`), "").scimType(t, 400, "invalidFilter")
	e.do("GET", "/scim/v2/Users?filter="+urlEscape(`nope eq "x"`), "").scimType(t, 400, "invalidFilter")

	// Pagination is 1-based; pages do not overlap and cover the directory.
	seen := map[string]bool{}
	for start := 1; start <= 5; start += 2 {
		page := e.must(200, "GET", "/scim/v2/Users?startIndex="+strconv.Itoa(start)+"&count=2", "")
		if page.total() != 5 || page.body["startIndex"].(float64) != float64(start) {
			t.Fatalf("page %d: %v", start, page.body)
		}
		for _, r := range page.resources() {
			seen[r["id"].(string)] = true
		}
	}
	if len(seen) != 5 {
		t.Errorf("pages covered %d users, want 5", len(seen))
	}
	if got := e.must(200, "GET", "/scim/v2/Users?count=0", ""); got.total() != 5 || len(got.resources()) != 0 {
		t.Errorf("count=0: %v", got.body)
	}
	// Projection.
	got := e.must(200, "GET", "/scim/v2/Users/"+ids[0]+"?attributes=userName,name.givenName", "").body
	if got["userName"] == nil || got["id"] == nil || got["emails"] != nil || got["name"].(map[string]any)["familyName"] != nil {
		t.Errorf("attributes=userName,name.givenName: %v", got)
	}
	got = e.must(200, "GET", "/scim/v2/Users/"+ids[0]+"?excludedAttributes=emails,meta", "").body
	if got["emails"] != nil || got["meta"] != nil || got["userName"] == nil {
		t.Errorf("excludedAttributes=emails,meta: %v", got)
	}
	// If-Match.
	etag := e.must(200, "GET", "/scim/v2/Users/"+ids[0], "").header.Get("ETag")
	patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"Countess"}]}`
	e.do("PATCH", "/scim/v2/Users/"+ids[0], patch, "If-Match", `W/"999"`).scimType(t, 412, "")
	updated := e.must(200, "PATCH", "/scim/v2/Users/"+ids[0], patch, "If-Match", etag)
	if updated.header.Get("ETag") == etag || updated.body["title"] != "Countess" {
		t.Errorf("after a PATCH: ETag %s (was %s), %v", updated.header.Get("ETag"), etag, updated.body)
	}
	e.do("DELETE", "/scim/v2/Users/"+ids[0], "", "If-Match", etag).scimType(t, 412, "")
	// Error bodies.
	for _, tc := range []struct {
		body, scimType string
	}{
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"id","value":"x"}]}`, "mutability"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails[type eq \"work\" and primary eq false].value","value":"x@example.com"}]}`, "noTarget"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove"}]}`, "noTarget"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":"maybe"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":"not an email"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"nope","value":"x"}]}`, "invalidPath"},
	} {
		before := e.must(200, "GET", "/scim/v2/Users/"+ids[1], "").header.Get("ETag")
		e.do("PATCH", "/scim/v2/Users/"+ids[1], tc.body).scimType(t, 400, tc.scimType)
		if after := e.must(200, "GET", "/scim/v2/Users/"+ids[1], "").header.Get("ETag"); after != before {
			t.Errorf("a refused PATCH (%s) changed the user", tc.scimType)
		}
	}
	e.do("POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}`).scimType(t, 400, "invalidValue")
	e.do("GET", "/scim/v2/Users/nope", "").scimType(t, 404, "")
	// Discovery.
	e.must(200, "GET", "/scim/v2/ServiceProviderConfig", "")
	if got := e.must(200, "GET", "/scim/v2/ResourceTypes", ""); got.total() != 2 {
		t.Errorf("resource types: %v", got.body)
	}
	e.must(200, "GET", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "")
}

// A target failure answers 5xx with the user kept; the IdP's retry
// resumes. The breaker's refusals are 503 with Retry-After.
func TestFailuresAreRetried(t *testing.T) {
	e := newEnv(t, fileStore(t))
	e.target.failing = "provision"
	e.do("POST", "/scim/v2/Users", adaJSON).scimType(t, 503, "")
	e.target.failing = ""
	e.must(201, "POST", "/scim/v2/Users", adaJSON)
	if got := e.must(200, "GET", "/scim/v2/Users", ""); got.total() != 1 {
		t.Fatalf("after a failed and a retried POST: %v", got.body)
	}
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace")

	var ids []string
	for _, name := range []string{"b", "c", "d", "f"} {
		ids = append(ids, e.must(201, "POST", "/scim/v2/Users", strings.ReplaceAll(adaJSON, "ada@", name+"@")).body["id"].(string))
	}
	off := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`
	for _, u := range ids[:3] {
		e.must(200, "PATCH", "/scim/v2/Users/"+u, off)
	}
	refused := e.do("PATCH", "/scim/v2/Users/"+ids[3], off)
	if refused.status != 503 || refused.header.Get("Retry-After") == "" {
		t.Fatalf("past max_deprovision: %d %v %v", refused.status, refused.header, refused.body)
	}
	e.do("DELETE", "/scim/v2/Users/"+ids[3], "").scimType(t, 503, "")
	e.must(200, "GET", "/scim/v2/Users/"+ids[3], "")
}

// The directory on the cloud stores, through their emulators.
func TestDirectoryOnFirestore(t *testing.T) { sequenceOn(t, statetest.Firestore(t)) }
func TestDirectoryOnDynamoDB(t *testing.T)  { sequenceOn(t, statetest.DynamoDB(t)) }

func sequenceOn(t *testing.T, store state.Store) {
	e := newEnv(t, store)
	id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
	e.must(201, "POST", "/scim/v2/Users", adaJSON)
	gid := e.must(201, "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Looker Admins","members":[{"value":"`+id+`"}]}`).body["id"].(string)
	if got := e.must(200, "GET", `/scim/v2/Users?filter=userName+eq+%22ada@example.com%22`, ""); got.total() != 1 {
		t.Fatal(got.body)
	}
	e.must(204, "DELETE", "/scim/v2/Users/"+id, "")
	if got := e.must(200, "GET", "/scim/v2/Groups/"+gid, "").body; got["members"] != nil && len(got["members"].([]any)) != 0 {
		t.Fatalf("a deleted user is still a member: %v", got)
	}
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "provision ada@example.com admin Ada Lovelace", "deprovision ada@example.com admin")
}

func urlEscape(s string) string {
	r := strings.NewReplacer(" ", "%20", `"`, "%22", "@", "%40")
	return r.Replace(s)
}

// Users lists what the IdP wrote beside what onboard made of it: the
// groups by name, and the email and profile provisioned, or none.
func TestUsersListsTheDirectory(t *testing.T) {
	store := fileStore(t)
	e := newEnv(t, store)
	id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
	e.must(201, "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Looker Admins","members":[{"value":"`+id+`"}]}`)
	e.must(201, "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Bob@example.com","active":false}`)
	users, err := scim.Users(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].UserName != "ada@example.com" || users[1].UserName != "Bob@example.com" {
		t.Fatalf("users %+v", users)
	}
	ada, bob := users[0], users[1]
	if ada.ID != id || ada.ExternalID != "00u1" || !ada.Active || len(ada.Groups) != 1 || ada.Groups[0] != "Looker Admins" ||
		ada.Provisioned == nil || *ada.Provisioned != (scim.Provisioned{Email: "ada@example.com", Profile: "admin", Active: true}) {
		t.Errorf("ada %+v %+v", ada, ada.Provisioned)
	}
	if bob.Active || bob.Provisioned != nil {
		t.Errorf("an inactive user never provisioned: %+v", bob)
	}
}

// sources.scim maps IdP attributes; a path that is no SCIM attribute, an
// empty key or an unknown setting is refused at start-up.
func TestSCIMPolicyIsCheckedAtStartUp(t *testing.T) {
	base := "default_profile: p\nprofiles:\n  p:\n    looker: {roles: [Viewer]}\n"
	cfg, err := targets.ParseConfig([]byte(base + "sources:\n  scim:\n    attributes:\n      urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department: department\n      name.formatted: full_name\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := scim.PolicyOf(cfg).Attributes; len(got) != 2 || got["name.formatted"] != "full_name" {
		t.Errorf("attributes %v", got)
	}
	for _, c := range []struct{ yaml, want string }{
		{"sources:\n  scim:\n    attributes: {a.b.c: x}\n", `"a.b.c" is not a SCIM attribute`},
		{"sources:\n  scim:\n    attributes: {title: ''}\n", "empty attribute key"},
		{"sources:\n  scim:\n    atributes: {}\n", `unknown key "atributes"`},
	} {
		if _, err := targets.ParseConfig([]byte(base + c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
}

// A leaver is deprovisioned by the profile they were given, also where
// the policy has no default_profile to fall back on.
func TestLeaverWithoutDefaultProfile(t *testing.T) {
	e := newEnvWith(t, fileStore(t), "profiles:\n  admin:\n    scim_groups: [Looker Admins]\n    stub: {}\n")
	id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
	e.must(201, "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Looker Admins","members":[{"value":"`+id+`"}]}`)
	e.must(200, "PATCH", "/scim/v2/Users/"+id, deactivate)
	e.target.took(t, "provision ada@example.com admin Ada Lovelace", "deprovision ada@example.com admin")
}

const deactivate = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`

// renameTo is Okta's PATCH of a user's login and work email.
func renameTo(email string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"userName":"` + email +
		`","emails":[{"primary":true,"value":"` + email + `","type":"work"}]}}]}`
}

func (e *env) provisioned(store state.Store, id string) scim.Provisioned {
	e.t.Helper()
	users, err := scim.Users(context.Background(), store)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, u := range users {
		if u.ID == id && u.Provisioned != nil {
			return *u.Provisioned
		}
	}
	e.t.Fatalf("user %s: nothing provisioned in %+v", id, users)
	return scim.Provisioned{}
}

// An email change deprovisions the accounts made under the previous
// email (by the profile given, as a leaver's) before provisioning the new
// one; a change of letter case alone is the same person.
func TestEmailChangeDeprovisionsThePreviousEmail(t *testing.T) {
	store := fileStore(t)
	e := newEnv(t, store)
	id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
	e.must(200, "PATCH", "/scim/v2/Users/"+id, renameTo("ada.king@example.com"))
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer", "provision ada.king@example.com viewer Ada Lovelace")
	if got := e.provisioned(store, id); got != (scim.Provisioned{Email: "ada.king@example.com", Profile: "viewer", Active: true}) {
		t.Errorf("recorded %+v", got)
	}
	e.must(200, "PATCH", "/scim/v2/Users/"+id, renameTo("Ada.King@example.com"))
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer", "provision ada.king@example.com viewer Ada Lovelace",
		"provision Ada.King@example.com viewer Ada Lovelace")
	e.must(200, "PATCH", "/scim/v2/Users/"+id, deactivate)
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer", "provision ada.king@example.com viewer Ada Lovelace",
		"provision Ada.King@example.com viewer Ada Lovelace", "deprovision Ada.King@example.com viewer")
}

// A new email that fails to provision after the previous one was
// deprovisioned keeps the record on the previous email, inactive; the
// IdP's retry provisions the new one without deprovisioning again.
func TestEmailChangeResumesAfterAFailure(t *testing.T) {
	store := fileStore(t)
	e := newEnv(t, store)
	id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
	e.target.failing = "provision"
	e.do("PATCH", "/scim/v2/Users/"+id, renameTo("ada.king@example.com")).scimType(t, 503, "")
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer")
	if got := e.provisioned(store, id); got != (scim.Provisioned{Email: "ada@example.com", Profile: "viewer", Active: false}) {
		t.Errorf("after a failed provision of the new email, recorded %+v", got)
	}
	e.target.failing = ""
	for range 2 {
		e.must(200, "PATCH", "/scim/v2/Users/"+id, renameTo("ada.king@example.com"))
	}
	e.target.took(t, "provision ada@example.com viewer Ada Lovelace", "deprovision ada@example.com viewer", "provision ada.king@example.com viewer Ada Lovelace")
	if got := e.provisioned(store, id); got != (scim.Provisioned{Email: "ada.king@example.com", Profile: "viewer", Active: true}) {
		t.Errorf("after the retries, recorded %+v", got)
	}
}

// A mass email change (a domain change) passes the deprovision breaker:
// once it is open, an email change answers 503 and provisions nothing
// under the new email until an operator releases the breaker.
func TestEmailChangeWaitsForTheBreaker(t *testing.T) {
	store := fileStore(t)
	e := newEnv(t, store)
	var ids []string
	for _, name := range []string{"ada", "bob", "carol", "dave"} {
		ids = append(ids, e.must(201, "POST", "/scim/v2/Users", strings.ReplaceAll(adaJSON, "ada@", name+"@")).body["id"].(string))
	}
	for _, id := range ids[:3] {
		e.must(200, "PATCH", "/scim/v2/Users/"+id, renameTo("x"+id+"@example.org"))
	}
	e.target.calls = nil
	refused := e.do("PATCH", "/scim/v2/Users/"+ids[3], renameTo("dave@example.org"))
	if refused.status != 503 || refused.header.Get("Retry-After") == "" {
		t.Fatalf("an email change past max_deprovision: %d %v %v", refused.status, refused.header, refused.body)
	}
	e.target.took(t)
	if got := e.provisioned(store, ids[3]); got != (scim.Provisioned{Email: "dave@example.com", Profile: "viewer", Active: true}) {
		t.Errorf("after a refused email change, recorded %+v", got)
	}
	if _, err := core.ReleaseBreaker(context.Background(), store, "test"); err != nil {
		t.Fatal(err)
	}
	e.must(200, "PATCH", "/scim/v2/Users/"+ids[3], renameTo("dave@example.org"))
	e.target.took(t, "deprovision dave@example.com viewer", "provision dave@example.org viewer Ada Lovelace")
}

// A location (the Location header, meta.location) names the host the
// request reached, whatever X-Forwarded-Host or X-Forwarded-Proto its
// caller sends; the scheme is https where the platform says so: a
// front's X-Forwarded-Proto (Cloud Functions), the URL Lambda's adapter
// builds, TLS.
func TestLocationsIgnoreForgedForwardedHeaders(t *testing.T) {
	e := newEnv(t, fileStore(t))
	forged := func(req *http.Request, proto string) *http.Request {
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", proto)
		return req
	}
	post := httptest.NewRequest("POST", "/scim/v2/Users", strings.NewReader(adaJSON))
	post.Host = "onboard.test"
	created := e.serve(forged(post, "https://evil.example/#"))
	id, _ := created.body["id"].(string)
	if created.status != 201 || id == "" {
		t.Fatalf("create: %d %v", created.status, created.body)
	}
	want := "http://onboard.test/scim/v2/Users/" + id
	if got := created.header.Get("Location"); got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if got := created.body["meta"].(map[string]any)["location"]; got != want {
		t.Errorf("meta.location %q, want %q", got, want)
	}

	behindFront := httptest.NewRequest("GET", "/scim/v2/Users", nil)
	behindFront.Host = "onboard-abc-ew.a.run.app"
	lambda, err := http.NewRequest("GET", "https://abc123.execute-api.eu-west-1.amazonaws.com/scim/v2/Users", nil)
	if err != nil {
		t.Fatal(err)
	}
	overTLS := httptest.NewRequest("GET", "https://onboard.test/scim/v2/Users", nil)
	overTLS.URL.Scheme = "" // as a server reads an origin-form request line
	for req, want := range map[*http.Request]string{
		forged(behindFront, "https"): "https://onboard-abc-ew.a.run.app/scim/v2/Users/" + id,
		forged(lambda, "http"):       "https://abc123.execute-api.eu-west-1.amazonaws.com/scim/v2/Users/" + id,
		forged(overTLS, "http"):      "https://onboard.test/scim/v2/Users/" + id,
	} {
		list := e.serve(req)
		if len(list.resources()) != 1 {
			t.Fatalf("list: %v", list.body)
		}
		if got := list.resources()[0]["meta"].(map[string]any)["location"]; got != want {
			t.Errorf("%s: meta.location %q, want %q", req.URL, got, want)
		}
	}
}

// crashingStore fails the next Put that crash picks, as a function that
// stopped (crashed, timed out) just before that write would.
type crashingStore struct {
	state.Store
	mu    sync.Mutex
	crash func(key string, data []byte) bool
}

func (s *crashingStore) Put(ctx context.Context, key string, data []byte, expect int64, ttl time.Duration) (int64, error) {
	s.mu.Lock()
	crash := s.crash != nil && s.crash(key, data)
	if crash {
		s.crash = nil
	}
	s.mu.Unlock()
	if crash {
		return 0, errors.New("the function stopped here")
	}
	return s.Store.Put(ctx, key, data, expect, ttl)
}

func (s *crashingStore) crashAt(crash func(key string, data []byte) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crash = crash
}

// agree checks that an unfiltered list, its count, a lookup by userName
// and a read by id all see the same users: ids.
func (e *env) agree(userName string, ids ...string) {
	e.t.Helper()
	list := e.must(200, "GET", "/scim/v2/Users", "")
	var listed []string
	for _, r := range list.resources() {
		listed = append(listed, r["id"].(string))
	}
	if list.total() != len(ids) || !slices.Equal(listed, ids) {
		e.t.Fatalf("the list counts %d users and shows %v, want %v", list.total(), listed, ids)
	}
	if found := e.must(200, "GET", "/scim/v2/Users?filter="+urlEscape(`userName eq "`+userName+`"`), ""); found.total() != len(ids) {
		e.t.Fatalf("a lookup of %s finds %v, want %v", userName, found.body, ids)
	}
	for _, id := range ids {
		e.must(200, "GET", "/scim/v2/Users/"+id, "")
	}
}

// A POST that stops part way (after claiming the userName, at the
// resource's write or the id set's) leaves no user that one read sees and
// another does not; its retry finishes it, under the id it claimed.
func TestCrashedCreateIsNoUserUntilRetried(t *testing.T) {
	for point, crash := range map[string]func(string, []byte) bool{
		"the resource": func(key string, _ []byte) bool { return strings.HasPrefix(key, "scim/user/") },
		"the id set":   func(key string, _ []byte) bool { return strings.HasPrefix(key, "scim/user-ids/") },
	} {
		t.Run(point, func(t *testing.T) {
			store := &crashingStore{Store: fileStore(t)}
			e := newEnv(t, store)
			store.crashAt(crash)
			e.do("POST", "/scim/v2/Users", adaJSON).scimType(t, 503, "")
			e.agree("ada@example.com")
			e.target.took(t)
			id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
			e.agree("ada@example.com", id)
			e.target.took(t, "provision ada@example.com viewer Ada Lovelace")
		})
	}
}

// A half-made user whose POST is never retried stops blocking its
// userName after a while: another POST for the name takes it over, and
// the half-made one is counted nowhere.
func TestCrashedCreateIsReclaimed(t *testing.T) {
	store := &crashingStore{Store: fileStore(t)}
	e := newEnv(t, store)
	now := time.Now()
	e.srv.(*scim.Server).Now = func() time.Time { return now }
	store.crashAt(func(key string, _ []byte) bool { return strings.HasPrefix(key, "scim/user/") })
	e.do("POST", "/scim/v2/Users", adaJSON).scimType(t, 503, "")
	other := strings.Replace(adaJSON, `"00u1"`, `"00u2"`, 1)
	e.do("POST", "/scim/v2/Users", other).scimType(t, 409, "uniqueness")
	now = now.Add(time.Hour)
	id := e.must(201, "POST", "/scim/v2/Users", other).body["id"].(string)
	e.agree("ada@example.com", id)
}

// A DELETE that stops part way leaves the user gone for every read, or
// there for every read, never listed but found nor the reverse; and it
// blocks the userName no longer than a crashed create does.
func TestCrashedDeleteAgrees(t *testing.T) {
	for point, crash := range map[string]func(string, []byte) bool{
		"the id set":   func(key string, _ []byte) bool { return strings.HasPrefix(key, "scim/user-ids/") },
		"the name":     func(key string, _ []byte) bool { return strings.HasPrefix(key, "scim/user-name/") },
		"the resource": func(key string, _ []byte) bool { return strings.HasPrefix(key, "scim/user/") },
	} {
		t.Run(point, func(t *testing.T) {
			store := &crashingStore{Store: fileStore(t)}
			e := newEnv(t, store)
			now := time.Now()
			e.srv.(*scim.Server).Now = func() time.Time { return now }
			id := e.must(201, "POST", "/scim/v2/Users", adaJSON).body["id"].(string)
			store.crashAt(crash)
			if a := e.do("DELETE", "/scim/v2/Users/"+id, ""); a.status != 503 && a.status != 204 {
				t.Fatalf("DELETE = %d %v", a.status, a.body)
			}
			if e.do("GET", "/scim/v2/Users/"+id, "").status == 200 {
				e.agree("ada@example.com", id)
				return
			}
			e.agree("ada@example.com")
			now = now.Add(time.Hour)
			again := e.must(201, "POST", "/scim/v2/Users", strings.Replace(adaJSON, `"00u1"`, `"00u2"`, 1)).body["id"].(string)
			e.agree("ada@example.com", again)
		})
	}
}
