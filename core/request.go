package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// MaxBodyBytes is the largest body any trigger accepts (PRODUCT.md: 413 above 1 MiB).
const MaxBodyBytes = 1 << 20

// Limits that keep one form submission from writing novels into a target.
const (
	maxFieldLen   = 256
	maxAttributes = 50
)

// Action is what a request asks for.
type Action string

const (
	ActionProvision   Action = "provision"
	ActionDeprovision Action = "deprovision"
)

// Request is the one schema shared by HTTP bodies, Pub/Sub data and SQS bodies.
type Request struct {
	Action         Action            `json:"action,omitempty"`
	Email          string            `json:"email"`
	Name           string            `json:"name,omitempty"`
	FirstName      string            `json:"first_name,omitempty"`
	LastName       string            `json:"last_name,omitempty"`
	Profile        string            `json:"profile,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	ExternalUserID string            `json:"external_user_id,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
}

// requestFields are the request's text fields by their wire name: the one
// table every decoder (a JSON body or message, a form, an import's CSV
// columns) reads a request through. "attributes" is the one field that is
// not text.
var requestFields = map[string]func(*Request) *string{
	"action":           func(r *Request) *string { return (*string)(&r.Action) },
	"email":            func(r *Request) *string { return &r.Email },
	"name":             func(r *Request) *string { return &r.Name },
	"first_name":       func(r *Request) *string { return &r.FirstName },
	"last_name":        func(r *Request) *string { return &r.LastName },
	"profile":          func(r *Request) *string { return &r.Profile },
	"external_user_id": func(r *Request) *string { return &r.ExternalUserID },
	"idempotency_key":  func(r *Request) *string { return &r.IdempotencyKey },
}

// IsRequestField says whether a wire name is one of the request's text fields.
func IsRequestField(name string) bool { return requestFields[name] != nil }

// IsColumn says whether a table's column (a CSV import's, a sheet's) maps
// into a request: a request field, or attr.NAME for a user attribute.
func IsColumn(name string) bool {
	attr, ok := strings.CutPrefix(name, "attr.")
	return IsRequestField(name) || (ok && attr != "")
}

// RequestFromRow builds a request from one row of a table whose header
// names each cell's column; a column IsColumn does not know, and a cell
// past the header, are skipped. A spreadsheet's "Deprovision" is the
// action "deprovision".
func RequestFromRow(header, row []string) Request {
	var r Request
	for i, col := range header {
		if i >= len(row) || !IsColumn(col) {
			continue
		}
		v := row[i]
		if col == "action" {
			v = strings.ToLower(strings.TrimSpace(v))
		}
		if r.SetField(col, v) || v == "" {
			continue
		}
		if r.Attributes == nil {
			r.Attributes = map[string]string{}
		}
		r.Attributes[strings.TrimPrefix(col, "attr.")] = v
	}
	return r
}

// SetField sets the text field a wire name (a JSON key, a form field, a
// CSV column) names, and says whether there is one.
func (r *Request) SetField(name, value string) bool {
	field := requestFields[name]
	if field != nil {
		*field(r) = value
	}
	return field != nil
}

// requestKeys are the JSON keys of a request, spelled exactly: encoding/json
// would also match "EMAIL" or "Email", and a key that means something under
// one spelling and nothing under another is how a filter gets bypassed.
var requestKeys = func() map[string]bool {
	keys := map[string]bool{"attributes": true}
	for name := range requestFields {
		keys[name] = true
	}
	return keys
}()

// DecodeRequest parses one JSON request object strictly and validates it:
// keys must be spelled exactly and given once, at any depth; attribute
// values may be any JSON scalar, because Zapier and Apps Script send
// numbers and booleans as they come from a sheet.
func DecodeRequest(data []byte) (Request, error) {
	if e := checkKeys(data, requestKeys); e != nil {
		return Request{}, e
	}
	var raw map[string]json.RawMessage
	if err := strictUnmarshal(data, &raw); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return Request{}, Invalid("", "must be a JSON object")
		}
		return Request{}, Invalid("", "malformed JSON: %s", DescribeJSONError(err))
	}
	var req Request
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if name == "attributes" {
			attrs, e := decodeAttributes(raw[name])
			if e != nil {
				return Request{}, e
			}
			req.Attributes = attrs
			continue
		}
		var v string
		if err := json.Unmarshal(raw[name], &v); err != nil {
			return Request{}, Invalid(name, "must be a string")
		}
		req.SetField(name, v)
	}
	return req.Normalize()
}

