package looker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/plugin"
)

type fixture struct {
	target *Target
	srv    *lookertest.Server
	ids    map[string]string // seeded names → ids
}

func newFixture(t *testing.T, opts lookertest.Options, welcome Welcome) *fixture {
	t.Helper()
	c, srv := newTestClient(t, opts)
	f := &fixture{target: NewTarget(c, welcome, nil), srv: srv, ids: map[string]string{}}
	for _, r := range []string{"Viewer", "Developer", "Admin"} {
		f.ids[r] = srv.AddRole(r)
	}
	for _, g := range []string{"Analysts", "Builders"} {
		f.ids[g] = srv.AddGroup(g)
	}
	f.ids["department"] = srv.AddUserAttribute("department", false)
	f.ids["region"] = srv.AddUserAttribute("region", false)
	f.ids["email"] = srv.AddUserAttribute("email", true)
	return f
}

func analyst() *core.Profile {
	return lookerProfile("analyst", "{kind: regular, roles: [Viewer], groups: [Analysts], attributes: {department: analytics}, deprovision: disable}")
}

// lookerProfile is a profile of one looker section, decoded as onboard.yaml is.
func lookerProfile(name, section string) *core.Profile {
	cfg, err := core.ParseConfig([]byte("profiles:\n  "+name+":\n    attributes_allowed: [region]\n    looker: "+section+"\n"), plugin.Schema([]plugin.Target{Plugin}, nil, nil))
	if err != nil {
		panic(err)
	}
	return cfg.Profiles[name]
}

