package periscope

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/periscope/periscopetest"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
	"github.com/onboard-dev/onboard/internal/leakcheck"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// Distinctive keys: any appearance in an error, a log line or the audit log is a leak.
const (
	keyAcme = "psk-LEAKCHECK-acme-5e1f9a77"
	keyBeta = "psk-LEAKCHECK-beta-c07d42b1"
	inviter = "data@example.com"
)

const testConfig = `
email: {provider: none}
periscope:
  invited_by_email: data@example.com
  group_access: View
  test_mode: %t
default_profile: bi
profiles:
  bi:
    periscope:
      sites: [acme, beta]
      groups: [Analysts, Finance]
  ops:
    periscope:
      sites: [acme]
      groups: [Ops]
`

type fixture struct {
	fake   *periscopetest.Server
	client *Client
	engine *core.Engine
	store  state.Store
	logs   *logbuf.Buffer

	mu    sync.Mutex
	waits []time.Duration // what the client would have slept
	n     atomic.Int64
}

type setup struct {
	testMode  bool
	onRequest func(periscopetest.Request)
	keys      map[string]string // what onboard sends; the fake's keys by default
	transport http.RoundTripper // the client's; the default when nil
}

func newFixture(t testing.TB, s setup) *fixture {
	t.Helper()
	cfg, err := core.ParseConfig(fmt.Appendf(nil, testConfig, s.testMode), plugin.Schema([]plugin.Target{Plugin}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{logs: &logbuf.Buffer{}}
	f.fake = periscopetest.NewTestServer(t, periscopetest.Options{
		Sites:     map[string]string{"acme": keyAcme, "beta": keyBeta},
		OnRequest: s.onRequest,
	})
	keys := s.keys
	if keys == nil {
		keys = map[string]string{"acme": keyAcme, "beta": keyBeta}
	}
	f.client, err = New(Config{BaseURL: f.fake.URL + "/api/v1/", Keys: StaticKeys(keys), TestMode: PolicyOf(cfg).TestMode, BaseDelay: time.Millisecond}, s.transport)
	if err != nil {
		t.Fatal(err)
	}
	f.client.sleep = func(_ context.Context, d time.Duration) error {
		f.mu.Lock()
		f.waits = append(f.waits, d)
		f.mu.Unlock()
		return nil
	}
	if f.store, err = filestore.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	// No redactor: keys must be kept out at the source, not masked on the way out.
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.engine = &core.Engine{Config: cfg, Targets: NewTargets(f.client, cfg, log), Log: log, Store: f.store}
	return f
}

// handle runs one request through the engine, each with its own
// idempotency key so that a repeat really reaches Periscope again.
func (f *fixture) handle(t testing.TB, body string) (core.Result, error) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	m["idempotency_key"] = fmt.Sprintf("test-%d", f.n.Add(1))
	b, _ := json.Marshal(m)
	req, perr := core.DecodeRequest(b)
	if perr != nil {
		t.Fatal(perr)
	}
	// As an operator adopting: these tests seed people onboard never
	// provisioned, and are about what Periscope is sent, not who may ask.
	return f.engine.Handle(context.Background(), req, core.Meta{Trigger: "test", Operator: true, Adopt: true})
}

func (f *fixture) recordedWaits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.waits)
}

func mustHandle(t *testing.T, f *fixture, body string) core.Result {
	t.Helper()
	res, err := f.handle(t, body)
	if err != nil {
		t.Fatalf("%s: %v (cause: %v)", body, err, core.AsError(err).Err)
	}
	return res
}

