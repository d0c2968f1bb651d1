// Package sheetstest is an in-memory fake of the Google Sheets API v4 and of
// Google's service-account token exchange, served over HTTP, for tests and
// for the `make run` sandbox. It follows the API reference
// (https://developers.google.com/workspace/sheets/api/reference/rest):
//
//   - GET /v4/spreadsheets/{id}: the spreadsheet's properties and its tabs'
//     properties (sheetId, title, index, gridProperties), with `fields`
//     partial responses.
//   - GET /v4/spreadsheets/{id}/values/{range}: A1 ranges (quoted tab
//     names with a doubled quote for a quote, whole tabs, whole rows and
//     columns), majorDimension, valueRenderOption; trailing empty cells
//     and rows are left out and an empty range has no "values" at all, as
//     the API does.
//   - POST /v4/spreadsheets/{id}/values:batchUpdate: valueInputOption RAW or
//     USER_ENTERED (required), data[] of ValueRange, null cells skipped,
//     all ranges checked before any is written.
//   - POST /v4/spreadsheets/{id}:batchUpdate: updateSheetProperties of a
//     tab's title and grid size only, so a client can make room for a column.
//   - POST /token: the JWT-bearer grant of a service account whose key the
//     fake made (NewServiceAccount), the assertion's RS256 signature checked
//     against it; the access token it issues lasts an hour.
//
// Errors have Google's JSON shape {"error":{"code","message","status"}}: a
// request without a bearer token is 403 (Google no longer says 401 to a
// caller with no identity at all), an unknown or expired token 401
// UNAUTHENTICATED, a token without a spreadsheets scope 403, a spreadsheet
// that does not exist 404 NOT_FOUND, one not shared with the caller (or,
// for a write, shared as Viewer) 403 "The caller does not have
// permission", a tab that does not exist 400 "Unable to parse range: …",
// cells past the tab's grid 400 "… exceeds grid limits …". Each caller
// (service account) may make Options.QuotaPerMinute reads and as many
// writes a minute, refilled at each minute of the clock; the next gets 429
// RESOURCE_EXHAUSTED with the quota error body and no Retry-After, as
// Google sends it.
//
// Choices where the reference is silent or the real API is too rich:
// formulas written USER_ENTERED are kept as their text and not evaluated;
// USER_ENTERED reads plain numbers and TRUE/FALSE, and a leading ' keeps
// text, but no dates or currencies; FORMATTED_VALUE shows numbers in
// Go's shortest form; named ranges, R1C1 notation, includeGridData,
// includeValuesInResponse and every spreadsheets.batchUpdate request
// but updateSheetProperties are refused with a 400 naming sheetstest; a
// `fields` mask naming unknown fields selects nothing; drive.file scope is
// as good as drive; tab names match exactly, case included.
package sheetstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/sheets/internal/a1"
	"github.com/onboard-dev/onboard/internal/fakehttp"
)

// DefaultQuotaPerMinute is the Sheets API's quota of read (and of write)
// requests a minute per user per project.
const DefaultQuotaPerMinute = 60

// Default grid of a new tab, as Sheets makes it.
const (
	DefaultRows    = 1000
	DefaultColumns = 26
)

// Op names what a request asked for.
type Op string

const (
	OpToken             Op = "token"                    // POST /token
	OpGet               Op = "spreadsheets.get"         // GET /v4/spreadsheets/{id}
	OpBatchUpdate       Op = "spreadsheets.batchUpdate" // POST /v4/spreadsheets/{id}:batchUpdate
	OpValuesGet         Op = "values.get"               // GET /v4/spreadsheets/{id}/values/{range}
	OpValuesBatchUpdate Op = "values.batchUpdate"       // POST /v4/spreadsheets/{id}/values:batchUpdate
)

// write reports whether an operation counts against the write quota.
func (o Op) write() bool { return o == OpBatchUpdate || o == OpValuesBatchUpdate }

