// Package periscopetest is an in-memory fake of the Periscope Data / Sisense
// for Cloud Data Teams Users & Groups API v1, served over HTTP, for tests
// and for the `make run` sandbox.
//
// It follows what the API's documentation and examples show: several sites,
// each with its own API key sent as HTTP-X-PARTNER-AUTH: <site>:<key>; users
// keyed by email per site and selected by the HTTP-X-EMAIL header for get,
// update and delete; groups by name, given to users by name; test_mode=true
// on writes. Where the API is silent it picks one plausible behaviour and
// says so below; it is strict (unknown body fields, unknown groups, missing
// inviter are refused) so that a client cannot come to rely on leniency.
//
// Undocumented choices: answers are 200 with JSON (a user object, or a bare
// list); an absent user or group is 404 {"error":"… not found"}; a bad key
// is 401; a duplicate email or group name is 400 {"error":"… has already
// been taken"}, Rails' wording; a write with test_mode=true is validated
// like any other, answered as if done, and changes nothing: a group
// created in test mode does not exist afterwards, so a user naming it is
// refused with 400 "Group … does not exist", as Periscope does.
package periscopetest

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onboard-dev/onboard/internal/fakehttp"
)

// APIPrefix is where the API lives under the host.
const APIPrefix = "/api/v1"

// Options configures a Server.
type Options struct {
	// Sites maps each site name to its API key.
	Sites map[string]string
	// OnRequest, when set, sees every request after it is recorded and
	// before it is served, outside the fake's lock: tests use it to hold
	// requests (proving concurrency) or to change state mid-flight.
	OnRequest func(Request)
}

// Request is one request as the fake received it. The key is not kept.
type Request struct {
	Site       string // the site named in HTTP-X-PARTNER-AUTH, even when its key is wrong
	Authorized bool   // whether the key was the site's
	Method     string
	Path       string // below the host, e.g. /api/v1/users
	Email      string // HTTP-X-EMAIL
	TestMode   bool   // test_mode=true in the query
	RawQuery   string
	Body       []byte
}

// Fault makes matching requests fail before they reach the fake's logic.
type Fault struct {
	Site   string // empty matches every site
	Method string // empty matches every method
	Path   string // exact path below the host; empty matches every path
	Status int    // default 500
	// Body is sent as is; ContentType defaults to application/json.
	Body, ContentType string
	RetryAfter        string // sent as Retry-After when set
	Times             int    // how many requests fail; 0 means all
	// DropConnection closes the connection without an answer.
	DropConnection bool
}

// User is a user of one site.
type User struct {
	ID             int      `json:"id"`
	FirstName      string   `json:"first_name"`
	LastName       string   `json:"last_name"`
	Email          string   `json:"email"`
	Groups         []string `json:"groups"`
	InvitedByEmail string   `json:"-"`
}

// Group is a group of one site.
type Group struct {
	ID             int    `json:"id"`
	Name           string `json:"name"`
	Access         string `json:"access,omitempty"`
	CreatedByEmail string `json:"-"`
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	URL string

	opts Options
	stop func()

	mu       sync.Mutex
	sites    map[string]*site
	requests []Request
	faults   fakehttp.Faults[Fault]
}

type site struct {
	key    string
	nextID int
	users  map[string]*User  // lower-cased email → user
	groups map[string]*Group // lower-cased name → group
}

// NewServer starts a fake; call Close when done.
func NewServer(opts Options) *Server {
	s := &Server{opts: opts, sites: map[string]*site{}}
	for name, key := range opts.Sites {
		s.sites[name] = &site{key: key, users: map[string]*User{}, groups: map[string]*Group{}}
	}
	s.URL, s.stop = fakehttp.Serve(s.serveHTTP)
	return s
}

// NewTestServer starts a fake that is closed when the test ends.
func NewTestServer(tb testing.TB, opts Options) *Server {
	return fakehttp.CloseAtEnd(tb, NewServer(opts))
}

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.stop() }

// ---- seeding and inspection ----

func (s *Server) site(name string) *site {
	st := s.sites[name]
	if st == nil {
		panic("periscopetest: unknown site " + name)
	}
	return st
}

// AddGroup creates a group on a site; duplicates and unknown sites panic.
func (s *Server) AddGroup(siteName, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.site(siteName)
	if st.groups[strings.ToLower(name)] != nil {
		panic("periscopetest: duplicate group " + name)
	}
	st.nextID++
	st.groups[strings.ToLower(name)] = &Group{ID: st.nextID, Name: name}
}

// AddUser creates a user on a site. Its groups must exist; duplicates panic.
func (s *Server) AddUser(siteName string, u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.site(siteName)
	if st.users[strings.ToLower(u.Email)] != nil {
		panic("periscopetest: duplicate user " + u.Email)
	}
	for i, g := range u.Groups {
		gr := st.groups[strings.ToLower(g)]
		if gr == nil {
			panic("periscopetest: unknown group " + g)
		}
		u.Groups[i] = gr.Name
	}
	st.nextID++
	u.ID = st.nextID
	u.Groups = slices.Clone(u.Groups)
	st.users[strings.ToLower(u.Email)] = &u
}