func TestProvisionFansOutToEverySiteConcurrently(t *testing.T) {
	// Each site's user lookup waits until the other site's has arrived: run
	// one site after the other and neither would ever be answered.
	arrived := map[string]chan struct{}{"acme": make(chan struct{}), "beta": make(chan struct{})}
	var once sync.Map
	var stuck atomic.Bool
	onRequest := func(r periscopetest.Request) {
		if r.Method != "GET" || r.Path != "/api/v1/users" {
			return
		}
		if _, seen := once.LoadOrStore(r.Site, true); !seen {
			close(arrived[r.Site])
		}
		other := map[string]string{"acme": "beta", "beta": "acme"}[r.Site]
		select {
		case <-arrived[other]:
		case <-time.After(10 * time.Second): // a deadlock guard, not a measurement
			stuck.Store(true)
		}
	}
	f := newFixture(t, setup{onRequest: onRequest})
	res := mustHandle(t, f, `{"email":"Ada@Example.com","name":"Ada Lovelace"}`)
	if stuck.Load() {
		t.Fatal("the sites were not asked concurrently")
	}
	if got := slices.Sorted(maps.Keys(res.Targets)); !slices.Equal(got, []string{"periscope:acme", "periscope:beta"}) {
		t.Fatalf("targets %v", got)
	}
	for _, site := range []string{"acme", "beta"} {
		r := res.Targets[TargetName(site)]
		if r.Status != core.StatusCreated || !slices.Equal(r.Changes, []string{"groups"}) || r.ID == "" {
			t.Errorf("%s: %+v", site, r)
		}
		u, ok := f.fake.User(site, "ada@example.com")
		if !ok {
			t.Fatalf("%s: no user", site)
		}
		if u.FirstName != "Ada" || u.LastName != "Lovelace" || u.InvitedByEmail != inviter || !slices.Equal(u.Groups, []string{"Analysts", "Finance"}) {
			t.Errorf("%s: user %+v", site, u)
		}
	}
	if res.Status != core.StatusCreated {
		t.Errorf("summary %s", res.Status)
	}
}

func TestGroupsAreEnsuredByName(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.AddGroup("acme", "analysts") // Periscope's own spelling wins
	mustHandle(t, f, `{"email":"ada@example.com","name":"Ada Lovelace"}`)

	groups := f.fake.Groups("acme")
	if len(groups) != 2 || groups[0].Name != "analysts" || groups[1].Name != "Finance" {
		t.Fatalf("acme groups %+v", groups)
	}
	if g := groups[1]; g.CreatedByEmail != inviter || g.Access != "View" {
		t.Errorf("created group %+v, want created_by_email %s and access View", g, inviter)
	}
	if u, _ := f.fake.User("acme", "ada@example.com"); !slices.Equal(u.Groups, []string{"analysts", "Finance"}) {
		t.Errorf("user groups %v", u.Groups)
	}

	// A second person: the groups are known now, so neither listed nor made again.
	mustHandle(t, f, `{"email":"bob@example.com","name":"Bob Babbage"}`)
	if n := f.fake.Count("acme", "GET", "/api/v1/groups"); n != 1 {
		t.Errorf("groups listed %d times on acme, want 1", n)
	}
	if n := f.fake.Count("acme", "POST", "/api/v1/groups"); n != 1 {
		t.Errorf("%d group creations on acme, want 1 (Finance)", n)
	}

	// A group an admin made meanwhile is found by listing again, not duplicated.
	f.fake.AddGroup("acme", "Ops")
	mustHandle(t, f, `{"email":"cy@example.com","profile":"ops"}`)
	if n := f.fake.Count("acme", "POST", "/api/v1/groups"); n != 1 {
		t.Errorf("%d group creations on acme, want still 1", n)
	}
	if n := f.fake.Count("acme", "GET", "/api/v1/groups"); n != 2 {
		t.Errorf("groups listed %d times on acme, want 2", n)
	}
}

