package sheetstest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/google"
)

const (
	sheetID  = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
	formTab  = "Form Responses 1"
	editor   = "onboard@example.iam.gserviceaccount.com"
	scopeRW  = "https://www.googleapis.com/auth/spreadsheets"
	scopeRO  = "https://www.googleapis.com/auth/spreadsheets.readonly"
	stranger = "someone-else@example.iam.gserviceaccount.com"
)

// formRows is a form's responses tab: ragged rows (a sheet's trailing
// empty cells are not there), an empty row, an empty cell mid-row.
var formRows = [][]string{
	{"Timestamp", "Email Address", "Full name", "Team"},
	{"1/2/2026 10:00:00", "ada@example.com", "Ada Lovelace", "eng"},
	{"1/2/2026 11:00:00", "bob@example.com", "Bob"},
	{},
	{"1/3/2026 09:30:00", "", "Cy", "ops"},
}

// clock is a settable clock for the fake's quota and tokens.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	t     *testing.T
	srv   *Server
	acct  *ServiceAccount
	token string // a read-write token of acct
	clock *clock
}

// newFixture serves a spreadsheet with a hidden first tab, the form's tab
// and a tab whose name has a quote, shared with one account as Editor.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	// Near the real time: Google's library signs assertions by it.
	c := &clock{now: time.Now().Truncate(time.Minute)}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	srv := NewTestServer(t, opts)
	srv.AddSpreadsheet(Spreadsheet{ID: sheetID, Title: "New users", Tabs: []Tab{
		{Title: "Notes", Hidden: true, Values: [][]string{{"not this one"}}},
		{Title: formTab, Rows: 50, Columns: 5, Values: formRows},
		{Title: "It's", Values: [][]string{{"quoted", "tab"}}},
	}})
	acct := srv.NewServiceAccount(editor)
	srv.Share(sheetID, editor, Editor)
	f := &fixture{t: t, srv: srv, acct: acct, clock: c}
	f.token = f.exchange(acct, scopeRW)
	return f
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(method, path, token string, body any) reply {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		f.t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
	}
	return r
}

// get reads a range as the Go client sends it: the range path-escaped.
func (f *fixture) get(rng string, query string) reply {
	f.t.Helper()
	path := "/v4/spreadsheets/" + sheetID + "/values/" + url.PathEscape(rng)
	if query != "" {
		path += "?" + query
	}
	return f.do(http.MethodGet, path, f.token, nil)
}

func (f *fixture) batch(token string, body any) reply {
	f.t.Helper()
	return f.do(http.MethodPost, "/v4/spreadsheets/"+sheetID+"/values:batchUpdate", token, body)
}

// googleErr returns the error object of a Google error body, failing the
// test when the answer is not one.
func googleErr(t *testing.T, r reply) (code float64, message, status string) {
	t.Helper()
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("answer %d is not a Google error: %s", r.status, r.raw)
	}
	code, _ = e["code"].(float64)
	message, _ = e["message"].(string)
	status, _ = e["status"].(string)
	if int(code) != r.status {
		t.Errorf("error code %v, HTTP status %d", code, r.status)
	}
	return code, message, status
}