func decodeAttributes(raw json.RawMessage) (map[string]string, error) {
	var values map[string]json.RawMessage
	if err := json.Unmarshal(raw, &values); err != nil {
		return nil, Invalid("attributes", "must be a JSON object")
	}
	attrs := make(map[string]string, len(values))
	for k, v := range values {
		text, err := scalarString(v)
		if err != nil {
			return nil, Invalid("attributes."+k, "must be a string, number or boolean")
		}
		attrs[k] = text
	}
	return attrs, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// checkKeys walks the JSON tokens once and refuses a key given twice in one
// object (encoding/json silently keeps the last) and, at the top level, a key
// that is not exactly one of known. Malformed JSON is left to the decoder,
// whose error says where.
func checkKeys(data []byte, known map[string]bool) error {
	type object struct {
		path    string
		keys    map[string]bool
		wantKey bool
		key     string
	}
	var stack []*object // nil entries are arrays
	dec := json.NewDecoder(bytes.NewReader(data))
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1] != nil {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var top *object
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.wantKey {
			if key, ok := tok.(string); ok {
				field := key
				if top.path != "" {
					field = top.path + "." + key
				}
				if top.keys[key] {
					return Invalid(field, "given more than once; send it once")
				}
				if len(stack) == 1 && known != nil && !known[key] {
					return unknownKey(key, known)
				}
				top.keys[key], top.wantKey, top.key = true, false, field
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			path := ""
			if top != nil {
				path = top.key
			}
			stack = append(stack, &object{path: path, keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, nil)
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

func unknownKey(key string, known map[string]bool) *Error {
	for name := range known {
		if strings.EqualFold(name, key) {
			return Invalid(key, "unknown field (field names are case-sensitive: send %q)", name)
		}
	}
	return Invalid(key, "unknown field")
}

// DescribeJSONError says what is wrong with a JSON document and where,
// without the decoder's Go type names.
func DescribeJSONError(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("%s at byte %d", syntax.Error(), syntax.Offset)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func scalarString(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch t := v.(type) {
	case string:
		return t, nil
	case float64:
		return strings.TrimSpace(string(raw)), nil
	case bool:
		return strconv.FormatBool(t), nil
	}
	return "", errors.New("not a scalar")
}

// Normalize validates the request and returns it in canonical form: action
// defaulted, email normalised, names split, whitespace trimmed.
func (r Request) Normalize() (Request, error) {
	switch r.Action {
	case "":
		r.Action = ActionProvision
	case ActionProvision, ActionDeprovision:
	default:
		return Request{}, Invalid("action", "must be %q or %q", ActionProvision, ActionDeprovision)
	}
	email, err := NormalizeEmail(r.Email)
	if err != nil {
		return Request{}, err
	}
	r.Email = email
	for _, f := range []struct {
		name   string
		v      *string
		isName bool
	}{{"name", &r.Name, true}, {"first_name", &r.FirstName, true}, {"last_name", &r.LastName, true},
		{"profile", &r.Profile, false}, {"external_user_id", &r.ExternalUserID, false},
		{"idempotency_key", &r.IdempotencyKey, false}} {
		*f.v = strings.TrimSpace(*f.v)
		check := checkText
		if f.isName {
			check = checkPersonName
		}
		if e := check(f.name, *f.v); e != nil {
			return Request{}, e
		}
	}
	if r.FirstName == "" && r.LastName == "" && r.Name != "" {
		// Zapier sends one "name" field; the first space is the best split we can make.
		first, last, _ := strings.Cut(r.Name, " ")
		r.FirstName, r.LastName = first, strings.TrimSpace(last)
	}
	if len(r.Attributes) > maxAttributes {
		return Request{}, Invalid("attributes", "at most %d attributes are accepted", maxAttributes)
	}
	for k, v := range r.Attributes {
		if k == "" || checkText("attributes", k) != nil {
			return Request{}, Invalid("attributes", "attribute names must be short printable text")
		}
		if e := checkText("attributes."+k, v); e != nil {
			return Request{}, e
		}
	}
	if len(r.Attributes) == 0 {
		r.Attributes = nil
	}
	return r, nil
}

// checkText refuses what no form field needs and what makes text lie about
// itself: control characters, line and paragraph separators, and format
// characters (zero-width spaces and joiners, bidi overrides such as U+202E,
// byte-order marks), which hide text or reorder it on screen.
func checkText(field, v string) error {
	return checkChars(field, v, func(string, int) bool { return false })
}

func checkChars(field, v string, allowFormat func(s string, i int) bool) error {
	if len(v) > maxFieldLen {
		return Invalid(field, "longer than %d bytes", maxFieldLen)
	}
	if !utf8.ValidString(v) {
		return Invalid(field, "not valid UTF-8")
	}
	for i, r := range v {
		switch {
		case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			return Invalid(field, "contains a control character or line break")
		case unicode.Is(unicode.Cf, r) && !allowFormat(v, i):
			return Invalid(field, "contains an invisible formatting character (U+%04X: zero-width or bidi control)", r)
		}
	}
	return nil
}

// checkPersonName is checkText for names, which reach the welcome email and
// the targets' user lists: a name may not carry a web address (a form
// submitter's link inside onboard's own email), and a zero-width joiner or
// non-joiner is kept only where a script needs it, between two non-Latin
// letters (Persian, Indic names).
func checkPersonName(field, v string) error {
	if e := checkChars(field, v, joinerInWord); e != nil {
		return e
	}
	if containsWebAddress(v) {
		return Invalid(field, "may not contain a web address")
	}
	return nil
}

func joinerInWord(s string, i int) bool {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r != '\u200C' && r != '\u200D' {
		return false
	}
	before, _ := utf8.DecodeLastRuneInString(s[:i])
	after, _ := utf8.DecodeRuneInString(s[i+size:])
	scriptLetter := func(r rune) bool {
		return (unicode.IsLetter(r) || unicode.IsMark(r)) && !unicode.In(r, unicode.Latin, unicode.Cyrillic, unicode.Greek)
	}
	return scriptLetter(before) && scriptLetter(after)
}

// containsWebAddress finds what a mail client would turn into a link: a
// scheme, "www.", or a word ending in a real top-level domain ("evil.com",
// "ada@evil.io"), while "J.R.R." and "St.John" stay names.
func containsWebAddress(v string) bool {
	lower := strings.ToLower(v)
	if strings.Contains(lower, "://") || strings.Contains(lower, "www.") {
		return true
	}
	for _, word := range strings.FieldsFunc(lower, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(",;:()<>[]\"'@/", r)
	}) {
		word = strings.Trim(word, ".!?")
		dot := strings.LastIndexByte(word, '.')
		if dot <= 0 {
			continue
		}
		if _, icann := publicsuffix.PublicSuffix(word); icann {
			return true
		}
	}
	return false
}

// NormalizeEmail accepts exactly one bare address and returns it trimmed with
// its domain lower-cased and in IDNA ASCII form. The local part keeps its case
// (RFC 5321 lets servers treat it as case-sensitive) but every comparison in
// onboard is case-insensitive.
func NormalizeEmail(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", Invalid("email", "required")
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", Invalid("email", "contains a line break")
	}
	if len(s) > 254 {
		return "", Invalid("email", "longer than 254 bytes")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		// Address != s rejects "Ada <ada@x>", "<ada@x>" and comments: we want
		// one bare address, not whatever net/mail can dig out of a header.
		return "", Invalid("email", "must be a single bare address like ada@example.com")
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if strings.ContainsAny(local, " \"") {
		return "", Invalid("email", "quoted or spaced local parts are not accepted")
	}
	if e := checkText("email", local); e != nil {
		return "", e
	}
	if mixesScripts(local) {
		return "", Invalid("email", "mixes Latin letters with Cyrillic or Greek look-alikes")
	}
	ascii, derr := NormalizeDomain(domain)
	if derr != nil || !validHostname(ascii) {
		return "", Invalid("email", "has an invalid domain")
	}
	return local + "@" + ascii, nil
}

// mixesScripts catches the look-alike address: "аda" with a Cyrillic а reads
// as ada but is another account. An address wholly in one script is someone's
// real address and stays accepted.
func mixesScripts(local string) bool {
	var latin, other bool
	for _, r := range local {
		switch {
		case unicode.Is(unicode.Latin, r):
			latin = true
		case unicode.In(r, unicode.Cyrillic, unicode.Greek):
			other = true
		}
	}
	return latin && other
}

// validHostname checks the ASCII form label by label, because the IDNA
// conversion lets through what DNS cannot hold: "xn--" decodes to an empty
// label, so a@xn--.example.com would become a@.example.com.
func validHostname(ascii string) bool {
	labels := strings.Split(ascii, ".")
	if len(ascii) > 253 || len(labels) < 2 {
		return false
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	_, err := idna.Lookup.ToUnicode(ascii)
	return err == nil
}

// NormalizeDomain lower-cases a domain and converts it to IDNA ASCII, so that
// policy compares one spelling of every domain.
func NormalizeDomain(domain string) (string, error) {
	ascii, err := idna.Lookup.ToASCII(strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), ".")))
	if err != nil {
		return "", err
	}
	return ascii, nil
}

// EmailDomain returns the part after the last @ of a normalised email.
func EmailDomain(email string) string {
	return email[strings.LastIndexByte(email, '@')+1:]
}

// Fingerprint is a stable hash of the request's meaning (not its key), used as
// the idempotency key when none is given and to detect a key reused for a
// different request.
func (r Request) Fingerprint() string {
	canonical := r
	canonical.IdempotencyKey = ""
	canonical.Name = "" // already folded into first/last name
	canonical.Email = strings.ToLower(canonical.Email)
	b, _ := json.Marshal(canonical) // map keys are sorted by encoding/json
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
