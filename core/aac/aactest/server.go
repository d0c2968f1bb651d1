// Package aactest is an in-memory fake of the parts of Alteryx Analytics
// Cloud (API v4) that onboard uses, served over HTTP, for tests and for the
// `make run` sandbox.
//
// It models AAC's OAuth 2.0 API tokens as the documentation describes them:
// a token endpoint (form POST of grant_type=refresh_token, refresh_token,
// client_id; no secret) that issues JWT-shaped access tokens carrying iss
// and client_id, and refresh tokens that rotate and die once used (reuse is
// answered 400 {"error":"invalid_grant"}); one chain per workspace, and
// account-level chains that alone may list and create workspaces. It
// records every refresh, so tests can count rotations.
//
// The API part: workspaces (list, current, create with 201), people with
// their authorization roles (includePrivileges), the batch invite
// {"emails":[…],"roles":[role objects]}, removal, {"data":[…],"count":n}
// envelopes with limit/offset, {"exception":{…}} error bodies, and faults
// such as 429 with x-retry-after. Behaviour no source documents is chosen
// and marked as such (inviting an existing member is a 400 here).
package aactest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/internal/fakehttp"
)

// Defaults used when Options leaves them empty.
const (
	DefaultClientID  = "aactest-client-id"
	DefaultAccountID = "aactest-account"
	// TokenPath is the token endpoint below the server's URL; the issuer
	// (the iss claim) is URL + IssuerPath, so iss + "/token" reaches it.
	TokenPath  = "/as/token"
	IssuerPath = "/as"
)

// DefaultRoles are the roles a workspace created through the API starts
// with; its creator holds them all (AAC's guide finds role objects that way).
var DefaultRoles = []string{"Workspace Admin", "Auto Insights Creator", "Auto Insights Viewer", "Designer Cloud User"}

// Options configures a Server. The zero value is a well-behaved AAC.
type Options struct {
	ClientID  string // the accepted client_id
	AccountID string // the accepted accountId
	// AccessTokenTTL is the lifetime of access tokens (default 5 minutes,
	// what AAC documents today). Expired tokens are answered 401.
	AccessTokenTTL time.Duration
	// OmitExpiresIn leaves expires_in out of token answers, so a client must
	// read the JWT's exp.
	OmitExpiresIn bool
	// Latency delays every request.
	Latency time.Duration
}

// Fault makes matching requests fail before they reach the fake's logic.
type Fault struct {
	Method string // empty matches any
	// Path is an exact path or a pattern whose {name} segments match any
	// one segment, e.g. "/v4/workspaces/{id}/people/batch". Empty matches all.
	Path   string
	Status int
	// RetryAfter is sent as x-retry-after (AAC's header), StdRetryAfter as
	// Retry-After.
	RetryAfter, StdRetryAfter string
	Body                      string // default: an AAC exception body for Status
	Times                     int    // how many requests fail; 0: all
	// AfterActing serves the request first, then throws its answer away and
	// fails as above: AAC made the change, and the client cannot know.
	AfterActing bool
}

// Request is one request as the fake received it.
type Request struct {
	Method string
	Path   string
	Op     string // "METHOD /path/{template}"
	Query  url.Values
	Header http.Header
	Body   []byte
	Status int // the status answered
}

// Refresh is one call to the token endpoint.
type Refresh struct {
	Chain        int    // the chain the presented token belonged to; -1 if unknown
	Presented    string // the refresh token presented
	Outcome      string // ok, invalid_grant, invalid_client, invalid_request, unsupported_grant_type, fault
	Issued       string // the new refresh token when ok
	AccessExpiry time.Time
	Time         time.Time
}

// Grant is what AAC's Generate dialog shows: a new chain's first tokens.
type Grant struct {
	Chain        int
	AccessToken  string
	RefreshToken string
}

// Member is a workspace member as tests inspect it.
type Member struct {
	PersonID int64
	Email    string
	State    string // active, or pending for an invitation not yet accepted
	Roles    []string
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	URL string

	opts Options
	stop func()

	mu         sync.Mutex
	nextID     int64
	workspaces []*workspace
	persons    map[string]int64 // lower-cased email -> person id
	chains     []*chain
	refreshTok map[string]int // every refresh token issued -> chain
	spent      map[string]bool
	access     map[string]accessToken
	refreshes  []Refresh
	requests   []Request
	faults     fakehttp.Faults[Fault]
	hooks      map[int]hook
	nextHook   int
	refused    map[string]string // email -> why the batch invite refuses it
}