func TestExistingUserIsUpdatedNotDuplicated(t *testing.T) {
	f := newFixture(t, setup{})
	for _, g := range []string{"Admins", "Analysts"} {
		f.fake.AddGroup("acme", g)
	}
	f.fake.AddUser("acme", periscopetest.User{Email: "ada@example.com", FirstName: "Ada", Groups: []string{"Admins"}})

	res := mustHandle(t, f, `{"email":"ada@example.com","name":"Ada Lovelace"}`)
	if r := res.Targets["periscope:acme"]; r.Status != core.StatusUpdated || !slices.Equal(r.Changes, []string{"groups"}) {
		t.Errorf("acme %+v", r)
	}
	if r := res.Targets["periscope:beta"]; r.Status != core.StatusCreated {
		t.Errorf("beta %+v", r)
	}
	if n := f.fake.Count("acme", "POST", "/api/v1/users"); n != 0 {
		t.Errorf("%d creates on acme for an existing user", n)
	}
	if n := len(f.fake.Users("acme")); n != 1 {
		t.Errorf("%d users on acme", n)
	}
	// The admin's group is kept: the update sends the whole membership.
	if u, _ := f.fake.User("acme", "ada@example.com"); !slices.Equal(u.Groups, []string{"Admins", "Analysts", "Finance"}) {
		t.Errorf("groups %v", u.Groups)
	}
	var put periscopetest.Request
	for _, r := range f.fake.Requests() {
		if r.Method == "PUT" {
			put = r
		}
	}
	if put.Email != "ada@example.com" || put.Site != "acme" {
		t.Errorf("update selected %q on %q, want ada@example.com on acme by HTTP-X-EMAIL", put.Email, put.Site)
	}

	again := mustHandle(t, f, `{"email":"ada@example.com","name":"Ada Lovelace"}`)
	if again.Status != core.StatusUnchanged {
		t.Errorf("second run %s %+v", again.Status, again.Targets)
	}
	if n := f.fake.Count("", "PUT", ""); n != 1 {
		t.Errorf("%d updates, want 1: nothing was missing the second time", n)
	}
}

func TestUserMadeDuringCreateIsUpdated(t *testing.T) {
	var f *fixture
	var raced atomic.Bool
	f = newFixture(t, setup{onRequest: func(r periscopetest.Request) {
		// Someone else creates Ada between our lookup and our create.
		if r.Site == "acme" && r.Method == "POST" && r.Path == "/api/v1/users" && raced.CompareAndSwap(false, true) {
			f.fake.AddUser("acme", periscopetest.User{Email: "ada@example.com"})
		}
	}})
	res := mustHandle(t, f, `{"email":"ada@example.com","profile":"ops"}`)
	if r := res.Targets["periscope:acme"]; r.Status != core.StatusUpdated {
		t.Errorf("acme %+v", r)
	}
	users := f.fake.Users("acme")
	if len(users) != 1 || !slices.Equal(users[0].Groups, []string{"Ops"}) {
		t.Errorf("users %+v", users)
	}
}