var ada = core.Person{Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", Attributes: map[string]string{"region": "EMEA"}}

func (f *fixture) user(t *testing.T, email string) lookertest.User {
	t.Helper()
	u, ok := f.srv.UserByEmail(email)
	if !ok {
		t.Fatalf("no Looker user %s", email)
	}
	return u
}

func TestProvisionNewUser(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	res, err := f.target.Provision(context.Background(), ada, analyst())
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != core.StatusCreated || !res.Welcome || res.ID == "" {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(res.SetupURL, "/account/setup/") {
		t.Errorf("setup URL %q: want the account/setup form of the reset link", res.SetupURL)
	}
	u := f.user(t, "ada@example.com")
	if u.FirstName != "Ada" || u.LastName != "Lovelace" || u.IsDisabled {
		t.Errorf("user %+v", u)
	}
	if got := f.srv.UserRoleIDs(res.ID); !slices.Equal(got, []string{f.ids["Viewer"]}) {
		t.Errorf("roles %v", got)
	}
	if got := f.srv.UserGroupIDs(res.ID); !slices.Equal(got, []string{f.ids["Analysts"]}) {
		t.Errorf("groups %v", got)
	}
	attrs := f.srv.UserAttributeValues(res.ID)
	if attrs["department"] != "analytics" || attrs["region"] != "EMEA" {
		t.Errorf("attributes %v", attrs)
	}
	if n := f.srv.Count("GET", "/users/{id}/roles"); n != 0 {
		t.Errorf("read the roles of a user created a moment ago (%d calls)", n)
	}
	for _, pr := range f.srv.PasswordResets() {
		if pr.ExpiresSent {
			t.Error("password_reset must be called without expires: setup links should not die in 60 minutes")
		}
	}
}

func TestAccountSetupURLPreferred(t *testing.T) {
	f := newFixture(t, lookertest.Options{AccountSetupURL: true}, WelcomeByOnboard)
	res, err := f.target.Provision(context.Background(), ada, analyst())
	if err != nil || !strings.Contains(res.SetupURL, "/account/setup/") {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestProvisionTwiceMakesOneUser(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	ctx := context.Background()
	if _, err := f.target.Provision(ctx, ada, analyst()); err != nil {
		t.Fatal(err)
	}
	res, err := f.target.Provision(ctx, ada, analyst())
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != core.StatusUnchanged || res.Welcome || res.SetupURL != "" {
		t.Errorf("second delivery: %+v, want unchanged with no welcome", res)
	}
	if n := len(f.srv.Users()); n != 1 {
		t.Errorf("%d users after two deliveries", n)
	}
	if n := f.srv.Count("POST", "/users"); n != 1 {
		t.Errorf("POST /users sent %d times", n)
	}
}

func TestProvisionExistingUserKeepsAdminGrants(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	id := f.srv.AddUser(lookertest.SeedUser{FirstName: "Ada", Email: "ADA@example.com", LoggedIn: true, RoleIDs: []string{f.ids["Admin"]}})
	res, err := f.target.Provision(context.Background(), ada, analyst())
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != core.StatusUpdated || res.ID != id || res.Welcome {
		t.Errorf("result %+v", res)
	}
	if !slices.Equal(res.Changes, []string{"attributes", "groups", "roles"}) {
		t.Errorf("changes %v", res.Changes)
	}
	roles := f.srv.UserRoleIDs(id)
	if !slices.Contains(roles, f.ids["Admin"]) || !slices.Contains(roles, f.ids["Viewer"]) {
		t.Errorf("roles %v: the admin-granted role must stay and the profile's be added", roles)
	}
}

func TestProvisionReenablesDisabledUser(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	id := f.srv.AddUser(lookertest.SeedUser{Email: "ada@example.com", Disabled: true, LoggedIn: true})
	res, err := f.target.Provision(context.Background(), ada, analyst())
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != core.StatusUpdated || !res.Welcome || !slices.Contains(res.Changes, "enabled") {
		t.Errorf("result %+v", res)
	}
	if u := f.user(t, "ada@example.com"); u.IsDisabled {
		t.Error("still disabled")
	}
	if !strings.Contains(res.SetupURL, "/password/reset/") {
		t.Errorf("a user who has logged in before gets a reset link, got %q", res.SetupURL)
	}
	_ = id
}

func TestCredentialFailureLeavesNoOrphan(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	f.srv.InjectFault(lookertest.Fault{Method: "POST", Path: "/users/{id}/credentials_email", Status: 500, Body: `{"message":"boom","documentation_url":"x"}`})
	_, err := f.target.Provision(context.Background(), ada, analyst())
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want a retryable 503", err)
	}
	if n := len(f.srv.Users()); n != 0 {
		t.Errorf("%d users left behind", n)
	}
}

func TestGrantFailureLeavesNoOrphan(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	f.srv.InjectFault(lookertest.Fault{Method: "POST", Path: "/groups/{id}/users", Status: 403, Body: `{"message":"nope","documentation_url":"x"}`})
	_, err := f.target.Provision(context.Background(), ada, analyst())
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadGateway || !strings.Contains(ce.Message, "nope") {
		t.Fatalf("got %v, want a 502 with Looker's message", err)
	}
	if n := len(f.srv.Users()); n != 0 {
		t.Errorf("%d users left behind", n)
	}
}

// A create Looker carried out but answered with an error, or whose answer
// was lost, is finished in the same delivery: the user carrying this
// create's mark is adopted, completed and welcomed.
func TestCreateThatFailedAfterActingIsAdopted(t *testing.T) {
	for name, fault := range map[string]lookertest.Fault{
		"500 after acting":        {Status: 500, AfterActing: true},
		"connection reset after":  {DropConnection: true, AfterActing: true},
		"nameless, 500 after act": {Status: 500, AfterActing: true},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
			person := ada
			if strings.HasPrefix(name, "nameless") {
				person.FirstName, person.LastName = "", ""
				f.srv.AddUser(lookertest.SeedUser{Email: "someone@example.com"}) // the search must page past others
			}
			fault.Method, fault.Path, fault.Times = "POST", "/users", 1
			f.srv.InjectFault(fault)
			res, err := f.target.Provision(context.Background(), person, analyst())
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != core.StatusCreated || !res.Welcome || res.SetupURL == "" {
				t.Errorf("result %+v, want created with a welcome", res)
			}
			u := f.user(t, "ada@example.com")
			if u.ID != res.ID || u.CredentialsEmail == nil {
				t.Errorf("user %+v", u)
			}
			if got := f.srv.UserRoleIDs(u.ID); !slices.Equal(got, []string{f.ids["Viewer"]}) {
				t.Errorf("roles %v", got)
			}
			if got := f.srv.UserGroupIDs(u.ID); !slices.Equal(got, []string{f.ids["Analysts"]}) {
				t.Errorf("groups %v", got)
			}
			if n := f.srv.Count("POST", "/users"); n != 1 {
				t.Errorf("POST /users sent %d times, want the one adopted", n)
			}
			for _, u := range f.srv.Users() {
				if u.CredentialsEmail == nil {
					t.Errorf("login-less user %s left behind", u.ID)
				}
			}
		})
	}
}

// A same-named user nobody can log in as is someone else's (an admin's
// placeholder, another tool's half-made user): without this create's mark
// it is never taken, even when the create's outcome is unknown.
func TestCreateNeverAdoptsSameNamedStranger(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	stranger := f.srv.AddUser(lookertest.SeedUser{FirstName: "Ada", LastName: "Lovelace"})
	f.srv.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 500, Times: 1})
	_, err := f.target.Provision(context.Background(), ada, analyst())
	var ce *core.Error
	if !errors.As(err, &ce) || !ce.Retryable() {
		t.Fatalf("got %v, want a retryable error: the create's outcome is unknown", err)
	}
	users := f.srv.Users()
	if len(users) != 1 || users[0].ID != stranger || users[0].CredentialsEmail != nil || len(users[0].GroupIDs) != 0 {
		t.Fatalf("users %+v, want the stranger alone and untouched", users)
	}
	if n := f.srv.Count("POST", "/users/{id}/credentials_email"); n != 0 {
		t.Errorf("%d credential writes after a create that made nothing", n)
	}
}