// Options configures a Server.
type Options struct {
	// QuotaPerMinute is how many read requests, and how many write
	// requests, one caller may make a minute (0: DefaultQuotaPerMinute;
	// negative: no quota).
	QuotaPerMinute int
	// Now is the clock of quotas and token lifetimes; nil: time.Now.
	// Tests move it to let a quota refill without waiting a minute.
	Now func() time.Time
	// OnRequest, when set, sees every request after it is recorded and
	// before it is served, outside the fake's lock: tests use it to hold a
	// request or to change the sheet mid-flight.
	OnRequest func(Request)
}

// Request is one request as the fake received it.
type Request struct {
	Op          Op // "" for a path the fake does not serve
	Method      string
	Path        string // as sent, escaped
	Spreadsheet string
	Range       string // the {range} of values.get, unescaped
	Query       url.Values
	Body        []byte
	// Caller is the service account the bearer token (or, for OpToken,
	// the assertion) belongs to; "" when there was none or it was not valid.
	Caller string
	// Status is the answer's status; 0 while in flight or when the
	// connection was dropped.
	Status int
}

// Fault makes matching requests fail.
type Fault struct {
	Op          Op     // "" matches every operation
	Spreadsheet string // "" matches every spreadsheet
	Status      int    // default 500
	// Body is sent as is (ContentType default application/json); empty
	// sends Google's error body for Status.
	Body, ContentType string
	RetryAfter        string // sent as Retry-After when set
	Times             int    // how many requests fail; 0 means all
	// DropConnection closes the connection without an answer.
	DropConnection bool
	// AfterApply serves the request first (a write lands) and then
	// answers with the fault instead: the answer is lost on the way back.
	// Only requests that succeed take it.
	AfterApply bool
}

func (f Fault) matches(r Request) bool {
	return (f.Op == "" || f.Op == r.Op) && (f.Spreadsheet == "" || f.Spreadsheet == r.Spreadsheet)
}

// Role is what a spreadsheet is shared as.
type Role int

const (
	Viewer Role = iota + 1
	Editor
)

// Spreadsheet seeds a spreadsheet.
type Spreadsheet struct {
	ID    string
	Title string // default "Untitled spreadsheet"
	Tabs  []Tab  // at least one
}

// Tab seeds one tab (a "sheet" in the API's words).
type Tab struct {
	Title string
	// Rows and Columns are the grid's size (0: DefaultRows, DefaultColumns).
	// A form's responses tab has just as many columns as the form asks.
	Rows, Columns int
	Hidden        bool
	// Values are the cells as typed, row by row from A1.
	Values [][]string
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	URL string

	opts Options
	stop func()

	mu       sync.Mutex
	sheets   map[string]*spreadsheet
	accounts map[string]*ServiceAccount
	tokens   map[string]grant
	quota    map[string]*window
	requests []Request
	faults   fakehttp.Faults[Fault]
}

type spreadsheet struct {
	id, title string
	tabs      []*tab
	access    map[string]Role
}

type tab struct {
	id            int64
	title         string
	rows, columns int
	hidden        bool
	cells         [][]cell // cells[row][column], from 0; ragged
}

// cell is one cell's content; the zero cell is empty.
type cell struct {
	value   any    // string, float64 or bool; nil: empty
	formula string // set when written USER_ENTERED with a leading =
}

