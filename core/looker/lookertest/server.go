// Package lookertest is an in-memory fake of the Looker API 4.0, served over
// HTTP, for tests and for the `make run` sandbox.
//
// It models the user-provisioning surface (login, users, email and embed
// credentials, password reset, roles, groups, user attributes) with Looker's
// status codes and error bodies, can imitate Looker (Google Cloud core),
// numeric ids, latency and injected faults, and checks every request against
// the Swagger 2 spec so that a client cannot rely on behaviour the real API
// does not promise (for example writing readOnly fields that Looker drops).
package lookertest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/internal/fakehttp"
)

// APIPrefix is where Looker serves API 4.0 under the instance root.
const APIPrefix = "/api/4.0"

// Default credentials, used when Options leaves them empty, so the sandbox
// and tests need no configuration.
const (
	DefaultClientID     = "sandbox-client-id"
	DefaultClientSecret = "sandbox-client-secret"
)

// Options configures a Server. The zero value is a well-behaved Looker.
type Options struct {
	// ClientID and ClientSecret are the accepted API credentials.
	ClientID, ClientSecret string
	// TokenTTL is the expires_in of issued tokens (default 1h). Tokens really
	// expire, measured with Now, so clients must refresh them.
	TokenTTL time.Duration
	// Now is the clock for token expiry and timestamps (default time.Now).
	Now func() time.Time
	// NumericIDs sends ids as JSON numbers, as some Looker versions do, so
	// clients are forced to decode both forms.
	NumericIDs bool
	// AccountSetupURL fills account_setup_url on password_reset for users who
	// never logged in. Off by default, because the spec does not promise it and
	// the client must fall back to rewriting password_reset_url.
	AccountSetupURL bool
	// GoogleCloudCore imitates Looker (Google Cloud core): email credentials,
	// password resets and user_for_credential/email answer 403 "Unsupported in
	// Looker (Google Cloud core)"; searching and everything else still works.
	GoogleCloudCore bool
	// Latency delays every request, login included.
	Latency time.Duration
	// Spec, when set, validates every request; see Spec.ValidateRequest.
	Spec *Spec
	// SpecViolation receives every request that breaks the spec (a *Violation).
	// The request is still served, as Looker would serve it. nil ignores them.
	SpecViolation func(err error)
}

// Request is one request as the fake received it.
type Request struct {
	Method string
	Path   string // relative to /api/4.0, unescaped
	Query  url.Values
	Header http.Header
	Body   []byte
	Time   time.Time // per Options.Now

	segments []string
}

// Fault makes matching requests fail before they reach the fake's logic, to
// exercise client retries and error handling.
type Fault struct {
	Method string // empty matches any method
	// Path is relative to /api/4.0 (the prefix may be included): an exact
	// path, or a pattern whose {name} segments match any one segment, so
	// "/users/{id}" also matches "/users/search". Empty matches every path.
	Path   string
	Status int    // response status, e.g. 429 or 503
	Body   string // response body; default is a Looker Error body for Status
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Times is how many requests fail; 0 means all of them.
	Times int
	// DropConnection closes the connection without any response, as a crashed
	// node or idle-timeout proxy would; Status and Body are ignored.
	DropConnection bool
	// AfterActing serves the request first, then throws its answer away and
	// fails as above: Looker made the change, and the client cannot know.
	AfterActing bool
}

// PasswordReset records one create_user_credentials_email_password_reset call.
type PasswordReset struct {
	UserID      string
	Email       string
	URL         string // password_reset_url as answered
	ExpiresSent bool   // whether the expires query parameter was sent at all
	Expires     bool   // its value: the link then lapses after 60 minutes
}

// SeedUser describes a user that exists before the test starts.
type SeedUser struct {
	FirstName, LastName string
	// Email, when set, gives the user email/password credentials.
	Email string
	// IdPEmail, when set, gives the user SSO credentials with that email: on
	// Looker (Google Cloud core) this is the only email a user can have.
	IdPEmail string
	Disabled bool
	// LoggedIn marks the user as having logged in already, so Looker would
	// offer a password reset rather than an account setup.
	LoggedIn bool
	RoleIDs  []string
	GroupIDs []string
	// APIUser makes this the user the API credentials belong to, the one
	// GET /user answers. Without one, GET /user answers an API user that
	// is not among Users(), so seeding none keeps user counts as they are.
	APIUser bool
}