type chain struct {
	id        int
	account   bool
	workspace int64
	live      string
}

type accessToken struct {
	chain  *chain
	expiry time.Time
}

type workspace struct {
	id      int64
	name    string
	created time.Time
	roles   []*role
	members []*membership
}

type role struct {
	policyID, productPolicyID int64
	name                      string
	created                   time.Time
}

type membership struct {
	personID int64
	email    string
	state    string
	roles    []int64
	created  time.Time
}

type hook struct {
	op string
	fn func()
}

// NewServer starts a fake; call Close when done.
func NewServer(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = 5 * time.Minute
	}
	s := &Server{opts: opts, nextID: 100, persons: map[string]int64{}, refreshTok: map[string]int{}, spent: map[string]bool{},
		access: map[string]accessToken{}, hooks: map[int]hook{}, refused: map[string]string{}}
	s.URL, s.stop = fakehttp.Serve(s.serve)
	return s
}

// NewTestServer starts a fake that is closed when tb ends.
func NewTestServer(tb testing.TB, opts Options) *Server {
	return fakehttp.CloseAtEnd(tb, NewServer(opts))
}

// Close stops the server.
func (s *Server) Close() { s.stop() }

// ClientID is the client_id the token endpoint accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// AccountID is the accountId account calls must carry.
func (s *Server) AccountID() string { return s.opts.AccountID }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.URL + TokenPath }

// AddWorkspace creates a workspace holding roles (DefaultRoles when none)
// and an admin member who holds them all, and returns its id.
func (s *Server) AddWorkspace(name string, roles ...string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addWorkspace(name, roles).id
}

func (s *Server) addWorkspace(name string, roles []string) *workspace {
	if len(roles) == 0 {
		roles = DefaultRoles
	}
	now := time.Now().UTC()
	w := &workspace{id: s.id(), name: name, created: now}
	for _, r := range roles {
		w.roles = append(w.roles, &role{policyID: s.id(), productPolicyID: s.id(), name: r, created: now})
	}
	s.workspaces = append(s.workspaces, w)
	admin := fmt.Sprintf("admin-%d@aactest.example", w.id)
	s.addMember(w, admin, "active", roles)
	return w
}

// AddMember makes email an active member of the workspace with roles and
// returns the person's id.
func (s *Server) AddMember(workspaceID int64, email string, roles ...string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workspace(workspaceID)
	if w == nil {
		panic(fmt.Sprintf("aactest: no workspace %d", workspaceID))
	}
	return s.addMember(w, email, "active", roles).personID
}

func (s *Server) addMember(w *workspace, email, st string, roles []string) *membership {
	m := &membership{personID: s.person(email), email: email, state: st, created: time.Now().UTC()}
	for _, name := range roles {
		for _, r := range w.roles {
			if r.name == name {
				m.roles = append(m.roles, r.policyID)
			}
		}
	}
	w.members = append(w.members, m)
	return m
}

func (s *Server) person(email string) int64 {
	key := strings.ToLower(email)
	if id, ok := s.persons[key]; ok {
		return id
	}
	id := s.id()
	s.persons[key] = id
	return id
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// Members lists a workspace's members.
func (s *Server) Members(workspaceID int64) []Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workspace(workspaceID)
	if w == nil {
		return nil
	}
	out := make([]Member, 0, len(w.members))
	for _, m := range w.members {
		mem := Member{PersonID: m.personID, Email: m.email, State: m.state}
		for _, r := range w.roles {
			if slices.Contains(m.roles, r.policyID) {
				mem.Roles = append(mem.Roles, r.name)
			}
		}
		out = append(out, mem)
	}
	return out
}

// WorkspaceIDs returns the ids of every workspace named name (AAC does not
// promise unique names, so a client racing itself could make two).
func (s *Server) WorkspaceIDs(name string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int64
	for _, w := range s.workspaces {
		if w.name == name {
			ids = append(ids, w.id)
		}
	}
	return ids
}

// NewWorkspaceGrant starts a new token chain for a workspace, as an admin
// pressing Generate in it does.
func (s *Server) NewWorkspaceGrant(workspaceID int64) Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.workspace(workspaceID) == nil {
		panic(fmt.Sprintf("aactest: no workspace %d", workspaceID))
	}
	return s.grant(&chain{workspace: workspaceID})
}