// NewServer starts a fake; call Close when done.
func NewServer(opts Options) *Server {
	if opts.QuotaPerMinute == 0 {
		opts.QuotaPerMinute = DefaultQuotaPerMinute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, sheets: map[string]*spreadsheet{}, accounts: map[string]*ServiceAccount{},
		tokens: map[string]grant{}, quota: map[string]*window{}}
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

// AddSpreadsheet creates a spreadsheet, shared with nobody. A duplicate id,
// no tabs, duplicate tab titles or values past a tab's grid panic.
func (s *Server) AddSpreadsheet(sp Spreadsheet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp.ID == "" || s.sheets[sp.ID] != nil {
		panic(fmt.Sprintf("sheetstest: spreadsheet id %q empty or taken", sp.ID))
	}
	if len(sp.Tabs) == 0 {
		panic("sheetstest: a spreadsheet needs a tab")
	}
	if sp.Title == "" {
		sp.Title = "Untitled spreadsheet"
	}
	ss := &spreadsheet{id: sp.ID, title: sp.Title, access: map[string]Role{}}
	for i, t := range sp.Tabs {
		if t.Title == "" || ss.tab(t.Title) != nil {
			panic(fmt.Sprintf("sheetstest: tab title %q empty or taken", t.Title))
		}
		tb := &tab{id: tabID(i), title: t.Title, rows: t.Rows, columns: t.Columns, hidden: t.Hidden}
		if tb.rows == 0 {
			tb.rows = DefaultRows
		}
		if tb.columns == 0 {
			tb.columns = DefaultColumns
		}
		if len(t.Values) > tb.rows {
			panic(fmt.Sprintf("sheetstest: tab %q has %d rows of values and a grid of %d", t.Title, len(t.Values), tb.rows))
		}
		for r, row := range t.Values {
			if len(row) > tb.columns {
				panic(fmt.Sprintf("sheetstest: tab %q row %d has %d values and a grid of %d columns", t.Title, r+1, len(row), tb.columns))
			}
			for c, v := range row {
				tb.set(r, c, rawCell(v))
			}
		}
		ss.tabs = append(ss.tabs, tb)
	}
	s.sheets[sp.ID] = ss
}

// tabID is the sheetId of the i-th tab made: Sheets gives the first tab 0
// and later ones large arbitrary numbers.
func tabID(i int) int64 {
	if i == 0 {
		return 0
	}
	return 1_000_000_007 * int64(i) % 2_147_483_647
}

// Share shares a spreadsheet with an account (any email) as role.
func (s *Server) Share(id, email string, role Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spreadsheet(id).access[email] = role
}

// Unshare takes a spreadsheet away from an account.
func (s *Server) Unshare(id, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.spreadsheet(id).access, email)
}

func (s *Server) spreadsheet(id string) *spreadsheet {
	ss := s.sheets[id]
	if ss == nil {
		panic("sheetstest: unknown spreadsheet " + id)
	}
	return ss
}

func (s *Server) seededTab(id, title string) *tab {
	t := s.spreadsheet(id).tab(title)
	if t == nil {
		panic(fmt.Sprintf("sheetstest: spreadsheet %s has no tab %q", id, title))
	}
	return t
}

// Values returns a tab's cells as values.get shows them by default
// (formatted, by rows, trailing empty cells and rows left out).
func (s *Server) Values(id, title string) [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.seededTab(id, title)
	grid := t.read(1, 1, t.columns, t.rows, false, renderFormatted)
	out := make([][]string, len(grid))
	for i, row := range grid {
		out[i] = make([]string, len(row))
		for j, v := range row {
			out[i][j] = v.(string)
		}
	}
	return out
}

// AppendRow writes values, as typed, into the row after a tab's last row
// with a value, as a form does with a new answer; it returns that row's
// number. A row past the grid panics.
func (s *Server) AppendRow(id, title string, values ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.seededTab(id, title)
	row := len(t.read(1, 1, t.columns, t.rows, false, renderFormatted))
	if row >= t.rows || len(values) > t.columns {
		panic(fmt.Sprintf("sheetstest: tab %q has no room for row %d", title, row+1))
	}
	for c, v := range values {
		t.set(row, c, rawCell(v))
	}
	return row + 1
}