// The lookup runs in a goroutine of its own, beside the groups: a panic
// there fails that site for this request (a retryable 500), not the process.
func TestPanicInALookupFailsOnlyItsRequest(t *testing.T) {
	var panicked atomic.Bool
	f := newFixture(t, setup{transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodGet && r.Header.Get("HTTP-X-EMAIL") == "ada@example.com" && panicked.CompareAndSwap(false, true) {
			panic("lookup bug")
		}
		return http.DefaultTransport.RoundTrip(r)
	})})
	_, err := f.handle(t, `{"email":"ada@example.com","profile":"ops"}`)
	if err == nil || core.AsError(err).Err == nil {
		t.Fatalf("answer %v, want the panic as the request's failure", err)
	}
	if core.AsError(err).Status != http.StatusInternalServerError || core.AsError(err).Message != "internal error" || !core.AsError(err).Retryable() ||
		!strings.Contains(core.AsError(err).Err.Error(), "lookup bug") {
		t.Fatalf("answer %d %q (cause %v), want a retryable 500 internal error caused by the panic", core.AsError(err).Status, core.AsError(err).Message, core.AsError(err).Err)
	}
	if res := mustHandle(t, f, `{"email":"bob@example.com","profile":"ops"}`); res.Status != core.StatusCreated {
		t.Errorf("the next request: %s %+v", res.Status, res.Targets)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDeprovisionDeletesOnEverySite(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.AddUser("acme", periscopetest.User{Email: "ada@example.com"})
	res := mustHandle(t, f, `{"email":"ada@example.com","action":"deprovision"}`)
	if res.Status != core.StatusDeleted || res.Targets["periscope:acme"].Status != core.StatusDeleted ||
		res.Targets["periscope:beta"].Status != core.StatusUnchanged {
		t.Fatalf("%s %+v", res.Status, res.Targets)
	}
	if _, ok := f.fake.User("acme", "ada@example.com"); ok {
		t.Error("still on acme")
	}
	if n := f.fake.Count("beta", "DELETE", ""); n != 0 {
		t.Errorf("%d deletes on beta, where Ada never was", n)
	}
	again := mustHandle(t, f, `{"email":"ada@example.com","action":"deprovision"}`)
	if again.Status != core.StatusUnchanged {
		t.Errorf("second deprovision %s %+v", again.Status, again.Targets)
	}
}

func TestTestModeIsOnTheWire(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("test_mode=", on), func(t *testing.T) {
			f := newFixture(t, setup{testMode: on})
			f.fake.AddUser("beta", periscopetest.User{Email: "old@example.com"})
			res := mustHandle(t, f, `{"email":"ada@example.com","name":"Ada Lovelace"}`)
			mustHandle(t, f, `{"email":"old@example.com","action":"deprovision"}`)

			writes := 0
			for _, r := range f.fake.Requests() {
				if r.Method == "GET" {
					if r.RawQuery != "" {
						t.Errorf("GET %s sent %q", r.Path, r.RawQuery)
					}
					continue
				}
				writes++
				if r.TestMode != on || (on && r.RawQuery != "test_mode=true") || (!on && r.RawQuery != "") {
					t.Errorf("%s %s on %s sent query %q", r.Method, r.Path, r.Site, r.RawQuery)
				}
			}
			if writes != 7 { // 2 sites × (2 groups + 1 user), 1 delete
				t.Errorf("%d writes, want 7", writes)
			}
			_, stillThere := f.fake.User("beta", "old@example.com")
			_, created := f.fake.User("acme", "ada@example.com")
			if stillThere != on || created == on || (len(f.fake.Groups("acme")) == 0) != on {
				t.Errorf("test mode %v: old user kept %v, ada created %v, groups %v", on, stillThere, created, f.fake.Groups("acme"))
			}
			if got := slices.Contains(res.Targets["periscope:acme"].Changes, changeTestMode); got != on {
				t.Errorf("changes %v", res.Targets["periscope:acme"].Changes)
			}
			// Groups created only in test mode do not exist, and Periscope
			// refuses a user naming one: the test-mode user leaves them out
			// and the answer still says the groups would change.
			if on && !slices.Contains(res.Targets["periscope:acme"].Changes, "groups") {
				t.Errorf("changes %v, want groups", res.Targets["periscope:acme"].Changes)
			}
		})
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.InjectFault(periscopetest.Fault{Site: "acme", Method: "GET", Path: "/api/v1/users", Status: 429, RetryAfter: "7", Times: 2})
	u, err := f.client.GetUser(context.Background(), "acme", "ada@example.com")
	if err != nil || u != nil {
		t.Fatalf("GetUser: %v %v", u, err)
	}
	// Waits under a second are the pace the refusals slowed the site to.
	var retryAfters []time.Duration
	for _, w := range f.recordedWaits() {
		if w >= time.Second {
			retryAfters = append(retryAfters, w)
		}
	}
	if !slices.Equal(retryAfters, []time.Duration{7 * time.Second, 7 * time.Second}) {
		t.Errorf("waits %v, want Retry-After twice", f.recordedWaits())
	}
	if n := f.fake.Count("acme", "GET", "/api/v1/users"); n != 3 {
		t.Errorf("%d lookups, want 3", n)
	}
}