// NewAccountGrant starts a new account-level token chain.
func (s *Server) NewAccountGrant() Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grant(&chain{account: true})
}

func (s *Server) grant(c *chain) Grant {
	c.id = len(s.chains)
	s.chains = append(s.chains, c)
	access, _ := s.issue(c)
	return Grant{Chain: c.id, AccessToken: access, RefreshToken: c.live}
}

// issue rotates c: a new live refresh token and a new access token.
func (s *Server) issue(c *chain) (access string, expiry time.Time) {
	c.live = "rt-" + randomHex(16)
	s.refreshTok[c.live] = c.id
	now := time.Now()
	expiry = now.Add(s.opts.AccessTokenTTL)
	subject := "account"
	if !c.account {
		subject = "workspace:" + strconv.FormatInt(c.workspace, 10)
	}
	access = jwt(map[string]any{
		"iss": s.URL + IssuerPath, "client_id": s.opts.ClientID, "sub": subject,
		"iat": now.Unix(), "exp": expiry.Unix(), "jti": randomHex(8),
	})
	s.access[access] = accessToken{chain: c, expiry: expiry}
	return access, expiry
}

// LiveRefreshToken is the one refresh token of a chain that still works.
func (s *Server) LiveRefreshToken(chain int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chains[chain].live
}

// Refreshes returns every call to the token endpoint, in order.
func (s *Server) Refreshes() []Refresh {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refreshes)
}

// ExpireAccessTokens ends the life of every access token issued so far, as
// the passing of their lifetime would.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for k, a := range s.access {
		a.expiry = past
		s.access[k] = a
	}
}

// AddFault injects a failure.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.Add(f, f.Times)
}

// OnRequest runs fn before every request whose Op is op is handled; the
// returned func removes it.
func (s *Server) OnRequest(op string, fn func()) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextHook++
	id := s.nextHook
	s.hooks[id] = hook{op: op, fn: fn}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.hooks, id)
	}
}

// RefuseEmail makes the batch invite answer 400 for any batch holding email.
func (s *Server) RefuseEmail(email, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[strings.ToLower(email)] = why
}