func TestConflictOnCredentialsAdoptsExistingUser(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	// The lookup misses (as when another delivery creates the user a moment
	// later); the credential then conflicts with that user's.
	f.srv.InjectFault(lookertest.Fault{Method: "GET", Path: "/users/credential/{type}/{id}", Status: 404, Times: 1, Body: `{"message":"Not found","documentation_url":"x"}`})
	id := f.srv.AddUser(lookertest.SeedUser{Email: "ada@example.com"})
	res, err := f.target.Provision(context.Background(), ada, analyst())
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != id || res.Status != core.StatusUpdated {
		t.Errorf("result %+v, want the existing user %s adopted", res, id)
	}
	if n := len(f.srv.Users()); n != 1 {
		t.Errorf("%d users", n)
	}
}

func TestEmbedUser(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	prof := lookerProfile("customer", "{kind: embed, groups: [Analysts], attributes: {department: c}}")
	p := core.Person{Email: "cust@example.com", FirstName: "Cee", ExternalUserID: "cust-42"}
	ctx := context.Background()
	res, err := f.target.Provision(ctx, p, prof)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != core.StatusCreated || res.Welcome || res.SetupURL != "" {
		t.Errorf("result %+v: embed users get no setup link or welcome", res)
	}
	if got := f.srv.UserGroupIDs(res.ID); !slices.Equal(got, []string{f.ids["Analysts"]}) {
		t.Errorf("groups %v", got)
	}
	again, err := f.target.Provision(ctx, p, prof)
	if err != nil || again.ID != res.ID || again.Status != core.StatusUnchanged {
		t.Errorf("second delivery %+v %v", again, err)
	}
	if n := f.srv.Count("POST", "/users/embed_user"); n != 1 {
		t.Errorf("%d embed users created", n)
	}
	if _, err := f.target.Deprovision(ctx, p, prof); err != nil {
		t.Fatal(err)
	}
}

func TestDeprovision(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	ctx := context.Background()
	id := f.srv.AddUser(lookertest.SeedUser{Email: "ada@example.com"})
	prof := analyst()
	res, err := f.target.Deprovision(ctx, ada, prof)
	if err != nil || res.Status != core.StatusDisabled || res.ID != id {
		t.Fatalf("disable: %+v %v", res, err)
	}
	if !f.user(t, "ada@example.com").IsDisabled {
		t.Error("not disabled")
	}
	if res, _ := f.target.Deprovision(ctx, ada, prof); res.Status != core.StatusUnchanged {
		t.Errorf("second disable: %+v", res)
	}
	ProfileOf(prof).Deprovision = DeprovisionDelete
	if res, err := f.target.Deprovision(ctx, ada, prof); err != nil || res.Status != core.StatusDeleted {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if len(f.srv.Users()) != 0 {
		t.Error("not deleted")
	}
	if res, err := f.target.Deprovision(ctx, ada, prof); err != nil || res.Status != core.StatusUnchanged {
		t.Errorf("deprovisioning someone absent: %+v %v", res, err)
	}
}

func TestGoogleCloudCore(t *testing.T) {
	f := newFixture(t, lookertest.Options{GoogleCloudCore: true}, WelcomeByOnboard)
	ctx := context.Background()
	_, err := f.target.Provision(ctx, ada, analyst())
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadGateway || !strings.Contains(ce.Message, "identity provider") {
		t.Fatalf("new user on core: %v, want a 502 explaining IdP sign-in", err)
	}
	if n := len(f.srv.Users()); n != 0 {
		t.Errorf("%d users left on core", n)
	}
	id := f.srv.AddUser(lookertest.SeedUser{IdPEmail: "ada@example.com", FirstName: "Ada"})
	res, err := f.target.Provision(ctx, ada, analyst())
	if err != nil || res.ID != id || res.Status != core.StatusUpdated {
		t.Fatalf("existing IdP user on core: %+v %v", res, err)
	}
	if got := f.srv.UserGroupIDs(id); !slices.Equal(got, []string{f.ids["Analysts"]}) {
		t.Errorf("groups %v", got)
	}
}

func TestEmailProviderLookerSendsLookersEmail(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByLooker)
	res, err := f.target.Provision(context.Background(), ada, analyst())
	if err != nil || res.SetupURL != "" {
		t.Fatalf("%+v %v", res, err)
	}
	if got := f.srv.SentSetupEmails(); !slices.Equal(got, []string{"ada@example.com"}) {
		t.Errorf("Looker setup emails %v", got)
	}
}