func TestLongRetryAfterGoesBackToTheCaller(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.InjectFault(periscopetest.Fault{Site: "beta", Method: "GET", Path: "/api/v1/users", Status: 429, RetryAfter: "120"})
	res, err := f.handle(t, `{"email":"ada@example.com"}`)
	if err == nil || core.AsError(err).Status != 429 || core.AsError(err).RetryAfter != 120*time.Second || core.AsError(err).Target != "periscope:beta" {
		t.Fatalf("error %+v", err)
	}
	if len(f.recordedWaits()) != 0 || f.fake.Count("beta", "GET", "/api/v1/users") != 1 {
		t.Errorf("slept %v over %d lookups: a wait beyond MaxDelay must not be slept", f.recordedWaits(), f.fake.Count("beta", "GET", "/api/v1/users"))
	}
	// The other site is done and says so.
	if res.Targets["periscope:acme"].Status != core.StatusCreated {
		t.Errorf("acme %+v", res.Targets)
	}
}

func TestCreatesRetryOnlyWhenPeriscopeCannotHaveActed(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.InjectFault(periscopetest.Fault{Site: "acme", Method: "POST", Path: "/api/v1/users", Status: 503, Times: 1})
	_, err := f.client.CreateUser(context.Background(), "acme", NewUser{Email: "ada@example.com", InvitedByEmail: inviter})
	if err == nil || httpretry.StatusOf(err) != 503 || f.fake.Count("acme", "POST", "/api/v1/users") != 1 {
		t.Fatalf("503 on create: %v after %d attempts, want one attempt", err, f.fake.Count("acme", "POST", "/api/v1/users"))
	}
	f.fake.InjectFault(periscopetest.Fault{Site: "beta", Method: "POST", Path: "/api/v1/users", Status: 429, RetryAfter: "1", Times: 1})
	if _, err := f.client.CreateUser(context.Background(), "beta", NewUser{Email: "ada@example.com", InvitedByEmail: inviter}); err != nil {
		t.Fatalf("429 then success: %v", err)
	}
	if _, ok := f.fake.User("beta", "ada@example.com"); !ok || f.fake.Count("beta", "POST", "/api/v1/users") != 2 {
		t.Error("a 429 create was not retried")
	}
}

func TestLookupsRetryADroppedConnection(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.InjectFault(periscopetest.Fault{Method: "GET", Path: "/api/v1/groups", DropConnection: true, Times: 1})
	if _, err := f.client.Groups(context.Background(), "acme"); err != nil {
		t.Fatalf("Groups after a dropped connection: %v", err)
	}
	if n := f.fake.Count("acme", "GET", "/api/v1/groups"); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
}

func TestUnknownErrorBodiesAreKept(t *testing.T) {
	long := strings.Repeat("very long reason ", 100)
	cases := []struct {
		name, body, contentType string
		status                  int
		want                    string
	}{
		{"rails errors", `{"errors":{"email":["is on a blocklist"]}}`, "", 422, "Periscope refused POST /api/v1/users (422): email is on a blocklist"},
		{"message", `{"message":"Seat limit reached"}`, "", 400, "(400): Seat limit reached"},
		{"html page", "<html>\n<body>\n  Request   rejected\n</body></html>", "text/html", 400, "(400): <html> <body> Request rejected </body></html>"},
		{"plain text", "nope\r\n", "text/plain", 409, "(409): nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, setup{})
			f.fake.InjectFault(periscopetest.Fault{Site: "acme", Method: "POST", Path: "/api/v1/users", Status: tc.status, Body: tc.body, ContentType: tc.contentType})
			_, err := f.handle(t, `{"email":"ada@example.com","profile":"ops"}`)
			if err == nil || core.AsError(err).Status != 502 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want 502 containing %q", err, tc.want)
			}
		})
	}
	t.Run("long", func(t *testing.T) {
		f := newFixture(t, setup{})
		f.fake.InjectFault(periscopetest.Fault{Method: "POST", Path: "/api/v1/users", Status: 400, Body: `{"error":"` + long + `"}`})
		_, err := f.handle(t, `{"email":"ada@example.com","profile":"ops"}`)
		if err == nil {
			t.Fatal("no error")
		}
		apiErr, ok := errors.AsType[*APIError](err)
		if !ok {
			t.Fatalf("error %v is not an APIError", err)
		}
		if len(apiErr.Message) > maxMessage+len("…") || !strings.HasPrefix(apiErr.Message, "very long reason") || !strings.HasSuffix(apiErr.Message, "…") {
			t.Errorf("message of %d bytes: %q", len(apiErr.Message), apiErr.Message)
		}
	})
}

