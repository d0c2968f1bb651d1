package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxBodyBytes is the largest body any trigger accepts (PRODUCT.md: 413 above 1 MiB).
const MaxBodyBytes = 1 << 20

// Limits that keep one form submission from writing novels into a target.
const (
	maxFieldLen     = 256
	maxAttributes   = 50
	maxBulkRequests = 1000
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

// wireRequest accepts attribute values of any JSON scalar, because Zapier and
// Apps Script send numbers and booleans as they come from a sheet.
type wireRequest struct {
	Action         string                     `json:"action"`
	Email          string                     `json:"email"`
	Name           string                     `json:"name"`
	FirstName      string                     `json:"first_name"`
	LastName       string                     `json:"last_name"`
	Profile        string                     `json:"profile"`
	Attributes     map[string]json.RawMessage `json:"attributes"`
	ExternalUserID string                     `json:"external_user_id"`
	IdempotencyKey string                     `json:"idempotency_key"`
}

// ParsedItem is one request of a body, or the reason it was rejected.
type ParsedItem struct {
	Request Request
	Err     *Error
}

// ParseBody decodes an HTTP body of the given Content-Type. A JSON array is a
// bulk body: each item is validated on its own and bulk is true. A body that
// cannot be read at all returns an error and no items.
func ParseBody(contentType string, body []byte) (items []ParsedItem, bulk bool, err *Error) {
	if len(body) > MaxBodyBytes {
		return nil, false, &Error{Status: 413, Message: "body larger than 1 MiB"}
	}
	mediaType := "application/json"
	if contentType != "" {
		mt, _, perr := mime.ParseMediaType(contentType)
		if perr != nil {
			return nil, false, Invalid("", "unreadable Content-Type")
		}
		mediaType = mt
	}
	if mediaType == "application/x-www-form-urlencoded" && looksLikeJSON(body) {
		// curl -d sends JSON labelled as a form unless told otherwise; a form
		// body cannot start with { or [ in any useful way.
		mediaType = "application/json"
	}
	switch mediaType {
	case "application/x-www-form-urlencoded":
		req, ferr := parseForm(body)
		return []ParsedItem{{Request: req, Err: ferr}}, false, nil
	case "application/json", "text/plain":
		// text/plain because Apps Script and some form tools send JSON with it.
		return parseJSON(body)
	default:
		// 400 rather than 415: PRODUCT.md answers every unreadable body with 400.
		return nil, false, Invalid("", "unsupported Content-Type %q: send application/json or application/x-www-form-urlencoded", mediaType)
	}
}

func looksLikeJSON(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
}

func parseJSON(body []byte) ([]ParsedItem, bool, *Error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, Invalid("", "empty body")
	}
	if trimmed[0] != '[' {
		req, err := DecodeRequest(trimmed)
		return []ParsedItem{{Request: req, Err: err}}, false, nil
	}
	var raws []json.RawMessage
	if err := strictUnmarshal(trimmed, &raws); err != nil {
		return nil, true, Invalid("", "malformed JSON array: %s", jsonProblem(err))
	}
	if len(raws) == 0 {
		return nil, true, Invalid("", "empty bulk array")
	}
	if len(raws) > maxBulkRequests {
		return nil, true, Invalid("", "bulk array has %d items; at most %d are accepted", len(raws), maxBulkRequests)
	}
	items := make([]ParsedItem, len(raws))
	for i, raw := range raws {
		items[i].Request, items[i].Err = DecodeRequest(raw)
	}
	return items, true, nil
}