func TestProfileErrorsAreClear(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeNone)
	for name, section := range map[string]string{
		`no role named "Wizard"`:       "{roles: [Wizard]}",
		`no group named "Nowhere"`:     "{groups: [Nowhere]}",
		`it is a system attribute`:     "{attributes: {email: x}}",
		`no user attribute named "zz"`: "{attributes: {zz: x}}",
	} {
		_, err := f.target.Provision(context.Background(), ada, lookerProfile("p", section))
		var ce *core.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusBadGateway || !strings.Contains(ce.Message, name) {
			t.Errorf("got %v, want a 502 mentioning %q", err, name)
		}
	}
	if n := len(f.srv.Users()); n != 0 {
		t.Errorf("a misconfigured profile created %d users", n)
	}
}

func TestRolesByID(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeNone)
	prof := analyst()
	ProfileOf(prof).Roles = []string{f.ids["Developer"]}
	res, err := f.target.Provision(context.Background(), ada, prof)
	if err != nil || !slices.Equal(f.srv.UserRoleIDs(res.ID), []string{f.ids["Developer"]}) {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestRateLimitBecomesRetryable429(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeNone)
	f.srv.InjectFault(lookertest.Fault{Method: "GET", Path: "/users/credential/{type}/{id}", Status: 429, RetryAfter: "60", Body: `{"message":"slow","documentation_url":"x"}`})
	_, err := f.target.Provision(context.Background(), ada, analyst())
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Status != 429 || ce.RetryAfter.Seconds() != 60 || !ce.Retryable() {
		t.Fatalf("got %+v", err)
	}
}