// Server is a running fake Looker. All methods are safe for concurrent use.
type Server struct {
	// URL is the instance root (like https://x.cloud.looker.com), without /api/4.0.
	URL string

	opts Options
	stop func()

	mu       sync.Mutex
	nextID   int
	users    map[string]*user
	apiUser  string // id of the seeded user GET /user answers, if any
	roles    map[string]*role
	groups   map[string]*group
	attrs    map[string]*userAttr
	tokens   map[string]time.Time // token -> expiry
	requests []Request
	faults   fakehttp.Faults[Fault]
	chaos    *fakehttp.Chaos[Fault]
	sent     []string
	resets   []PasswordReset
}

type user struct {
	id                 string
	firstName          string
	lastName           string
	disabled           bool
	locale             *string
	homeFolderID       *string
	modelsDirValidated *bool
	uiState            map[string]string
	canManageAPI3Creds bool
	roleIDs            []string
	groupIDs           []string
	email              *emailCred
	embed              *embedCred
	idpEmail           string
	createdAt          time.Time
	loggedInAt         *time.Time
	attrValues         map[string]string // attribute id -> value
}

type emailCred struct {
	email        string
	createdAt    time.Time
	forcedReset  bool
	resetToken   string
	resetIssued  time.Time
	resetExpires bool
}

type embedCred struct {
	id             string
	externalUserID string
	createdAt      time.Time
}

type role struct{ id, name string }

type group struct{ id, name string }

type userAttr struct {
	id, name string
	isSystem bool
}

// NewServer starts a fake Looker; call Close when done.
func NewServer(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:   opts,
		users:  map[string]*user{},
		roles:  map[string]*role{},
		groups: map[string]*group{},
		attrs:  map[string]*userAttr{},
		tokens: map[string]time.Time{},
	}
	s.URL, s.stop = fakehttp.Serve(s.serveHTTP)
	return s
}

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.stop() }

// SpecEnv names the environment variable that overrides where NewTestServer
// looks for the Swagger 2 spec.
const SpecEnv = "ONBOARD_LOOKER_SPEC"

var specMissingOnce sync.Once

// NewTestServer starts a fake that validates every request against the
// Looker spec and fails tb on violations (unless opts.SpecViolation is set),
// and closes it on cleanup.
//
// The spec is $ONBOARD_LOOKER_SPEC, else ../shared/looker/Looker.4.0.json
// beside the directory holding go.mod. A missing spec fails the test when
// CI=true or when the variable names it explicitly; otherwise validation is
// skipped with one log line, so a bare checkout can still run the tests.
func NewTestServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Spec == nil {
		opts.Spec = testSpec(tb)
	}
	if opts.Spec != nil && opts.SpecViolation == nil {
		opts.SpecViolation = func(err error) { tb.Errorf("%v", err) }
	}
	return fakehttp.CloseAtEnd(tb, NewServer(opts))
}

// testSpec loads the spec for tests; nil means "validation skipped".
func testSpec(tb testing.TB) *Spec {
	tb.Helper()
	path, explicit := SpecPath()
	return loadTestSpec(tb, path, explicit)
}

func loadTestSpec(tb testing.TB, path string, explicit bool) *Spec {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		if explicit || os.Getenv("CI") == "true" {
			tb.Fatalf("Looker spec not found at %s (%v); set %s or restore shared/looker", path, err, SpecEnv)
			return nil
		}
		specMissingOnce.Do(func() { tb.Logf("Looker spec not found at %s; skipping request validation", path) })
		return nil
	}
	spec, err := LoadSpec(path)
	if err != nil {
		tb.Fatalf("load Looker spec: %v", err)
		return nil
	}
	return spec
}

// SpecPath returns where NewTestServer looks for the spec, and whether the
// location was given explicitly through SpecEnv.
func SpecPath() (path string, explicit bool) {
	if p := os.Getenv(SpecEnv); p != "" {
		return p, true
	}
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "shared", "looker", "Looker.4.0.json"), false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "looker", "Looker.4.0.json"), false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Join("..", "shared", "looker", "Looker.4.0.json"), false
		}
		dir = parent
	}
}