func TestKeysNeverLeave(t *testing.T) {
	// beta is sent a wrong key, and acme answers with bodies that echo the
	// request's headers, as a debugging proxy might: as is, or encoded.
	wrong := "psk-LEAKCHECK-wrong-0b9e3d11"
	f := newFixture(t, setup{keys: map[string]string{"acme": keyAcme, "beta": wrong}})
	f.fake.InjectFault(periscopetest.Fault{Site: "acme", Method: "POST", Path: "/api/v1/groups", Status: 400,
		Body: `{"error":"bad request; headers: HTTP-X-PARTNER-AUTH: acme:` + keyAcme + `; as base64: ` +
			base64.StdEncoding.EncodeToString([]byte("acme:"+keyAcme)) + `"}`})
	f.fake.InjectFault(periscopetest.Fault{Site: "acme", Method: "GET", Path: "/api/v1/users", Status: 503,
		Body: "upstream said HTTP-X-PARTNER-AUTH=acme:" + keyAcme, ContentType: "text/plain", Times: 1})

	_, err := f.handle(t, `{"email":"ada@example.com"}`)
	if err == nil {
		t.Fatal("no error")
	}
	texts := append(f.engineErrors(t), err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err), fmt.Sprintf("%+v", core.AsError(err).Err), f.logs.String())
	recs, aerr := f.store.Audit(context.Background(), state.AuditQuery{})
	if aerr != nil {
		t.Fatal(aerr)
	}
	if len(recs) == 0 {
		t.Fatal("no audit records")
	}
	for _, r := range recs {
		texts = append(texts, fmt.Sprintf("%+v", r))
	}
	for _, s := range texts {
		if found := leakcheck.Find(s, map[string]string{"acme": keyAcme, "beta": keyBeta, "wrong": wrong}); found != nil {
			t.Fatalf("%v leaked: %s", found, s)
		}
	}
	if !strings.Contains(f.logs.String(), logging.Mask) {
		t.Errorf("the echoed key was not visibly redacted in the logs: %s", f.logs.String())
	}
	if !strings.Contains(f.logs.String(), "Periscope refused the API key of site beta") {
		t.Errorf("the wrong key is not explained: %s", f.logs.String())
	}
}