// DecodeRequest parses one JSON request object strictly and validates it.
func DecodeRequest(data []byte) (Request, *Error) {
	var w wireRequest
	if err := strictUnmarshal(data, &w); err != nil {
		var field string
		if f, ok := unknownField(err); ok {
			return Request{}, Invalid(f, "unknown field")
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			field = typeErr.Field
			return Request{}, Invalid(field, "must be a %s", jsonKind(typeErr.Type.Kind().String()))
		}
		return Request{}, Invalid("", "malformed JSON: %s", jsonProblem(err))
	}
	attrs := make(map[string]string, len(w.Attributes))
	for k, raw := range w.Attributes {
		v, err := scalarString(raw)
		if err != nil {
			return Request{}, Invalid("attributes."+k, "must be a string, number or boolean")
		}
		attrs[k] = v
	}
	req := Request{
		Action: Action(w.Action), Email: w.Email, Name: w.Name, FirstName: w.FirstName,
		LastName: w.LastName, Profile: w.Profile, Attributes: attrs,
		ExternalUserID: w.ExternalUserID, IdempotencyKey: w.IdempotencyKey,
	}
	return req.Normalize()
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

// unknownField extracts the name from encoding/json's only report of it, its message.
func unknownField(err error) (string, bool) {
	const prefix = "json: unknown field "
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	name, uerr := strconv.Unquote(strings.TrimPrefix(msg, prefix))
	if uerr != nil {
		return "", false
	}
	return name, true
}

func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("%s at byte %d", syntax.Error(), syntax.Offset)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "map", "struct":
		return "JSON object"
	case "slice":
		return "JSON array"
	}
	return goKind
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

// formFields maps form keys to request fields; attributes come as attributes.KEY
// or attributes[KEY], the two spellings form builders produce.
func parseForm(body []byte) (Request, *Error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return Request{}, Invalid("", "malformed form body")
	}
	req := Request{Attributes: map[string]string{}}
	fields := map[string]*string{
		"email": &req.Email, "name": &req.Name, "first_name": &req.FirstName, "last_name": &req.LastName,
		"profile": &req.Profile, "external_user_id": &req.ExternalUserID, "idempotency_key": &req.IdempotencyKey,
	}
	var action string
	fields["action"] = &action
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic: the first bad key is always the same one
	for _, k := range keys {
		vs := values[k]
		if len(vs) != 1 {
			return Request{}, Invalid(k, "given %d times; send it once", len(vs))
		}
		if dst, ok := fields[k]; ok {
			*dst = vs[0]
			continue
		}
		if name, ok := formAttribute(k); ok {
			req.Attributes[name] = vs[0]
			continue
		}
		return Request{}, Invalid(k, "unknown field")
	}
	req.Action = Action(action)
	return req.Normalize()
}

func formAttribute(key string) (string, bool) {
	if name, ok := strings.CutPrefix(key, "attributes."); ok && name != "" {
		return name, true
	}
	if name, ok := strings.CutPrefix(key, "attributes["); ok && strings.HasSuffix(name, "]") && len(name) > 1 {
		return strings.TrimSuffix(name, "]"), true
	}
	return "", false
}

// Normalize validates the request and returns it in canonical form: action
// defaulted, email normalised, names split, whitespace trimmed.
func (r Request) Normalize() (Request, *Error) {
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
		name string
		v    *string
	}{{"name", &r.Name}, {"first_name", &r.FirstName}, {"last_name", &r.LastName}, {"profile", &r.Profile},
		{"external_user_id", &r.ExternalUserID}, {"idempotency_key", &r.IdempotencyKey}} {
		*f.v = strings.TrimSpace(*f.v)
		if e := checkText(f.name, *f.v); e != nil {
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

func checkText(field, v string) *Error {
	if len(v) > maxFieldLen {
		return Invalid(field, "longer than %d bytes", maxFieldLen)
	}
	if !utf8.ValidString(v) {
		return Invalid(field, "not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return Invalid(field, "contains a control character")
		}
	}
	return nil
}

// NormalizeEmail accepts exactly one bare address and returns it trimmed with
// its domain lower-cased and in IDNA ASCII form. The local part keeps its case
// (RFC 5321 lets servers treat it as case-sensitive) but every comparison in
// onboard is case-insensitive.
func NormalizeEmail(raw string) (string, *Error) {
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
	ascii, derr := NormalizeDomain(domain)
	if derr != nil || !strings.Contains(ascii, ".") {
		return "", Invalid("email", "has an invalid domain")
	}
	return local + "@" + ascii, nil
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