// ---- seeding and inspection ----

func (s *Server) newID() string {
	s.nextID++
	return strconv.Itoa(s.nextID)
}

// AddRole creates a role and returns its id. Role names are unique in Looker,
// so a duplicate is a test bug and panics.
func (s *Server) AddRole(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.roles {
		if strings.EqualFold(r.name, name) {
			panic("lookertest: duplicate role " + name)
		}
	}
	r := &role{id: s.newID(), name: name}
	s.roles[r.id] = r
	return r.id
}

// AddGroup creates a group and returns its id; duplicates panic.
func (s *Server) AddGroup(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if strings.EqualFold(g.name, name) {
			panic("lookertest: duplicate group " + name)
		}
	}
	g := &group{id: s.newID(), name: name}
	s.groups[g.id] = g
	return g.id
}

// AddUserAttribute creates a string user attribute and returns its id.
// System attributes (email, first_name, ...) exist on every Looker and refuse
// per-user values; duplicates panic.
func (s *Server) AddUserAttribute(name string, isSystem bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.attrs {
		if a.name == name {
			panic("lookertest: duplicate user attribute " + name)
		}
	}
	a := &userAttr{id: s.newID(), name: name, isSystem: isSystem}
	s.attrs[a.id] = a
	return a.id
}

// AddUser creates a user and returns its id. Unknown role or group ids and
// an email already in use panic, since they are test bugs.
func (s *Server) AddUser(su SeedUser) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	u := &user{
		id: s.newID(), firstName: su.FirstName, lastName: su.LastName, disabled: su.Disabled,
		idpEmail: su.IdPEmail, createdAt: now, attrValues: map[string]string{},
	}
	if su.LoggedIn {
		u.loggedInAt = &now
	}
	if su.Email != "" {
		if s.userByEmailCred(su.Email) != nil {
			panic("lookertest: email already in use: " + su.Email)
		}
		u.email = &emailCred{email: su.Email, createdAt: now}
	}
	for _, id := range su.RoleIDs {
		if s.roles[id] == nil {
			panic("lookertest: unknown role id " + id)
		}
	}
	for _, id := range su.GroupIDs {
		if s.groups[id] == nil {
			panic("lookertest: unknown group id " + id)
		}
	}
	u.roleIDs = append([]string{}, su.RoleIDs...)
	u.groupIDs = append([]string{}, su.GroupIDs...)
	s.users[u.id] = u
	if su.APIUser {
		s.apiUser = u.id
	}
	return u.id
}

// AddUserRole gives an existing user one more direct role, as an admin
// would in Looker's UI. Unknown ids panic, since they are test bugs.
func (s *Server) AddUserRole(userID, roleID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil || s.roles[roleID] == nil {
		panic("lookertest: unknown user " + userID + " or role " + roleID)
	}
	if !slices.Contains(u.roleIDs, roleID) {
		u.roleIDs = append(u.roleIDs, roleID)
	}
}

// Users returns every user, ordered by id.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []User{}
	for _, u := range byID(s.users) {
		out = append(out, s.render(u))
	}
	return out
}

// UserByEmail finds a user by any of their emails, case-insensitively.
func (s *Server) UserByEmail(email string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range byID(s.users) {
		if strings.EqualFold(u.primaryEmail(), email) {
			return s.render(u), true
		}
	}
	return User{}, false
}

// RoleID returns the id of the role called name, "" when there is none.
func (s *Server) RoleID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return idByName(s.roles, name, func(r *role) (string, string) { return r.id, r.name })
}

// GroupID returns the id of the group called name, "" when there is none.
func (s *Server) GroupID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return idByName(s.groups, name, func(g *group) (string, string) { return g.id, g.name })
}

// idByName finds, case-insensitively as Looker compares names, the id of
// the entry called name.
func idByName[T any](entries map[string]T, name string, idAndName func(T) (string, string)) string {
	for _, e := range entries {
		if id, n := idAndName(e); strings.EqualFold(n, name) {
			return id
		}
	}
	return ""
}