// Requests returns every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count reports how many requests asked for op ("" counts all).
func (s *Server) Count(op Op) int {
	n := 0
	for _, r := range s.Requests() {
		if op == "" || r.Op == op {
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

// ---- HTTP ----

// answer is what a handler decided: a status, a JSON body, extra headers.
type answer struct {
	status int
	body   any
	header http.Header
}

func success(body any) answer { return answer{status: http.StatusOK, body: body} }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Body: body}
	req.Op, req.Spreadsheet, req.Range = route(r.Method, req.Path)
	s.mu.Lock()
	s.requests = append(s.requests, req)
	index := len(s.requests) - 1
	s.mu.Unlock()

	if s.opts.OnRequest != nil {
		s.opts.OnRequest(req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.faults.Take(func(f Fault) bool { return !f.AfterApply && f.matches(req) }); ok {
		s.requests[index].Status = f.serve(w)
		return
	}
	a := s.serve(&s.requests[index], r)
	if a.status < 300 {
		if f, ok := s.faults.Take(func(f Fault) bool { return f.AfterApply && f.matches(req) }); ok {
			s.requests[index].Status = f.serve(w)
			return
		}
	}
	if a.status < 300 && req.Op != OpToken && req.Query.Has("fields") {
		// The mask was checked before the request was served.
		mask, _ := parseFields(req.Query.Get("fields"))
		a.body = mask.apply(toGeneric(a.body))
	}
	writeJSON(w, a)
	s.requests[index].Status = a.status
}

// route names the operation a path and method ask for.
func route(method, path string) (op Op, spreadsheetID, rng string) {
	if path == "/token" {
		if method == http.MethodPost {
			return OpToken, "", ""
		}
		return "", "", ""
	}
	rest, found := strings.CutPrefix(path, "/v4/spreadsheets/")
	if !found {
		return "", "", ""
	}
	seg, tail, _ := strings.Cut(rest, "/")
	seg, method2, hasMethod := strings.Cut(seg, ":")
	id, err := url.PathUnescape(seg)
	if err != nil || id == "" {
		return "", "", ""
	}
	switch {
	case tail == "" && !hasMethod && method == http.MethodGet:
		return OpGet, id, ""
	case tail == "" && method2 == "batchUpdate" && method == http.MethodPost:
		return OpBatchUpdate, id, ""
	case hasMethod:
		return "", id, ""
	case tail == "values:batchUpdate" && method == http.MethodPost:
		return OpValuesBatchUpdate, id, ""
	case strings.HasPrefix(tail, "values/") && method == http.MethodGet:
		if rng, err := url.PathUnescape(strings.TrimPrefix(tail, "values/")); err == nil {
			return OpValuesGet, id, rng
		}
	}
	return "", id, ""
}

// serve answers one request; called with s.mu held.
func (s *Server) serve(req *Request, r *http.Request) answer {
	if req.Op == "" {
		return googleError(http.StatusNotFound, "sheetstest: no method serves "+req.Method+" "+req.Path)
	}
	if req.Op == OpToken {
		// The assertion's audience is the endpoint as its caller reached
		// it: this server, or a proxy a test puts in front of it.
		return s.exchange(req, "http://"+r.Host+"/token")
	}
	if a, bad := checkQuery(req.Op, req.Query); bad {
		return a
	}
	email, a, authorized := s.authorize(req.Op, r.Header.Get("Authorization"))
	if !authorized {
		return a
	}
	req.Caller = email
	if a, refused := s.takeQuota(email, req.Op); refused {
		return a
	}
	ss := s.sheets[req.Spreadsheet]
	if ss == nil {
		return googleError(http.StatusNotFound, "Requested entity was not found.")
	}
	role := ss.access[email]
	if role == 0 || req.Op.write() && role != Editor {
		return googleError(http.StatusForbidden, "The caller does not have permission")
	}
	switch req.Op {
	case OpGet:
		return success(ss.resource())
	case OpValuesGet:
		return ss.getValues(req.Range, req.Query)
	case OpValuesBatchUpdate:
		return ss.batchUpdateValues(req.Body)
	default:
		return ss.batchUpdate(req.Body)
	}
}

// queryParams are the parameters each operation takes, besides the
// system parameters every Google API takes.
var (
	systemParams = []string{"alt", "prettyPrint", "fields", "key", "quotaUser", "$.xgafv", "callback",
		"upload_protocol", "uploadType", "access_token", "oauth_token"}
	queryParams = map[Op][]string{
		OpGet:       {"ranges", "includeGridData", "excludeTablesInBandedRanges"},
		OpValuesGet: {"majorDimension", "valueRenderOption", "dateTimeRenderOption"},
	}
)

// checkQuery refuses parameters the method does not have, as Google's
// front end does, and a malformed fields mask.
func checkQuery(op Op, q url.Values) (answer, bool) {
	for name := range q {
		if !slices.Contains(systemParams, name) && !slices.Contains(queryParams[op], name) {
			return googleError(http.StatusBadRequest, fmt.Sprintf(
				"Invalid JSON payload received. Unknown name %q: Cannot bind query parameter. Field %q could not be found in request message.", name, name)), true
		}
	}
	if q.Has("access_token") || q.Has("oauth_token") {
		return googleError(http.StatusBadRequest, "sheetstest: send the token as Authorization: Bearer"), true
	}
	if q.Has("fields") {
		if _, err := parseFields(q.Get("fields")); err != nil {
			return googleError(http.StatusBadRequest, "Invalid field selection "+q.Get("fields")), true
		}
	}
	if op == OpGet && q.Get("includeGridData") == "true" {
		return googleError(http.StatusBadRequest, "sheetstest: includeGridData is not modelled"), true
	}
	return answer{}, false
}

func (f Fault) serve(w http.ResponseWriter) int {
	reply := fakehttp.Reply{Status: f.Status, Body: f.Body, ContentType: f.ContentType, RetryAfter: f.RetryAfter, DropConnection: f.DropConnection}
	reply.Write(w, func(w http.ResponseWriter, status int) { writeJSON(w, statusError(status)) })
	if f.DropConnection {
		return 0
	}
	if f.Status == 0 {
		return http.StatusInternalServerError
	}
	return f.Status
}

func writeJSON(w http.ResponseWriter, a answer) {
	b, err := json.Marshal(a.body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(a.status)
	_, _ = w.Write(b)
}

// toGeneric turns a body into maps and slices, for a fields mask to cut.
func toGeneric(body any) any {
	b, err := json.Marshal(body)
	if err != nil {
		return body
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return body
	}
	return v
}

// ---- the spreadsheet resource ----

func (ss *spreadsheet) tab(title string) *tab {
	for _, t := range ss.tabs {
		if t.title == title {
			return t
		}
	}
	return nil
}

// resolve finds the tab a parsed range names: the first visible one when
// it names none.
func (ss *spreadsheet) resolve(r a1.Range) *tab {
	if r.Sheet != "" {
		return ss.tab(r.Sheet)
	}
	for _, t := range ss.tabs {
		if !t.hidden {
			return t
		}
	}
	return nil
}

func (ss *spreadsheet) resource() map[string]any {
	sheets := make([]map[string]any, len(ss.tabs))
	for i, t := range ss.tabs {
		props := map[string]any{
			"sheetId": t.id, "title": t.title, "index": i, "sheetType": "GRID",
			"gridProperties": map[string]any{"rowCount": t.rows, "columnCount": t.columns},
		}
		if t.hidden {
			props["hidden"] = true
		}
		sheets[i] = map[string]any{"properties": props}
	}
	return map[string]any{
		"spreadsheetId": ss.id,
		"properties": map[string]any{
			"title": ss.title, "locale": "en_US", "autoRecalc": "ON_CHANGE", "timeZone": "Etc/GMT",
		},
		"sheets":         sheets,
		"spreadsheetUrl": "https://docs.google.com/spreadsheets/d/" + ss.id + "/edit",
	}
}