// Users returns a site's users, ordered by id.
func (s *Server) Users(siteName string) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []User
	for _, u := range s.site(siteName).users {
		out = append(out, copyUser(u))
	}
	slices.SortFunc(out, func(a, b User) int { return a.ID - b.ID })
	return out
}

// User finds a site's user by email, case-insensitively.
func (s *Server) User(siteName, email string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.site(siteName).users[strings.ToLower(email)]
	if u == nil {
		return User{}, false
	}
	return copyUser(u), true
}

// Groups returns a site's groups, ordered by id.
func (s *Server) Groups(siteName string) []Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Group
	for _, g := range s.site(siteName).groups {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int { return a.ID - b.ID })
	return out
}

// Requests returns every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count reports how many requests matched site, method and path (empty matches any).
func (s *Server) Count(siteName, method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if matches(siteName, method, path, r) {
			n++
		}
	}
	return n
}

// InjectFault adds a fault; the earliest-added matching fault wins.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.Add(f, f.Times)
}

func matches(siteName, method, path string, r Request) bool {
	return (siteName == "" || siteName == r.Site) &&
		(method == "" || strings.EqualFold(method, r.Method)) &&
		(path == "" || path == r.Path)
}

func copyUser(u *User) User {
	c := *u
	c.Groups = slices.Clone(u.Groups)
	return c
}

// MarshalJSON writes a user in no group with an empty list, as the API's
// examples do, never null.
func (u User) MarshalJSON() ([]byte, error) {
	type plain User
	p := plain(u)
	if p.Groups == nil {
		p.Groups = []string{}
	}
	return json.Marshal(p)
}

// ---- HTTP ----

// answer is what a handler decided: a status and a JSON body.
type answer struct {
	status int
	body   any
}