// TestSharedCatalogFetchSurvivesOneCallersFailure: two requests start cold
// at once; the first, which starts the role/group/attribute fetch they
// share, fails fast (its lookup gets a 503). The shared fetch must not die
// with it and take the second request down too.
func TestSharedCatalogFetchSurvivesOneCallersFailure(t *testing.T) {
	srv := lookertest.NewTestServer(t, lookertest.Options{})
	for _, name := range []string{"Viewer"} {
		srv.AddRole(name)
	}
	srv.AddGroup("Analysts")
	srv.AddUserAttribute("department", false)
	srv.AddUserAttribute("region", false)
	slowLists := roundTripper(func(r *http.Request) (*http.Response, error) {
		switch r.URL.Path {
		case "/api/4.0/roles", "/api/4.0/groups", "/api/4.0/user_attributes":
			time.Sleep(150 * time.Millisecond)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	c := New(Config{BaseURL: srv.URL, ClientID: lookertest.DefaultClientID, ClientSecret: lookertest.DefaultClientSecret,
		Timeout: 5 * time.Second, MaxAttempts: 1}, slowLists)
	target := NewTarget(c, WelcomeNone, nil)
	if err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.InjectFault(lookertest.Fault{Method: "GET", Path: "/users/credential/email/bob@example.com", Status: 503, Body: `{"message":"down","documentation_url":"x"}`})
	bob := core.Person{Email: "bob@example.com", FirstName: "Bob"}
	var wg sync.WaitGroup
	var adaErr, bobErr error
	wg.Add(2)
	go func() { defer wg.Done(); _, bobErr = target.Provision(context.Background(), bob, analyst()) }()
	time.Sleep(30 * time.Millisecond) // bob's fetch is in flight; ada joins it
	go func() { defer wg.Done(); _, adaErr = target.Provision(context.Background(), ada, analyst()) }()
	wg.Wait()
	if bobErr == nil {
		t.Error("bob's lookup was faulted; want an error")
	}
	if adaErr != nil {
		t.Errorf("ada failed with bob: %v", adaErr)
	}
}

// A target's calls run in goroutines of their own, beyond the engine's
// recover: grant tasks (parallel), the shared role/group/attribute fetch
// (singleflight) and the login. A panic in any of them must fail only its
// request, as a retryable internal error with the stack kept for the log,
// and leave the process, and the next request, alone.
func TestPanicInATargetGoroutineFailsOnlyItsRequest(t *testing.T) {
	for name, at := range map[string]struct{ method, pathPrefix string }{
		"grant task":    {http.MethodPost, "/api/4.0/groups/"},
		"catalog fetch": {http.MethodGet, "/api/4.0/roles"},
		"login":         {http.MethodPost, "/api/4.0/login"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := lookertest.NewTestServer(t, lookertest.Options{})
			srv.AddRole("Viewer")
			srv.AddGroup("Analysts")
			srv.AddUserAttribute("department", false)
			srv.AddUserAttribute("region", false)
			var panicked atomic.Bool
			panicOnce := roundTripper(func(r *http.Request) (*http.Response, error) {
				if r.Method == at.method && strings.HasPrefix(r.URL.Path, at.pathPrefix) && panicked.CompareAndSwap(false, true) {
					panic(name + " bug")
				}
				return http.DefaultTransport.RoundTrip(r)
			})
			c := New(Config{BaseURL: srv.URL, ClientID: lookertest.DefaultClientID, ClientSecret: lookertest.DefaultClientSecret,
				Timeout: 5 * time.Second, MaxAttempts: 1}, panicOnce)
			target := NewTarget(c, WelcomeNone, nil)

			_, err := target.Provision(context.Background(), ada, analyst())
			var ce *core.Error
			if !panicked.Load() || !errors.As(err, &ce) {
				t.Fatalf("panicked %v, error %v (%T): want the panic as a *core.Error", panicked.Load(), err, err)
			}
			if ce.Status != http.StatusInternalServerError || ce.Message != "internal error" || !ce.Retryable() {
				t.Errorf("answer %d %q (retryable %v), want a retryable 500 internal error", ce.Status, ce.Message, ce.Retryable())
			}
			if cause := ce.Err.Error(); !strings.Contains(cause, name+" bug") || !strings.Contains(cause, "target_test.go") {
				t.Errorf("cause %q: want the panic value and its stack, for the log", cause)
			}
			if strings.Contains(ce.Error(), "bug") {
				t.Errorf("the answer %q shows the panic", ce.Error())
			}

			bob := core.Person{Email: "bob@example.com", FirstName: "Bob"}
			if res, err := target.Provision(context.Background(), bob, analyst()); err != nil || res.Status != core.StatusCreated {
				t.Fatalf("the next request: %+v, %v", res, err)
			}
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Warm logs in and reads the lists the policy's profiles resolve names in,
// and no other; the first request then reads none.
func TestWarmReadsTheListsProfilesUse(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeNone)
	cfg, err := core.ParseConfig([]byte("profiles:\n  viewer:\n    looker: {roles: [Viewer]}\n  builder:\n    looker: {groups: [Builders]}\n"),
		plugin.Schema([]plugin.Target{Plugin}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	f.target.warmLists = f.target.warmListsOf(cfg)
	if err := f.target.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/login": 1, "/roles": 1, "/groups": 1, "/user_attributes": 0} {
		if n := f.srv.Count(http.MethodPost, path) + f.srv.Count(http.MethodGet, path); n != want {
			t.Errorf("warming up: %d calls to %s, want %d", n, path, want)
		}
	}
	grace := core.Person{Email: "grace@example.com", FirstName: "Grace", LastName: "Hopper"}
	if _, err := f.target.Provision(context.Background(), grace, cfg.Profiles["viewer"]); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.Count(http.MethodGet, "/roles"); n != 1 {
		t.Errorf("the first request read the roles again (%d reads in all)", n)
	}
}

// A new user's calls, four or more of them at once in its widest rounds,
// reuse the connections of the user before: none is opened again. Every
// answer takes 20 ms, so each round's calls are all in flight together.
func TestNewUsersReuseConnections(t *testing.T) {
	f := newFixture(t, lookertest.Options{}, WelcomeByOnboard)
	upstream, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var opened atomic.Int32
	forward := httputil.NewSingleHostReverseProxy(upstream)
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		forward.ServeHTTP(w, r)
	}))
	proxy.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	proxy.Start()
	t.Cleanup(proxy.Close)
	c := New(Config{BaseURL: proxy.URL, ClientID: lookertest.DefaultClientID, ClientSecret: lookertest.DefaultClientSecret, VerifySSL: true, Timeout: 5 * time.Second}, nil)
	target := NewTarget(c, WelcomeByOnboard, nil)
	for i, p := range []core.Person{ada, {Email: "grace@example.com", FirstName: "Grace", LastName: "Hopper", Attributes: map[string]string{"region": "EMEA"}}} {
		before := opened.Load()
		if _, err := target.Provision(context.Background(), p, analyst()); err != nil {
			t.Fatal(err)
		}
		if n := opened.Load() - before; i > 0 && n != 0 {
			t.Errorf("the second new user opened %d connections", n)
		}
	}
}