// engineErrors runs each site alone so that each failure is seen, not just
// the one the engine answers with.
func (f *fixture) engineErrors(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, tg := range f.engine.Targets {
		_, err := tg.Provision(context.Background(), core.Person{Email: "bob@example.com"}, f.engine.Config.Profiles["bi"])
		if err == nil {
			t.Errorf("%s: no error", tg.Name())
			continue
		}
		out = append(out, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}
	return out
}

func TestEveryWriteIsAudited(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.InjectFault(periscopetest.Fault{Site: "beta", Method: "POST", Path: "/api/v1/users", Status: 400, Body: `{"error":"Seat limit reached"}`})
	if _, err := f.handle(t, `{"email":"ada@example.com"}`); err == nil {
		t.Fatal("beta's refusal was lost")
	}
	recs, err := f.store.Audit(context.Background(), state.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Target+" "+r.Operation+" "+r.Outcome+" "+r.Error)
	}
	slices.Sort(got)
	want := []string{
		"periscope:acme POST /api/v1/groups ok ",
		"periscope:acme POST /api/v1/groups ok ",
		"periscope:acme POST /api/v1/users ok ",
		"periscope:beta POST /api/v1/groups ok ",
		"periscope:beta POST /api/v1/groups ok ",
		"periscope:beta POST /api/v1/users error periscope: site beta: POST /api/v1/users: 400 Seat limit reached",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDryRunWritesNothing: a dry run reads each site for real and records
// the writes a real run would make, sending none.
func TestDryRunWritesNothing(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.AddGroup("acme", "Analysts")
	f.fake.AddUser("acme", periscopetest.User{Email: "old@example.com", FirstName: "Old", Groups: []string{"Analysts"}})
	req, verr := core.Request{Email: "new@example.com", Name: "New Person", Profile: "bi"}.Normalize()
	if verr != nil {
		t.Fatal(verr)
	}
	plan := &core.Plan{}
	res, err := f.engine.Handle(core.WithPlan(context.Background(), plan), req, core.Meta{Operator: true, Adopt: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.fake.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("dry run sent %s %s to %s", r.Method, r.Path, r.Site)
		}
	}
	if res.Targets["periscope:acme"].Status != core.StatusCreated || res.Targets["periscope:beta"].Status != core.StatusCreated {
		t.Errorf("planned result %+v", res.Targets)
	}
	planned := map[string]int{}
	for _, w := range plan.Writes() {
		planned[w.Target+" "+w.Operation]++
	}
	if planned["periscope:acme POST /api/v1/users"] != 1 || planned["periscope:beta POST /api/v1/users"] != 1 {
		t.Errorf("plan %v", plan.Writes())
	}
	if len(f.fake.Users("acme")) != 1 || len(f.fake.Users("beta")) != 0 {
		t.Error("dry run changed a site")
	}
}

// Periscope's answers are undocumented. One that does not show the user's
// groups must not lead to an update (it replaces the whole membership),
// and one that cannot be read at all must not pass for "no such user"
// (a deprovision would report success and delete nobody).
func TestUnreadableUserAnswersChangeNothing(t *testing.T) {
	f := newFixture(t, setup{})
	f.fake.AddUser("acme", periscopetest.User{Email: "ada@example.com"})
	f.fake.InjectFault(periscopetest.Fault{Site: "acme", Method: "GET", Path: "/api/v1/users", Status: 200,
		Body: `{"id":7,"email":"ada@example.com"}`})
	_, err := f.handle(t, `{"email":"ada@example.com","profile":"ops"}`)
	if err == nil || core.AsError(err).Status != http.StatusBadGateway || !strings.Contains(err.Error(), "groups") {
		t.Fatalf("provision with a groupless answer: %v, want a 502 naming the groups", err)
	}
	if n := f.fake.Count("acme", "PUT", ""); n != 0 {
		t.Errorf("%d updates sent on a membership onboard could not see", n)
	}

	g := newFixture(t, setup{})
	g.fake.AddUser("acme", periscopetest.User{Email: "bob@example.com"})
	g.fake.InjectFault(periscopetest.Fault{Site: "acme", Method: "GET", Path: "/api/v1/users", Status: 200, Body: `{"result":"ok"}`})
	_, err = g.handle(t, `{"email":"bob@example.com","action":"deprovision","profile":"ops"}`)
	if err == nil || core.AsError(err).Status != http.StatusBadGateway {
		t.Fatalf("deprovision with an unreadable answer: %v, want 502", err)
	}
	if len(g.fake.Users("acme")) != 1 || g.fake.Count("acme", "DELETE", "") != 0 {
		t.Errorf("users %+v after a refused deprovision", g.fake.Users("acme"))
	}
}