// Requests returns the requests received whose Op is op ("" for all).
func (s *Server) Requests(op string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if op == "" || r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

// InviteSizes returns how many people each batch invite received carried,
// in order: what a test of batching counts.
func (s *Server) InviteSizes() []int {
	var sizes []int
	for _, r := range s.Requests(OpInvite) {
		var body struct{ Emails []string }
		_ = json.Unmarshal(r.Body, &body) // the handler refused anything else
		sizes = append(sizes, len(body.Emails))
	}
	return sizes
}

func (s *Server) workspace(id int64) *workspace {
	for _, w := range s.workspaces {
		if w.id == id {
			return w
		}
	}
	return nil
}

// Operation templates, as requests and faults name them.
const (
	OpToken           = "POST " + TokenPath
	OpListWorkspaces  = "GET /v4/workspaces"
	OpCreateWorkspace = "POST /v4/workspaces"
	OpCurrent         = "GET /v4/workspaces/current"
	OpPeople          = "GET /v4/workspaces/{id}/people"
	OpInvite          = "POST /v4/workspaces/{id}/people/batch"
	OpRemove          = "DELETE /v4/workspaces/{id}/people/{personId}"
)

var numeric = regexp.MustCompile(`^[0-9]+$`)

// op names a request by its path template.
func op(method, path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if len(seg) >= 3 && seg[0] == "v4" && seg[1] == "workspaces" && numeric.MatchString(seg[2]) {
		seg[2] = "{id}"
		if len(seg) == 5 && seg[3] == "people" && seg[4] != "batch" {
			seg[4] = "{personId}"
		}
	}
	return method + " /" + strings.Join(seg, "/")
}

// response is what a handler answers; written once, after recording.
type response struct {
	status int
	header map[string]string
	body   any
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.opts.Latency > 0 {
		time.Sleep(s.opts.Latency)
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	o := op(r.Method, r.URL.Path)
	s.runHooks(o)

	s.mu.Lock()
	resp, act := s.fault(r)
	switch {
	case resp == nil:
		resp = s.handle(r, o, body)
	case act:
		s.handle(r, o, body)
	case o == OpToken:
		s.refreshes = append(s.refreshes, Refresh{Chain: -1, Outcome: "fault", Time: time.Now()})
	}
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Op: o, Query: r.URL.Query(),
		Header: r.Header.Clone(), Body: body, Status: resp.status})
	s.mu.Unlock()

	w.Header().Set("x-trifacta-request-id", randomHex(8))
	for k, v := range resp.header {
		w.Header().Set(k, v)
	}
	if resp.body == nil {
		w.WriteHeader(resp.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.status)
	_ = json.NewEncoder(w).Encode(resp.body)
}

func (s *Server) runHooks(o string) {
	s.mu.Lock()
	var fns []func()
	ids := make([]int, 0, len(s.hooks))
	for id := range s.hooks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if s.hooks[id].op == o {
			fns = append(fns, s.hooks[id].fn)
		}
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// fault is a response like any other rather than a fakehttp.Reply, so that
// it is recorded with its status and carries x-trifacta-request-id as every
// AAC answer does.
func (s *Server) fault(r *http.Request) (_ *response, afterActing bool) {
	f, ok := s.faults.Take(func(f Fault) bool {
		return (f.Method == "" || f.Method == r.Method) && (f.Path == "" || matchPath(f.Path, r.URL.Path))
	})
	if !ok {
		return nil, false
	}
	return f.response(), f.AfterActing
}

func (f Fault) response() *response {
	h := map[string]string{}
	if f.RetryAfter != "" {
		h["x-retry-after"] = f.RetryAfter
		h["x-rate-limit-user-limit"], h["x-rate-limit-user-remaining"] = "30", "0"
	}
	if f.StdRetryAfter != "" {
		h["Retry-After"] = f.StdRetryAfter
	}
	if f.Body != "" {
		return &response{status: f.Status, header: h, body: json.RawMessage(f.Body)}
	}
	if f.Status == http.StatusTooManyRequests {
		return &response{status: f.Status, header: h, body: exception("TooManyRequestsException", "Too Many Requests",
			"API quota reached for this endpoint. Wait "+firstNonEmpty(f.RetryAfter, f.StdRetryAfter, "60")+" seconds before retrying.")}
	}
	return &response{status: f.Status, header: h, body: exception(http.StatusText(f.Status), http.StatusText(f.Status), "injected fault")}
}

func matchPath(pattern, path string) bool {
	ps, xs := strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !(strings.HasPrefix(ps[i], "{") && strings.HasSuffix(ps[i], "}")) && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

func (s *Server) handle(r *http.Request, o string, body []byte) *response {
	if o == OpToken {
		return s.token(r, body)
	}
	tok, ok := s.authenticate(r)
	if !ok {
		return &response{status: http.StatusUnauthorized, body: exception("UnauthorizedException", "Unauthorized", "missing, unknown or expired access token")}
	}
	switch o {
	case OpListWorkspaces:
		return s.listWorkspaces(r, tok)
	case OpCreateWorkspace:
		return s.createWorkspace(r, tok, body)
	case OpCurrent:
		if tok.chain.account {
			return &response{status: http.StatusBadRequest, body: exception("ValidationFailed", "Input validation failed", "an account-level token has no current workspace")}
		}
		return &response{status: http.StatusOK, body: workspaceJSON(s.workspace(tok.chain.workspace))}
	}
	w, resp := s.scoped(r, tok)
	if resp != nil {
		return resp
	}
	switch o {
	case OpPeople:
		return s.people(r, w)
	case OpInvite:
		return s.invite(w, body)
	case OpRemove:
		return s.remove(r, w)
	}
	return &response{status: http.StatusNotFound, body: exception("NotFound", "Not Found", "no route "+o)}
}

// token is the PingFederate-style endpoint: rotating, single-use refresh tokens.
func (s *Server) token(r *http.Request, body []byte) *response {
	rec := Refresh{Chain: -1, Time: time.Now()}
	defer func() { s.refreshes = append(s.refreshes, rec) }()
	fail := func(code, desc string) *response {
		rec.Outcome = code
		return &response{status: http.StatusBadRequest, body: map[string]string{"error": code, "error_description": desc}}
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return fail("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fail("invalid_request", "unparsable form")
	}
	rec.Presented = form.Get("refresh_token")
	switch {
	case form.Get("grant_type") != "refresh_token":
		return fail("unsupported_grant_type", "only refresh_token is supported")
	case form.Get("client_id") != s.opts.ClientID:
		return fail("invalid_client", "unknown client_id")
	case form.Has("client_secret"):
		return fail("invalid_client", "public client: no secret")
	}
	id, known := s.refreshTok[rec.Presented]
	if known {
		rec.Chain = id
	}
	if !known || s.spent[rec.Presented] {
		return fail("invalid_grant", "refresh token is invalid, expired or already used")
	}
	s.spent[rec.Presented] = true
	c := s.chains[id]
	access, expiry := s.issue(c)
	rec.Outcome, rec.Issued, rec.AccessExpiry = "ok", c.live, expiry
	out := map[string]any{"access_token": access, "refresh_token": c.live, "token_type": "Bearer"}
	if !s.opts.OmitExpiresIn {
		out["expires_in"] = int(s.opts.AccessTokenTTL.Seconds())
	}
	return &response{status: http.StatusOK, body: out}
}

func (s *Server) authenticate(r *http.Request) (accessToken, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return accessToken{}, false
	}
	tok, ok := s.access[raw]
	if !ok || !time.Now().Before(tok.expiry) {
		return accessToken{}, false
	}
	return tok, true
}

// scoped checks that a workspace call is made with that workspace's token:
// "You can't use an API token from 1 workspace to interact with another".
func (s *Server) scoped(r *http.Request, tok accessToken) (*workspace, *response) {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(seg) < 3 {
		return nil, &response{status: http.StatusNotFound, body: exception("NotFound", "Not found", "")}
	}
	id, _ := strconv.ParseInt(seg[2], 10, 64)
	w := s.workspace(id)
	switch {
	case w == nil:
		return nil, &response{status: http.StatusNotFound, body: exception("NotFound", "Workspace not found", "")}
	case tok.chain.account || tok.chain.workspace != id:
		return nil, &response{status: http.StatusForbidden, body: exception("Forbidden", "Forbidden", "this token belongs to another workspace")}
	case r.Header.Get("x-trifacta-workspace-id") != "" && r.Header.Get("x-trifacta-workspace-id") != seg[2]:
		return nil, &response{status: http.StatusForbidden, body: exception("Forbidden", "Forbidden", "x-trifacta-workspace-id names another workspace")}
	}
	return w, nil
}

func (s *Server) listWorkspaces(r *http.Request, tok accessToken) *response {
	var all []any
	for _, w := range s.workspaces {
		if tok.chain.account || w.id == tok.chain.workspace {
			all = append(all, workspaceJSON(w))
		}
	}
	if tok.chain.account && r.URL.Query().Get("accountId") != s.opts.AccountID {
		return &response{status: http.StatusForbidden, body: exception("Forbidden", "Forbidden", "accountId is required for account admin access")}
	}
	return page(r, all)
}

func (s *Server) createWorkspace(r *http.Request, tok accessToken, body []byte) *response {
	if !tok.chain.account {
		return &response{status: http.StatusForbidden, body: exception("Forbidden", "Forbidden", "Workspace-level API tokens cannot hit this endpoint")}
	}
	if r.URL.Query().Get("accountId") != s.opts.AccountID {
		return &response{status: http.StatusForbidden, body: exception("Forbidden", "Forbidden", "accountId does not name this account")}
	}
	var req struct {
		Name string `json:"name"`
	}
	if err := strictJSON(body, &req); err != nil || strings.TrimSpace(req.Name) == "" {
		return &response{status: http.StatusBadRequest, body: exception("ValidationFailed", "Input validation failed", "name is required")}
	}
	return &response{status: http.StatusCreated, body: workspaceJSON(s.addWorkspace(req.Name, nil))}
}

func (s *Server) people(r *http.Request, w *workspace) *response {
	privileges := r.URL.Query().Get("includePrivileges") == "true"
	all := make([]any, 0, len(w.members))
	for _, m := range w.members {
		p := map[string]any{"id": m.personID, "email": m.email, "name": strings.Split(m.email, "@")[0], "state": m.state,
			"isDisabled": false, "createdAt": m.created, "updatedAt": m.created}
		if privileges {
			roles := []any{}
			for _, rl := range w.roles {
				if slices.Contains(m.roles, rl.policyID) {
					roles = append(roles, roleJSON(w, rl))
				}
			}
			p["authorizationRoles"] = roles
			p["maximalPrivileges"] = []any{}
		}
		all = append(all, p)
	}
	return page(r, all)
}

// invite is the batch invite. Inviting someone who is already a member is
// undocumented; this fake refuses the whole batch with a 400, the least
// convenient reading, so clients must check the people list first.
func (s *Server) invite(w *workspace, body []byte) *response {
	var req struct {
		Emails []string          `json:"emails"`
		Roles  []json.RawMessage `json:"roles"`
	}
	invalid := func(details string) *response {
		return &response{status: http.StatusBadRequest, body: exception("ValidationFailed", "Input validation failed", details)}
	}
	if err := strictJSON(body, &req); err != nil {
		return invalid(err.Error())
	}
	if len(req.Emails) == 0 {
		return invalid("emails must not be empty")
	}
	var policies []int64
	for _, raw := range req.Roles {
		var ref struct {
			PolicyID *int64 `json:"policyId"`
		}
		if json.Unmarshal(raw, &ref) != nil || ref.PolicyID == nil {
			return invalid("each role must be a role object with its policyId")
		}
		if !slices.ContainsFunc(w.roles, func(r *role) bool { return r.policyID == *ref.PolicyID }) {
			return invalid(fmt.Sprintf("role %d does not exist in workspace %d", *ref.PolicyID, w.id))
		}
		policies = append(policies, *ref.PolicyID)
	}
	for _, e := range req.Emails {
		switch {
		case !strings.Contains(e, "@"):
			return invalid(fmt.Sprintf("%q is not an email address", e))
		case s.refused[strings.ToLower(e)] != "":
			return invalid(s.refused[strings.ToLower(e)])
		case slices.ContainsFunc(w.members, func(m *membership) bool { return strings.EqualFold(m.email, e) }):
			return invalid(fmt.Sprintf("%s is already a member of this workspace", e))
		}
	}
	data := []any{}
	for _, e := range req.Emails {
		m := &membership{personID: s.person(e), email: e, state: "pending", roles: slices.Clone(policies), created: time.Now().UTC()}
		w.members = append(w.members, m)
		data = append(data, map[string]any{"personId": m.personID, "workspaceId": w.id})
	}
	return &response{status: http.StatusCreated, body: map[string]any{"data": data, "count": len(data)}}
}

func (s *Server) remove(r *http.Request, w *workspace) *response {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	id, _ := strconv.ParseInt(seg[4], 10, 64)
	i := slices.IndexFunc(w.members, func(m *membership) bool { return m.personID == id })
	if i < 0 {
		return &response{status: http.StatusNotFound, body: exception("NotFound", "Not Found", "no such member")}
	}
	w.members = slices.Delete(w.members, i, i+1)
	return &response{status: http.StatusOK, body: map[string]any{}}
}

// page applies limit (default 25, as AAC) and offset to a collection.
func page(r *http.Request, all []any) *response {
	q := r.URL.Query()
	limit, offset := 25, 0
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = v
	}
	if v, err := strconv.Atoi(q.Get("offset")); err == nil && v > 0 {
		offset = v
	}
	data := []any{}
	if offset < len(all) {
		data = all[offset:min(offset+limit, len(all))]
	}
	return &response{status: http.StatusOK, body: map[string]any{"data": data, "count": len(all)}}
}

func workspaceJSON(w *workspace) map[string]any {
	slug := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(w.name, "-"))
	return map[string]any{"id": w.id, "name": w.name, "state": "active", "lastStateChange": nil,
		"custom_url": slug + ".us1.alteryxcloud.com", "max_user_number": 5000, "workspace_member_count": len(w.members),
		"createdAt": w.created, "updatedAt": w.created}
}

// roleJSON is a role object in the shape AAC's guide shows.
func roleJSON(w *workspace, r *role) map[string]any {
	return map[string]any{"policyId": r.policyID, "name": r.name, "workspaceId": w.id, "nameLocked": true, "privilegeLocked": true,
		"productPolicyId": r.productPolicyID, "createdAt": r.created, "updatedAt": r.created,
		"resourceOperations": []any{
			map[string]any{"operations": []string{"share", "update", "read", "create", "delete"}, "resourceType": "connection", "policyTag": "connection_author"},
			map[string]any{"operations": []string{}, "resourceType": "workflow", "policyTag": "workflow_none"},
		}}
}

func exception(name, message, details string) map[string]any {
	return map[string]any{"exception": map[string]string{"name": name, "message": message, "details": details}}
}

func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// jwt makes a JWT-shaped token: real header and claims, a random signature.
func jwt(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	sig := make([]byte, 32)
	_, _ = rand.Read(sig)
	return enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "aactest"}) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