// sign makes an assertion as a service account's library would.
func sign(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// keyOf reads the private key back out of an account's credentials file.
func keyOf(t *testing.T, a *ServiceAccount) *rsa.PrivateKey {
	t.Helper()
	var creds struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(a.CredentialsJSON(), &creds); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(creds.PrivateKey))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func (f *fixture) claims(a *ServiceAccount, scope string) map[string]any {
	now := f.clock.Now()
	return map[string]any{"iss": a.Email, "scope": scope, "aud": f.srv.URL + "/token",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func (f *fixture) postToken(form url.Values) reply {
	f.t.Helper()
	resp, err := http.PostForm(f.srv.URL+"/token", form)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		f.t.Fatalf("token answer is not JSON: %q", raw)
	}
	return r
}

func (f *fixture) exchange(a *ServiceAccount, scope string) string {
	f.t.Helper()
	jwt := sign(f.t, keyOf(f.t, a), map[string]any{"alg": "RS256", "typ": "JWT", "kid": a.KeyID}, f.claims(a, scope))
	r := f.postToken(url.Values{"grant_type": {jwtBearerGrant}, "assertion": {jwt}})
	tok, _ := r.body["access_token"].(string)
	if r.status != http.StatusOK || tok == "" || r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(3599) {
		f.t.Fatalf("token exchange: %d %s", r.status, r.raw)
	}
	return tok
}

func TestValuesGetReadsRangesAsTheAPIDoes(t *testing.T) {
	f := newFixture(t, Options{})
	all := []any{
		[]any{"Timestamp", "Email Address", "Full name", "Team"},
		[]any{"1/2/2026 10:00:00", "ada@example.com", "Ada Lovelace", "eng"},
		[]any{"1/2/2026 11:00:00", "bob@example.com", "Bob"},
		[]any{},
		[]any{"1/3/2026 09:30:00", "", "Cy", "ops"},
	}
	cases := []struct {
		rng, query string
		wantRange  string
		want       []any // nil: no "values" in the answer
	}{
		{"'Form Responses 1'", "", "'Form Responses 1'!A1:E50", all},
		{"Form Responses 1", "", "'Form Responses 1'!A1:E50", all},
		{"'Form Responses 1'!A1:E", "majorDimension=ROWS", "'Form Responses 1'!A1:E50", all},
		{"'Form Responses 1'!B2:C3", "", "'Form Responses 1'!B2:C3",
			[]any{[]any{"ada@example.com", "Ada Lovelace"}, []any{"bob@example.com", "Bob"}}},
		{"'Form Responses 1'!B:B", "", "'Form Responses 1'!B1:B50",
			[]any{[]any{"Email Address"}, []any{"ada@example.com"}, []any{"bob@example.com"}}},
		{"'Form Responses 1'!3:4", "", "'Form Responses 1'!A3:E4", []any{[]any{"1/2/2026 11:00:00", "bob@example.com", "Bob"}}},
		{"'Form Responses 1'!C4:C", "", "'Form Responses 1'!C4:C50", []any{[]any{}, []any{"Cy"}}},
		{"'Form Responses 1'!A1:D3", "majorDimension=COLUMNS", "'Form Responses 1'!A1:D3", []any{
			[]any{"Timestamp", "1/2/2026 10:00:00", "1/2/2026 11:00:00"},
			[]any{"Email Address", "ada@example.com", "bob@example.com"},
			[]any{"Full name", "Ada Lovelace", "Bob"},
			[]any{"Team", "eng"},
		}},
		{"'Form Responses 1'!E1:E50", "", "'Form Responses 1'!E1:E50", nil},
		{"'Form Responses 1'!A6:E", "", "'Form Responses 1'!A6:E50", nil},
		// No tab named: the first visible one, not the hidden "Notes".
		{"A1:D1", "", "'Form Responses 1'!A1:D1", []any{all[0]}},
		{"'It''s'!A1:B2", "", "'It''s'!A1:B2", []any{[]any{"quoted", "tab"}}},
		{"Notes", "valueRenderOption=FORMATTED_VALUE", "Notes!A1:Z1000", []any{[]any{"not this one"}}},
	}
	for _, c := range cases {
		r := f.get(c.rng, c.query)
		if r.status != http.StatusOK {
			t.Errorf("%s?%s: %d %s", c.rng, c.query, r.status, r.raw)
			continue
		}
		values, has := r.body["values"]
		if r.body["range"] != c.wantRange || (c.want == nil) == has || (c.want != nil && !reflect.DeepEqual(values, c.want)) {
			t.Errorf("%s?%s = range %v values %v; want %s %v", c.rng, c.query, r.body["range"], values, c.wantRange, c.want)
		}
	}
}

func TestRenderOptionsAndUserEnteredInput(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.batch(f.token, map[string]any{"valueInputOption": "USER_ENTERED", "data": []any{
		map[string]any{"range": "'It''s'!A2", "values": []any{[]any{"42", "1.50", "true", "=A2*2", "'007", "ada@example.com", 3.25, false}}},
	}})
	if r.status != http.StatusOK {
		t.Fatalf("write: %d %s", r.status, r.raw)
	}
	want := map[string][]any{
		"":                                    {"42", "1.5", "TRUE", "=A2*2", "007", "ada@example.com", "3.25", "FALSE"},
		"valueRenderOption=UNFORMATTED_VALUE": {42.0, 1.5, true, "=A2*2", "007", "ada@example.com", 3.25, false},
		"valueRenderOption=FORMULA":           {42.0, 1.5, true, "=A2*2", "007", "ada@example.com", 3.25, false},
	}
	for query, row := range want {
		got := f.get("'It''s'!A2:H2", query)
		if !reflect.DeepEqual(got.body["values"], []any{row}) {
			t.Errorf("%q: %v, want %v", query, got.body["values"], row)
		}
	}
	// RAW keeps text as typed.
	f.batch(f.token, map[string]any{"valueInputOption": "RAW", "data": []any{
		map[string]any{"range": "'It''s'!A3", "values": []any{[]any{"42", "=A2*2"}}},
	}})
	if got := f.get("'It''s'!A3:B3", "valueRenderOption=UNFORMATTED_VALUE"); !reflect.DeepEqual(got.body["values"], []any{[]any{"42", "=A2*2"}}) {
		t.Errorf("RAW: %v, want the text as typed", got.body["values"])
	}
}

func TestBatchUpdateWritesEveryRangeOrNone(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.batch(f.token, map[string]any{"valueInputOption": "RAW", "data": []any{
		map[string]any{"range": "'Form Responses 1'!E1", "values": []any{[]any{"onboard"}}},
		// A column of statuses, one skipped (null) and one cleared ("").
		map[string]any{"range": "'Form Responses 1'!E2:E5", "majorDimension": "COLUMNS",
			"values": []any{[]any{"created", nil, "", "error: bad email"}}},
	}})
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	want := map[string]any{
		"spreadsheetId": sheetID, "totalUpdatedRows": 4.0, "totalUpdatedColumns": 2.0, "totalUpdatedCells": 4.0, "totalUpdatedSheets": 1.0,
		"responses": []any{
			map[string]any{"spreadsheetId": sheetID, "updatedRange": "'Form Responses 1'!E1", "updatedRows": 1.0, "updatedColumns": 1.0, "updatedCells": 1.0},
			map[string]any{"spreadsheetId": sheetID, "updatedRange": "'Form Responses 1'!E2:E5", "updatedRows": 3.0, "updatedColumns": 1.0, "updatedCells": 3.0},
		},
	}
	if !reflect.DeepEqual(r.body, want) {
		t.Errorf("answer\n%v\nwant\n%v", r.body, want)
	}
	got := f.srv.Values(sheetID, formTab)
	if got[0][4] != "onboard" || got[1][4] != "created" || len(got[2]) != 3 || got[4][4] != "error: bad email" {
		t.Errorf("cells after the write: %q", got)
	}

	// One bad range and nothing is written, not even the good one before it.
	r = f.batch(f.token, map[string]any{"valueInputOption": "RAW", "data": []any{
		map[string]any{"range": "'Form Responses 1'!E2", "values": []any{[]any{"overwritten"}}},
		map[string]any{"range": "'Form Responses 2'!E3", "values": []any{[]any{"x"}}},
	}})
	if _, msg, status := googleErr(t, r); r.status != 400 || status != "INVALID_ARGUMENT" || msg != "Invalid data[1]: Unable to parse range: 'Form Responses 2'!E3" {
		t.Errorf("bad range: %d %s", r.status, r.raw)
	}
	if got := f.srv.Values(sheetID, formTab); got[1][4] != "created" {
		t.Errorf("a refused batch wrote %q", got[1][4])
	}
}

func TestErrorsHaveGoogleShape(t *testing.T) {
	f := newFixture(t, Options{})
	viewerAcct := f.srv.NewServiceAccount("viewer@example.iam.gserviceaccount.com")
	f.srv.Share(sheetID, viewerAcct.Email, Viewer)
	viewer := f.exchange(viewerAcct, scopeRW)
	strangerTok := f.exchange(f.srv.NewServiceAccount(stranger), scopeRW)
	readOnly := f.exchange(f.acct, scopeRO)
	write := map[string]any{"valueInputOption": "RAW", "data": []any{map[string]any{"range": "'Form Responses 1'!E2", "values": []any{[]any{"x"}}}}}
	values := "/v4/spreadsheets/" + sheetID + "/values/"
	cases := []struct {
		name           string
		method, path   string
		token          string
		body           any
		status         int
		grpc, message  string
		messagePrefix  bool
		wwwAuthenticte bool
	}{
		{"no such spreadsheet", "GET", "/v4/spreadsheets/nope", f.token, nil, 404, "NOT_FOUND", "Requested entity was not found.", false, false},
		{"not shared", "GET", "/v4/spreadsheets/" + sheetID, strangerTok, nil, 403, "PERMISSION_DENIED", "The caller does not have permission", false, false},
		{"not shared, values", "GET", values + "A1", strangerTok, nil, 403, "PERMISSION_DENIED", "The caller does not have permission", false, false},
		{"viewer reads", "GET", values + "A1", viewer, nil, 200, "", "", false, false},
		{"viewer writes", "POST", values[:len(values)-1] + ":batchUpdate", viewer, write, 403, "PERMISSION_DENIED", "The caller does not have permission", false, false},
		{"read-only scope writes", "POST", values[:len(values)-1] + ":batchUpdate", readOnly, write, 403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.", false, false},
		{"no token", "GET", values + "A1", "", nil, 403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers", true, false},
		{"unknown token", "GET", values + "A1", "ya29.made-up", nil, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", true, true},
		{"missing tab", "GET", values + url.PathEscape("'Form Responses 2'!A1:Z"), f.token, nil, 400, "INVALID_ARGUMENT", "Unable to parse range: 'Form Responses 2'!A1:Z", false, false},
		{"past the grid", "GET", values + url.PathEscape("'Form Responses 1'!A1:F2"), f.token, nil, 400, "INVALID_ARGUMENT", "Range ('Form Responses 1'!A1:F2) exceeds grid limits. Max rows: 50, max columns: 5", false, false},
		{"bad enum", "GET", values + "A1?majorDimension=DIAGONAL", f.token, nil, 400, "INVALID_ARGUMENT", "Invalid value at 'major_dimension' (type.googleapis.com/google.apps.sheets.v4.Dimension), \"DIAGONAL\"", false, false},
		{"unknown parameter", "GET", values + "A1?majorDim=ROWS", f.token, nil, 400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"majorDim\"", true, false},
		{"no valueInputOption", "POST", values[:len(values)-1] + ":batchUpdate", f.token, map[string]any{"data": write["data"]}, 400, "INVALID_ARGUMENT", "Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED", false, false},
		{"unknown body field", "POST", values[:len(values)-1] + ":batchUpdate", f.token, map[string]any{"valueInputOption": "RAW", "rows": 1}, 400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"rows\": Cannot find field.", false, false},
		{"past a bounded range", "POST", values[:len(values)-1] + ":batchUpdate", f.token, map[string]any{"valueInputOption": "RAW", "data": []any{
			map[string]any{"range": "'Form Responses 1'!D2:D3", "values": []any{[]any{"a", "b"}}}}}, 400, "INVALID_ARGUMENT",
			"Invalid data[0]: Requested writing within range ['Form Responses 1'!D2:D3], but tried writing to column [E]", false, false},
		{"a write past the grid", "POST", values[:len(values)-1] + ":batchUpdate", f.token, map[string]any{"valueInputOption": "RAW", "data": []any{
			map[string]any{"range": "'Form Responses 1'!E1", "values": []any{[]any{"status", "more"}}}}}, 400, "INVALID_ARGUMENT",
			"Invalid data[0]: Range ('Form Responses 1'!E1) exceeds grid limits. Max rows: 50, max columns: 5", false, false},
	}
	for _, c := range cases {
		r := f.do(c.method, c.path, c.token, c.body)
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.raw, c.status)
			continue
		}
		if c.status == 200 {
			continue
		}
		_, msg, grpc := googleErr(t, r)
		if grpc != c.grpc || msg != c.message && !(c.messagePrefix && strings.HasPrefix(msg, c.message)) {
			t.Errorf("%s: %s %q, want %s %q", c.name, grpc, msg, c.grpc, c.message)
		}
		if got := r.header.Get("WWW-Authenticate"); (got != "") != c.wwwAuthenticte {
			t.Errorf("%s: WWW-Authenticate %q", c.name, got)
		}
	}
	if got := f.srv.Values(sheetID, formTab); len(got[1]) != 4 {
		t.Errorf("a refused write changed the tab: %q", got[1])
	}
}

func TestQuotaPerCallerPerMinute(t *testing.T) {
	f := newFixture(t, Options{QuotaPerMinute: 3})
	other := f.exchange(f.srv.NewServiceAccount(stranger), scopeRW)
	for i := range 3 {
		if r := f.get("A1", ""); r.status != 200 {
			t.Fatalf("read %d: %d %s", i+1, r.status, r.raw)
		}
	}
	r := f.get("A1", "")
	code, msg, status := googleErr(t, r)
	if code != 429 || status != "RESOURCE_EXHAUSTED" || !strings.Contains(msg, "'Read requests per minute per user' of service 'sheets.googleapis.com'") {
		t.Fatalf("fourth read: %d %s", r.status, r.raw)
	}
	if r.header.Get("Retry-After") != "" {
		t.Errorf("quota answer has Retry-After %q; Google sends none", r.header.Get("Retry-After"))
	}
	info := r.body["error"].(map[string]any)["details"].([]any)[0].(map[string]any)
	meta := info["metadata"].(map[string]any)
	if info["reason"] != "RATE_LIMIT_EXCEEDED" || meta["quota_limit"] != "ReadRequestsPerMinutePerUser" || meta["quota_limit_value"] != "3" {
		t.Errorf("quota details: %v", info)
	}
	// Writes have their own quota, and so does every other caller.
	w := f.batch(f.token, map[string]any{"valueInputOption": "RAW", "data": []any{}})
	if w.status != 200 {
		t.Errorf("a write after the reads ran out: %d %s", w.status, w.raw)
	}
	if r := f.do("GET", "/v4/spreadsheets/"+sheetID, other, nil); r.status != 403 {
		t.Errorf("another caller: %d, want its own quota (and 403: not shared)", r.status)
	}
	f.clock.Advance(time.Minute)
	if r := f.get("A1", ""); r.status != 200 {
		t.Errorf("a minute later: %d %s", r.status, r.raw)
	}
}

// Google's own library gets a token from the fake with the credentials
// file the fake hands out, and the token reads the sheet.
func TestTokenExchangeWithGooglesLibrary(t *testing.T) {
	f := newFixture(t, Options{})
	cfg, err := google.JWTConfigFromJSON(f.acct.CredentialsJSON(), scopeRW)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TokenURL != f.srv.URL+"/token" {
		t.Fatalf("token_uri %q", cfg.TokenURL)
	}
	ctx := context.Background()
	tok, err := cfg.TokenSource(ctx).Token()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cfg.Client(ctx).Get(f.srv.URL + "/v4/spreadsheets/" + sheetID + "?fields=sheets.properties.title")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	want := map[string]any{"sheets": []any{
		map[string]any{"properties": map[string]any{"title": "Notes"}},
		map[string]any{"properties": map[string]any{"title": formTab}},
		map[string]any{"properties": map[string]any{"title": "It's"}},
	}}
	if resp.StatusCode != 200 || !reflect.DeepEqual(body, want) {
		t.Errorf("spreadsheets.get with the library's token: %d %v", resp.StatusCode, body)
	}
	last := f.srv.Requests()[len(f.srv.Requests())-1]
	if last.Op != OpGet || last.Caller != editor || last.Status != 200 || !strings.HasPrefix(tok.AccessToken, "ya29.") {
		t.Errorf("recorded %+v", last)
	}

	// An hour on, the token is dead.
	f.clock.Advance(time.Hour)
	if r := f.get("A1", ""); r.status != 401 {
		t.Errorf("an hour later: %d %s", r.status, r.raw)
	}
}

func TestTokenExchangeRefusals(t *testing.T) {
	f := newFixture(t, Options{})
	other := f.srv.NewServiceAccount(stranger)
	header := map[string]any{"alg": "RS256", "typ": "JWT"}
	good := f.claims(f.acct, scopeRW)
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for key, val := range good {
			c[key] = val
		}
		c[k] = v
		return c
	}
	now := f.clock.Now()
	cases := []struct {
		name        string
		grant, jwt  string
		status      int
		code, descr string
	}{
		{"another key", jwtBearerGrant, sign(t, keyOf(t, other), header, good), 400, "invalid_grant", "Invalid JWT Signature."},
		{"another kid", jwtBearerGrant, sign(t, keyOf(t, f.acct), map[string]any{"alg": "RS256", "kid": other.KeyID}, good), 400, "invalid_grant", "Invalid JWT Signature."},
		{"unknown account", jwtBearerGrant, sign(t, keyOf(t, f.acct), header, with("iss", "ghost@example.com")), 400, "invalid_grant", "Invalid grant: account not found"},
		{"wrong audience", jwtBearerGrant, sign(t, keyOf(t, f.acct), header, with("aud", "https://oauth2.googleapis.com/token")), 400, "invalid_grant", "Invalid JWT: Failed audience check."},
		{"expired", jwtBearerGrant, sign(t, keyOf(t, f.acct), header, with("exp", now.Add(-time.Minute).Unix())), 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token"},
		{"too long-lived", jwtBearerGrant, sign(t, keyOf(t, f.acct), header, with("exp", now.Add(2*time.Hour).Unix())), 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token"},
		{"no scope", jwtBearerGrant, sign(t, keyOf(t, f.acct), header, with("scope", "")), 400, "invalid_scope", "Empty or missing scope not allowed."},
		{"not a JWT", jwtBearerGrant, "abc.def", 400, "invalid_grant", "Invalid JWT: malformed assertion."},
		{"wrong grant", "client_credentials", sign(t, keyOf(t, f.acct), header, good), 400, "unsupported_grant_type", "Invalid grant_type: client_credentials"},
	}
	for _, c := range cases {
		r := f.postToken(url.Values{"grant_type": {c.grant}, "assertion": {c.jwt}})
		descr, _ := r.body["error_description"].(string)
		if r.status != c.status || r.body["error"] != c.code || !strings.HasPrefix(descr, c.descr) {
			t.Errorf("%s: %d %s; want %d %s %q", c.name, r.status, r.raw, c.status, c.code, c.descr)
		}
	}
	f.srv.DeleteKey(editor)
	r := f.postToken(url.Values{"grant_type": {jwtBearerGrant}, "assertion": {sign(t, keyOf(t, f.acct), header, good)}})
	if r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Errorf("deleted key: %d %s", r.status, r.raw)
	}
	if f.get("A1", "").status != 200 {
		t.Error("a token issued before the key was deleted stopped working")
	}
}

func TestSpreadsheetsGetAndGridResize(t *testing.T) {
	f := newFixture(t, Options{})
	path := "/v4/spreadsheets/" + sheetID
	r := f.do("GET", path+"?fields="+url.QueryEscape("sheets.properties(sheetId,title,index,gridProperties)")+"&alt=json&prettyPrint=false", f.token, nil)
	sheets, _ := r.body["sheets"].([]any)
	if r.status != 200 || len(sheets) != 3 || r.body["spreadsheetId"] != nil {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	form := sheets[1].(map[string]any)["properties"].(map[string]any)
	wantForm := map[string]any{"sheetId": form["sheetId"], "title": formTab, "index": 1.0,
		"gridProperties": map[string]any{"rowCount": 50.0, "columnCount": 5.0}}
	if !reflect.DeepEqual(form, wantForm) || form["sheetId"] == 0.0 {
		t.Errorf("form tab properties %v", form)
	}
	if full := f.do("GET", path, f.token, nil); full.body["spreadsheetId"] != sheetID || full.body["properties"].(map[string]any)["title"] != "New users" {
		t.Errorf("without fields: %s", full.raw)
	}

	// A column for the status: grow the grid, then write into it.
	grow := map[string]any{"requests": []any{map[string]any{"updateSheetProperties": map[string]any{
		"properties": map[string]any{"sheetId": form["sheetId"], "gridProperties": map[string]any{"columnCount": 6}},
		"fields":     "gridProperties.columnCount",
	}}}}
	if r := f.do("POST", path+":batchUpdate", f.token, grow); r.status != 200 || r.body["spreadsheetId"] != sheetID {
		t.Fatalf("grow: %d %s", r.status, r.raw)
	}
	if r := f.batch(f.token, map[string]any{"valueInputOption": "RAW", "data": []any{
		map[string]any{"range": "'Form Responses 1'!F1", "values": []any{[]any{"onboard"}}}}}); r.status != 200 {
		t.Fatalf("write into the new column: %d %s", r.status, r.raw)
	}
	// Shrinking drops what no longer fits; a rename is seen by ranges.
	shrink := map[string]any{"requests": []any{map[string]any{"updateSheetProperties": map[string]any{
		"properties": map[string]any{"sheetId": form["sheetId"], "title": "Answers", "gridProperties": map[string]any{"rowCount": 2, "columnCount": 2}},
		"fields":     "title,gridProperties",
	}}}}
	if r := f.do("POST", path+":batchUpdate", f.token, shrink); r.status != 200 {
		t.Fatalf("shrink: %d %s", r.status, r.raw)
	}
	if got := f.get("Answers", ""); !reflect.DeepEqual(got.body["values"], []any{[]any{"Timestamp", "Email Address"}, []any{"1/2/2026 10:00:00", "ada@example.com"}}) || got.body["range"] != "Answers!A1:B2" {
		t.Errorf("after shrink and rename: %s", got.raw)
	}
	if r := f.do("POST", path+":batchUpdate", f.token, map[string]any{"requests": []any{map[string]any{"addSheet": map[string]any{}}}}); r.status != 400 {
		t.Errorf("a request the fake does not model: %d %s", r.status, r.raw)
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t, Options{})
	write := map[string]any{"valueInputOption": "RAW", "data": []any{map[string]any{"range": "'Form Responses 1'!E2", "values": []any{[]any{"created"}}}}}

	f.srv.InjectFault(Fault{Op: OpValuesBatchUpdate, Status: 503, Times: 1})
	r := f.batch(f.token, write)
	if _, _, status := googleErr(t, r); r.status != 503 || status != "UNAVAILABLE" {
		t.Errorf("injected 503: %d %s", r.status, r.raw)
	}
	if got := f.srv.Values(sheetID, formTab); len(got[1]) != 4 {
		t.Error("a write refused by a fault landed")
	}
	if r := f.get("A1", ""); r.status != 200 {
		t.Errorf("a read matched a write's fault: %d", r.status)
	}

	// The answer is lost after the write landed.
	f.srv.InjectFault(Fault{Op: OpValuesBatchUpdate, AfterApply: true, DropConnection: true, Times: 1})
	req, _ := http.NewRequest("POST", f.srv.URL+"/v4/spreadsheets/"+sheetID+"/values:batchUpdate", strings.NewReader(`{"valueInputOption":"RAW","data":[{"range":"'Form Responses 1'!E2","values":[["created"]]}]}`))
	req.Header.Set("Authorization", "Bearer "+f.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped connection answered %d", resp.StatusCode)
	}
	if got := f.srv.Values(sheetID, formTab); got[1][4] != "created" {
		t.Errorf("AfterApply: the write did not land: %q", got[1])
	}

	// A 429 with no body sends the quota error, and Retry-After when asked.
	f.srv.InjectFault(Fault{Op: OpValuesGet, Status: 429, RetryAfter: "7", Times: 1})
	r = f.get("A1", "")
	if _, msg, status := googleErr(t, r); status != "RESOURCE_EXHAUSTED" || !strings.HasPrefix(msg, "Quota exceeded") || r.header.Get("Retry-After") != "7" {
		t.Errorf("injected 429: %v %s", r.header, r.raw)
	}
	statuses := map[Op][]int{}
	for _, q := range f.srv.Requests() {
		statuses[q.Op] = append(statuses[q.Op], q.Status)
	}
	if !reflect.DeepEqual(statuses[OpValuesBatchUpdate], []int{503, 0}) || f.srv.Count(OpToken) != 1 {
		t.Errorf("recorded statuses %v, %d token requests", statuses, f.srv.Count(OpToken))
	}
}

func TestAppendRowAddsAfterTheLastRow(t *testing.T) {
	f := newFixture(t, Options{})
	if n := f.srv.AppendRow(sheetID, formTab, "1/4/2026 08:00:00", "dee@example.com", "Dee"); n != 6 {
		t.Errorf("appended at row %d, want 6", n)
	}
	got := f.srv.Values(sheetID, formTab)
	if len(got) != 6 || got[5][1] != "dee@example.com" {
		t.Errorf("after append: %q", got)
	}
}

func TestFieldMasks(t *testing.T) {
	doc := map[string]any{"a": 1.0, "b": map[string]any{"c": 2.0, "d": 3.0}, "e": []any{map[string]any{"f": 4.0, "g": 5.0}}}
	cases := map[string]any{
		"a":          map[string]any{"a": 1.0},
		"b.c,a":      map[string]any{"a": 1.0, "b": map[string]any{"c": 2.0}},
		"b/d":        map[string]any{"b": map[string]any{"d": 3.0}},
		"e(g)":       map[string]any{"e": []any{map[string]any{"g": 5.0}}},
		"b(c),b":     map[string]any{"b": map[string]any{"c": 2.0, "d": 3.0}},
		"*":          doc,
		"nothing,a":  map[string]any{"a": 1.0},
		"e.f, b.c  ": map[string]any{"e": []any{map[string]any{"f": 4.0}}, "b": map[string]any{"c": 2.0}},
	}
	for mask, want := range cases {
		m, err := parseFields(mask)
		if err != nil {
			t.Errorf("%q: %v", mask, err)
			continue
		}
		if got := m.apply(doc); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %v, want %v", mask, got, want)
		}
	}
	for _, bad := range []string{"", "a,", "a(b", "(a)", "a..b"} {
		if _, err := parseFields(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