// UserRoleIDs returns the user's direct role ids (nil for an unknown user).
func (s *Server) UserRoleIDs(userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[userID]; u != nil {
		return append([]string{}, u.roleIDs...)
	}
	return nil
}

// UserGroupIDs returns the ids of the groups the user is in.
func (s *Server) UserGroupIDs(userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[userID]; u != nil {
		return append([]string{}, u.groupIDs...)
	}
	return nil
}

// UserAttributeValues returns the user's own attribute values keyed by
// attribute name (defaults and group values are not included).
func (s *Server) UserAttributeValues(userID string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	if u == nil {
		return nil
	}
	out := map[string]string{}
	for id, v := range u.attrValues {
		out[s.attrs[id].name] = v
	}
	return out
}

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request{}, s.requests...)
}

// Count reports how many requests matched method (empty = any) and pattern
// (see Fault.Path for the syntax).
func (s *Server) Count(method, pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	pat := patternSegments(pattern)
	n := 0
	for _, r := range s.requests {
		if requestMatches(method, pat, r.Method, r.segments) {
			n++
		}
	}
	return n
}

// SentSetupEmails returns the addresses Looker emailed through
// send_password_reset, in order. Looker sends an account-setup mail to users
// who never logged in and a reset mail to the others; both land here.
func (s *Server) SentSetupEmails() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.sent...)
}

// PasswordResets returns every password_reset token issued, in order.
func (s *Server) PasswordResets() []PasswordReset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PasswordReset{}, s.resets...)
}

// InjectFault adds a fault; the earliest-added matching fault wins.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.Add(f, f.Times)
}

// FailEmailLookup makes the lookup of one address only answer 503, for
// times requests (0: all), with a Retry-After longer than a client sleeps,
// so the failure reaches the caller at once as retryable.
func (s *Server) FailEmailLookup(email string, times int) {
	s.InjectFault(Fault{
		Method: http.MethodGet, Path: "/users/credential/email/" + email,
		Status: http.StatusServiceUnavailable, RetryAfter: "120", Times: times,
	})
}

// InjectChaos fails requests at random, reproducibly (see fakehttp.Chaos):
// a request takes a fault its Method and Path match, by that fault's share.
// Times is ignored; faults added with InjectFault are served first.
func (s *Server) InjectChaos(c *fakehttp.Chaos[Fault]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chaos = c
}

// chaosKey describes req by what is the same from run to run, for a chaos
// schedule: a user by their names, not the id this fake happened to give
// them, and a create by its names, not its body (a client may send random
// values). The caller holds s.mu.
func (s *Server) chaosKey(req Request) string {
	segs := slices.Clone(req.segments)
	if len(segs) > 1 && segs[0] == "users" {
		segs[1] = s.stableUser(segs[1])
	}
	key := req.Method + " /" + strings.Join(segs, "/") + "?" + req.Query.Encode()
	var body struct {
		UserID    json.RawMessage `json:"user_id"`
		FirstName *string         `json:"first_name"`
		LastName  *string         `json:"last_name"`
	}
	if json.Unmarshal(req.Body, &body) == nil {
		if id, ok := idString(body.UserID); ok {
			key += " user=" + s.stableUser(id)
		}
		if body.FirstName != nil || body.LastName != nil {
			key += " names=" + deref(body.FirstName) + "|" + deref(body.LastName)
		}
	}
	return key
}

func (s *Server) stableUser(id string) string {
	if u := s.users[id]; u != nil {
		return "user(" + u.firstName + "|" + u.lastName + ")"
	}
	return id
}

// RevokeTokens invalidates every issued token, as an admin or a server
// restart would, so clients must log in again after a 401.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// patternSegments accepts patterns with or without the /api/4.0 prefix; nil
// means "any path".
func patternSegments(pattern string) []string {
	if pattern == "" {
		return nil
	}
	segs := splitPath(strings.TrimPrefix(pattern, APIPrefix))
	if segs == nil {
		segs = []string{}
	}
	return segs
}

func requestMatches(method string, pattern []string, reqMethod string, reqSegs []string) bool {
	if method != "" && !strings.EqualFold(method, reqMethod) {
		return false
	}
	if pattern == nil {
		return true
	}
	_, ok := matchSegments(pattern, reqSegs)
	return ok
}