func apiError(status int, format string, args ...any) answer {
	return answer{status, map[string]string{"error": fmt.Sprintf(format, args...)}}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	siteName, key, ok := strings.Cut(r.Header.Get("HTTP-X-PARTNER-AUTH"), ":")
	if !ok {
		// No "site:" prefix: the whole value may be a bare key, which must
		// not end up in Request.Site.
		siteName, key = "", ""
	}
	req := Request{
		Site: siteName, Method: r.Method, Path: r.URL.Path, Email: r.Header.Get("HTTP-X-EMAIL"),
		TestMode: strings.EqualFold(r.URL.Query().Get("test_mode"), "true"), RawQuery: r.URL.RawQuery, Body: body,
	}
	s.mu.Lock()
	if st := s.sites[siteName]; st != nil {
		req.Authorized = subtle.ConstantTimeCompare([]byte(key), []byte(st.key)) == 1
	}
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	if s.opts.OnRequest != nil {
		s.opts.OnRequest(req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.faults.Take(func(f Fault) bool { return matches(f.Site, f.Method, f.Path, req) }); ok {
		f.reply().Write(w, writeFaultError)
		return
	}
	writeJSON(w, s.route(req))
}

func (f Fault) reply() fakehttp.Reply {
	return fakehttp.Reply{Status: f.Status, Body: f.Body, ContentType: f.ContentType, RetryAfter: f.RetryAfter, DropConnection: f.DropConnection}
}

func writeFaultError(w http.ResponseWriter, status int) {
	writeJSON(w, apiError(status, "%s", http.StatusText(status)))
}

func writeJSON(w http.ResponseWriter, a answer) {
	b, err := json.Marshal(a.body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write(b)
}

// route serves one authorised request; called with s.mu held.
func (s *Server) route(req Request) answer {
	st := s.sites[req.Site]
	if st == nil || !req.Authorized {
		return apiError(http.StatusUnauthorized, "Unauthorized")
	}
	switch {
	case req.Path == APIPrefix+"/users":
		switch req.Method {
		case http.MethodGet:
			return st.getUsers(req)
		case http.MethodPost:
			return st.createUser(req)
		case http.MethodPut:
			return st.updateUser(req)
		case http.MethodDelete:
			return st.deleteUser(req)
		}
	case req.Path == APIPrefix+"/groups":
		switch req.Method {
		case http.MethodGet:
			return answer{http.StatusOK, st.groupList()}
		case http.MethodPost:
			return st.createGroup(req)
		}
	case strings.HasPrefix(req.Path, APIPrefix+"/groups/") && req.Method == http.MethodGet:
		if g := st.groups[strings.ToLower(strings.TrimPrefix(req.Path, APIPrefix+"/groups/"))]; g != nil {
			return answer{http.StatusOK, g}
		}
		return apiError(http.StatusNotFound, "Group not found")
	}
	return apiError(http.StatusNotFound, "Not found")
}

func (st *site) getUsers(req Request) answer {
	if req.Email == "" {
		list := make([]*User, 0, len(st.users))
		for _, u := range st.users {
			list = append(list, u)
		}
		slices.SortFunc(list, func(a, b *User) int { return a.ID - b.ID })
		return answer{http.StatusOK, list}
	}
	if u := st.users[strings.ToLower(req.Email)]; u != nil {
		return answer{http.StatusOK, u}
	}
	return apiError(http.StatusNotFound, "User not found")
}

// decodeStrict refuses unknown fields and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

// resolveGroups maps names to the site's spelling.
func (st *site) resolveGroups(names []string) ([]string, *answer) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		g := st.groups[strings.ToLower(n)]
		if g == nil {
			a := apiError(http.StatusBadRequest, "Group %s does not exist", n)
			return nil, &a
		}
		out = append(out, g.Name)
	}
	return out, nil
}

func (st *site) createUser(req Request) answer {
	var in struct {
		FirstName      string   `json:"first_name"`
		LastName       string   `json:"last_name"`
		Email          string   `json:"email"`
		Groups         []string `json:"groups"`
		InvitedByEmail string   `json:"invited_by_email"`
	}
	if err := decodeStrict(req.Body, &in); err != nil {
		return apiError(http.StatusBadRequest, "Invalid body: %v", err)
	}
	switch {
	case !validEmail(in.Email):
		return apiError(http.StatusBadRequest, "Email is invalid")
	case !validEmail(in.InvitedByEmail):
		return apiError(http.StatusBadRequest, "Invited by email is invalid")
	case st.users[strings.ToLower(in.Email)] != nil:
		return apiError(http.StatusBadRequest, "Email has already been taken")
	}
	groups, bad := st.resolveGroups(in.Groups)
	if bad != nil {
		return *bad
	}
	u := &User{FirstName: in.FirstName, LastName: in.LastName, Email: in.Email, Groups: groups, InvitedByEmail: in.InvitedByEmail}
	if !req.TestMode {
		st.nextID++
		u.ID = st.nextID
		st.users[strings.ToLower(in.Email)] = u
	}
	return answer{http.StatusOK, u}
}

func (st *site) updateUser(req Request) answer {
	var in struct {
		FirstName *string  `json:"first_name"`
		LastName  *string  `json:"last_name"`
		Groups    []string `json:"groups"`
	}
	if req.Email == "" {
		return apiError(http.StatusBadRequest, "HTTP-X-EMAIL header is required")
	}
	if err := decodeStrict(req.Body, &in); err != nil {
		return apiError(http.StatusBadRequest, "Invalid body: %v", err)
	}
	u := st.users[strings.ToLower(req.Email)]
	if u == nil {
		return apiError(http.StatusNotFound, "User not found")
	}
	next := copyUser(u)
	if in.FirstName != nil {
		next.FirstName = *in.FirstName
	}
	if in.LastName != nil {
		next.LastName = *in.LastName
	}
	if in.Groups != nil {
		groups, bad := st.resolveGroups(in.Groups)
		if bad != nil {
			return *bad
		}
		next.Groups = groups
	}
	if !req.TestMode {
		*u = next
	}
	return answer{http.StatusOK, next}
}

func (st *site) deleteUser(req Request) answer {
	if req.Email == "" {
		return apiError(http.StatusBadRequest, "HTTP-X-EMAIL header is required")
	}
	u := st.users[strings.ToLower(req.Email)]
	if u == nil {
		return apiError(http.StatusNotFound, "User not found")
	}
	if !req.TestMode {
		delete(st.users, strings.ToLower(req.Email))
	}
	return answer{http.StatusOK, map[string]any{"success": true, "email": u.Email}}
}

func (st *site) groupList() []*Group {
	list := make([]*Group, 0, len(st.groups))
	for _, g := range st.groups {
		list = append(list, g)
	}
	slices.SortFunc(list, func(a, b *Group) int { return a.ID - b.ID })
	return list
}

func (st *site) createGroup(req Request) answer {
	var in struct {
		Name           string `json:"name"`
		Access         string `json:"access"`
		CreatedByEmail string `json:"created_by_email"`
	}
	if err := decodeStrict(req.Body, &in); err != nil {
		return apiError(http.StatusBadRequest, "Invalid body: %v", err)
	}
	switch {
	case strings.TrimSpace(in.Name) == "":
		return apiError(http.StatusBadRequest, "Name can't be blank")
	case !validEmail(in.CreatedByEmail):
		return apiError(http.StatusBadRequest, "Created by email is invalid")
	case st.groups[strings.ToLower(in.Name)] != nil:
		return apiError(http.StatusBadRequest, "Name has already been taken")
	}
	g := &Group{Name: in.Name, Access: in.Access, CreatedByEmail: in.CreatedByEmail}
	if !req.TestMode {
		st.nextID++
		g.ID = st.nextID
		st.groups[strings.ToLower(in.Name)] = g
	}
	return answer{http.StatusOK, g}
}