// ---- HTTP plumbing ----

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if s.opts.Latency > 0 {
		select {
		case <-time.After(s.opts.Latency):
		case <-r.Context().Done():
			return
		}
	}
	escaped, ok := strings.CutPrefix(r.URL.EscapedPath(), APIPrefix)
	if !ok || (escaped != "" && escaped[0] != '/') {
		writeJSON(w, http.StatusNotFound, notFound(), nil)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path, _ := url.PathUnescape(escaped)
	req := Request{
		Method: r.Method, Path: path, Query: r.URL.Query(), Header: r.Header.Clone(),
		Body: body, Time: s.opts.Now(), segments: splitPath(escaped),
	}
	s.requests = append(s.requests, req)
	if s.opts.Spec != nil && s.opts.SpecViolation != nil {
		if err := s.opts.Spec.ValidateRequest(r.Method, escaped, req.Query, r.Header.Get("Content-Type"), body); err != nil {
			s.opts.SpecViolation(err)
		}
	}
	matches := func(f Fault) bool { return requestMatches(f.Method, patternSegments(f.Path), req.Method, req.segments) }
	f, ok := s.faults.Take(matches)
	if !ok && s.chaos != nil {
		f, ok = s.chaos.Pick(s.chaosKey(req), matches)
	}
	if ok {
		if f.AfterActing {
			s.route(httptest.NewRecorder(), req)
		}
		f.reply().Write(w, writeFaultError)
		return
	}
	s.route(w, req)
}

// route serves req with its handler; the caller holds s.mu.
func (s *Server) route(w http.ResponseWriter, req Request) {
	rt, params := findRoute(req.Method, req.segments)
	if rt == nil {
		writeJSON(w, http.StatusNotFound, notFound(), nil)
		return
	}
	c := &call{req: req, params: params}
	if rt.public {
		s.reply(w, c, rt.handle(s, c))
		return
	}
	if !s.authorized(req.Header.Get("Authorization")) {
		writeJSON(w, http.StatusUnauthorized, apiError{"Requires authentication.", docURL}, nil)
		return
	}
	if rt.deniedOnCore && s.opts.GoogleCloudCore {
		s.reply(w, c, unsupportedOnCore())
		return
	}
	s.reply(w, c, rt.handle(s, c))
}

func (f Fault) reply() fakehttp.Reply {
	return fakehttp.Reply{Status: f.Status, Body: f.Body, RetryAfter: f.RetryAfter, DropConnection: f.DropConnection}
}

func writeFaultError(w http.ResponseWriter, status int) {
	writeJSON(w, status, apiError{http.StatusText(status), docURL}, nil)
}

func (s *Server) authorized(header string) bool {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !(strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer")) {
		return false
	}
	exp, ok := s.tokens[strings.TrimSpace(token)]
	return ok && s.opts.Now().Before(exp)
}

// reply is what a handler answers; body nil means an empty 204-style body.
type reply struct {
	status int
	body   any
}

func (s *Server) reply(w http.ResponseWriter, c *call, rp reply) {
	if rp.body == nil {
		w.WriteHeader(rp.status)
		return
	}
	t := &transform{numericIDs: s.opts.NumericIDs && rp.status < 300}
	if rp.status < 300 {
		t.fields = c.req.Query.Get("fields")
	}
	writeJSON(w, rp.status, rp.body, t)
}

// transform post-processes a success body: the fields parameter trims it,
// and NumericIDs turns id strings into numbers.
type transform struct {
	fields     string
	numericIDs bool
}

func writeJSON(w http.ResponseWriter, status int, v any, t *transform) {
	b, err := marshalBody(v, t)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func marshalBody(v any, t *transform) ([]byte, error) {
	b, err := jsonMarshal(v)
	if err != nil || t == nil || (t.fields == "" && !t.numericIDs) {
		return b, err
	}
	val, err := decodeJSON(b)
	if err != nil {
		return nil, err
	}
	if t.fields != "" {
		val = selectFields(val, parseFields(t.fields))
	}
	if t.numericIDs {
		val = numberIDs(val, "")
	}
	return jsonMarshal(val)
}

func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func newToken() string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func timePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

func ptr[T any](v T) *T { return &v }
