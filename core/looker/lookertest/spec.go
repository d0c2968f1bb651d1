package lookertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// readOnlyAllowed lists Swagger-2 properties that are marked readOnly but
// that Looker nonetheless requires in a request body. Keep it tiny: each entry
// hides a real spec bug, and anything else marked readOnly must stay an error.
//
// GroupIdForGroupUserInclusion.user_id is readOnly in both spec files, yet it is
// the whole body of add_group_user. (CreateEmbedUserRequest.external_user_id and
// UserAttributeWithValue.value were checked: both are writable in the spec, so
// they need no entry.)
var readOnlyAllowed = map[string]bool{
	"GroupIdForGroupUserInclusion.user_id": true,
}

// Spec is the parsed Swagger 2 description of Looker API 4.0. It is immutable
// after loading and safe for concurrent use.
type Spec struct {
	Path    string // file it was loaded from
	Release string // info.x-looker-release-version, handy in failure messages
	ops     []*operation
	defs    map[string]*schema
}

type operation struct {
	Method     string
	Template   string
	segments   []string
	ID         string              `json:"operationId"`
	Consumes   []string            `json:"consumes"`
	Parameters []parameter         `json:"parameters"`
	Responses  map[string]response `json:"responses"`
}

type parameter struct {
	Name             string  `json:"name"`
	In               string  `json:"in"`
	Required         bool    `json:"required"`
	Type             string  `json:"type"`
	Items            *schema `json:"items"`
	CollectionFormat string  `json:"collectionFormat"`
	Schema           *schema `json:"schema"`
}

type response struct {
	Schema *schema `json:"schema"`
}

type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Format     string             `json:"format"`
	Items      *schema            `json:"items"`
	Properties map[string]*schema `json:"properties"`
	Required   []string           `json:"required"`
	Enum       []any              `json:"enum"`
	ReadOnly   bool               `json:"readOnly"`
	Nullable   bool               `json:"x-looker-nullable"`
	// AdditionalProperties is either a schema or a boolean in Swagger 2;
	// Looker only uses the schema form, so a boolean decodes as nil.
	AdditionalProperties *schema         `json:"-"`
	RawAdditional        json.RawMessage `json:"additionalProperties"`
}

type specEntry struct {
	once sync.Once
	spec *Spec
	err  error
}

var specCache sync.Map // path -> *specEntry

// LoadSpec parses the Swagger 2 file at path. The file is 1.6 MB and every
// test server wants it, so each path is parsed at most once per process.
func LoadSpec(path string) (*Spec, error) {
	e, _ := specCache.LoadOrStore(path, &specEntry{})
	entry := e.(*specEntry)
	entry.once.Do(func() { entry.spec, entry.err = parseSpecFile(path) })
	return entry.spec, entry.err
}

func parseSpecFile(path string) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Swagger string `json:"swagger"`
		Info    struct {
			Release string `json:"x-looker-release-version"`
		} `json:"info"`
		Consumes    []string                              `json:"consumes"`
		Paths       map[string]map[string]json.RawMessage `json:"paths"`
		Definitions map[string]*schema                    `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if doc.Swagger != "2.0" {
		return nil, fmt.Errorf("%s: want a Swagger 2.0 file (the OAS3 one drops readOnly on $ref properties), got swagger=%q", path, doc.Swagger)
	}
	s := &Spec{Path: path, Release: doc.Info.Release, defs: doc.Definitions}
	for tmpl, methods := range doc.Paths {
		for method, rawOp := range methods {
			op := &operation{Method: strings.ToUpper(method), Template: tmpl, segments: splitPath(tmpl)}
			if err := json.Unmarshal(rawOp, op); err != nil {
				return nil, fmt.Errorf("parse %s %s: %w", method, tmpl, err)
			}
			if op.Consumes == nil {
				op.Consumes = doc.Consumes
			}
			for i := range op.Parameters {
				resolveAdditional(op.Parameters[i].Schema)
				resolveAdditional(op.Parameters[i].Items)
			}
			for _, r := range op.Responses {
				resolveAdditional(r.Schema)
			}
			s.ops = append(s.ops, op)
		}
	}
	for _, d := range s.defs {
		resolveAdditional(d)
	}
	return s, nil
}

// resolveAdditional decodes additionalProperties once at load time, because
// Swagger allows it to be a boolean as well as a schema.
func resolveAdditional(sc *schema) {
	if sc == nil {
		return
	}
	if len(sc.RawAdditional) > 0 && sc.RawAdditional[0] == '{' {
		var ap schema
		if json.Unmarshal(sc.RawAdditional, &ap) == nil {
			sc.AdditionalProperties = &ap
			resolveAdditional(&ap)
		}
	}
	resolveAdditional(sc.Items)
	for _, p := range sc.Properties {
		resolveAdditional(p)
	}
}

// splitPath splits an (escaped or template) path into unescaped segments.
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	return segs
}

// matchSegments reports whether segs fit the template segments, and how many
// literal segments matched. Callers prefer the most literal match, so that
// /users/search wins over /users/{user_id} as it does in Looker's router.
func matchSegments(tmpl, segs []string) (literals int, ok bool) {
	if len(tmpl) != len(segs) {
		return 0, false
	}
	for i, t := range tmpl {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if segs[i] == "" {
				return 0, false
			}
			continue
		}
		if t != segs[i] {
			return 0, false
		}
		literals++
	}
	return literals, true
}

func (s *Spec) findOp(method, path string) *operation {
	segs := splitPath(path)
	var best *operation
	bestLit := -1
	for _, op := range s.ops {
		if op.Method != method {
			continue
		}
		if lit, ok := matchSegments(op.segments, segs); ok && lit > bestLit {
			best, bestLit = op, lit
		}
	}
	return best
}

// Violation describes every way one request (or response) departs from the
// spec, so a single test failure shows all of them at once.
type Violation struct {
	Method, Path string
	OperationID  string // empty when no operation matched
	Problems     []string
}

func (v *Violation) Error() string {
	op := v.OperationID
	if op == "" {
		op = "no such operation"
	}
	return fmt.Sprintf("Looker API spec violation: %s %s (%s): %s", v.Method, v.Path, op, strings.Join(v.Problems, "; "))
}

// ValidateRequest checks one request against the operation it addresses.
// path is relative to /api/4.0 and may be escaped. It returns a *Violation,
// or nil when the request is valid.
func (s *Spec) ValidateRequest(method, path string, query url.Values, contentType string, body []byte) error {
	method = strings.ToUpper(method)
	v := &Violation{Method: method, Path: path}
	op := s.findOp(method, path)
	if op == nil {
		v.Problems = append(v.Problems, "the spec has no operation for this method and path")
		return v
	}
	v.OperationID = op.ID
	v.Problems = append(v.Problems, op.checkQuery(query)...)
	if op.ID == "login" {
		v.Problems = append(v.Problems, checkLoginBody(query, contentType, body)...)
	} else {
		v.Problems = append(v.Problems, s.checkBody(op, contentType, body)...)
	}
	if len(v.Problems) == 0 {
		return nil
	}
	return v
}

func (op *operation) checkQuery(query url.Values) []string {
	declared := map[string]parameter{}
	for _, p := range op.Parameters {
		if p.In == "query" {
			declared[p.Name] = p
		}
	}
	var problems []string
	for _, name := range sortedKeys(query) {
		p, ok := declared[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("query parameter %q is not declared", name))
			continue
		}
		if len(query[name]) > 1 {
			problems = append(problems, fmt.Sprintf("query parameter %q is repeated; arrays are csv (collectionFormat %q)", name, p.CollectionFormat))
		}
		for _, val := range query[name] {
			if msg := checkQueryValue(p, val); msg != "" {
				problems = append(problems, fmt.Sprintf("query parameter %q: %s", name, msg))
			}
		}
	}
	for _, p := range op.Parameters {
		if p.In == "query" && p.Required && !query.Has(p.Name) {
			problems = append(problems, fmt.Sprintf("required query parameter %q is missing", p.Name))
		}
	}
	return problems
}

func checkQueryValue(p parameter, val string) string {
	check := func(typ, v string) string {
		switch typ {
		case "boolean":
			if v != "true" && v != "false" {
				return fmt.Sprintf("%q is not a boolean (true/false)", v)
			}
		case "integer":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Sprintf("%q is not an integer", v)
			}
		}
		return ""
	}
	if p.Type == "array" && p.Items != nil {
		for _, item := range strings.Split(val, ",") {
			if msg := check(p.Items.Type, item); msg != "" {
				return msg
			}
		}
		return ""
	}
	return check(p.Type, val)
}

// checkLoginBody encodes our rule, stricter than the spec: the spec still
// lists client_id/client_secret as query parameters, but Looker deprecates
// that and query strings end up in access logs, so they must be form fields.
func checkLoginBody(query url.Values, contentType string, body []byte) []string {
	var problems []string
	for _, k := range []string{"client_id", "client_secret"} {
		if query.Has(k) {
			problems = append(problems, fmt.Sprintf("%s must be sent in the form body, never in the query string", k))
		}
	}
	if mt, _, _ := mime.ParseMediaType(contentType); mt != "application/x-www-form-urlencoded" {
		problems = append(problems, fmt.Sprintf("content type %q: login consumes application/x-www-form-urlencoded", contentType))
		return problems
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return append(problems, "form body does not parse: "+err.Error())
	}
	for _, k := range []string{"client_id", "client_secret"} {
		if form.Get(k) == "" {
			problems = append(problems, fmt.Sprintf("form field %s is missing", k))
		}
	}
	return problems
}

func (s *Spec) checkBody(op *operation, contentType string, body []byte) []string {
	var bodyParam *parameter
	for i := range op.Parameters {
		if op.Parameters[i].In == "body" {
			bodyParam = &op.Parameters[i]
		}
	}
	empty := len(bytes.TrimSpace(body)) == 0
	switch {
	case bodyParam == nil && empty:
		return nil
	case bodyParam == nil:
		return []string{"the operation takes no request body, but one was sent"}
	case empty && bodyParam.Required:
		return []string{"the request body is required"}
	case empty:
		return nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if !slices.Contains(op.Consumes, mt) {
		return []string{fmt.Sprintf("content type %q is not one of %v", contentType, op.Consumes)}
	}
	if mt != "application/json" {
		return nil
	}
	val, err := decodeJSON(body)
	if err != nil {
		return []string{"body is not valid JSON: " + err.Error()}
	}
	c := checker{spec: s, request: true, partial: op.Method == "PATCH"}
	c.value("body", "", bodyParam.Schema, val, false)
	return c.problems
}

// validateResponse checks what the fake answers. It is unexported because
// only this package's tests need it: it keeps the fake's own bodies and
// status codes honest to the spec.
func (s *Spec) validateResponse(method, path string, status int, body []byte) error {
	op := s.findOp(method, path)
	if op == nil {
		return nil
	}
	v := &Violation{Method: method, Path: path, OperationID: op.ID}
	r, declared := op.Responses[strconv.Itoa(status)]
	if !declared && !undeclaredStatusOK(op.ID, status) {
		v.Problems = append(v.Problems, fmt.Sprintf("status %d is not declared", status))
	}
	if declared && r.Schema != nil && len(bytes.TrimSpace(body)) > 0 && r.Schema.Type != "string" {
		val, err := decodeJSON(body)
		if err != nil {
			v.Problems = append(v.Problems, "response is not valid JSON: "+err.Error())
		} else {
			c := checker{spec: s}
			c.value("response", "", r.Schema, val, false)
			v.Problems = append(v.Problems, c.problems...)
		}
	}
	if len(v.Problems) == 0 {
		return nil
	}
	return v
}

// undeclaredStatusOK lists statuses the fake sends although the spec does
// not declare them: Looker answers 401 to every unauthenticated call, and the
// brief wants 409 for a duplicate external_user_id on create_embed_user.
func undeclaredStatusOK(opID string, status int) bool {
	return status == 401 || (opID == "create_embed_user" && status == 409)
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// checker walks a decoded JSON value against a schema and collects problems.
type checker struct {
	spec     *Spec
	request  bool // readOnly and required are enforced for requests only
	partial  bool // PATCH bodies are partial, so required does not apply
	problems []string
}

func (c *checker) addf(where, format string, args ...any) {
	c.problems = append(c.problems, where+": "+fmt.Sprintf(format, args...))
}

// value checks val at JSON location where. owner names the definition whose
// property this is ("" at the top), for messages and the readOnly allow-list.
func (c *checker) value(where, owner string, sc *schema, val any, nullable bool) {
	if sc == nil {
		return
	}
	if val == nil {
		if !nullable && where != "body" && where != "response" {
			c.addf(where, "null is not allowed (x-looker-nullable: false%s)", ofDef(owner))
		}
		return
	}
	if sc.Ref != "" {
		name := strings.TrimPrefix(sc.Ref, "#/definitions/")
		def, ok := c.spec.defs[name]
		if !ok {
			c.addf(where, "unresolvable $ref %s", sc.Ref)
			return
		}
		c.object(where, name, def, val)
		return
	}
	switch sc.Type {
	case "string":
		if _, ok := val.(string); !ok {
			c.addf(where, "want a string, got %s", jsonKind(val))
		}
	case "boolean":
		if _, ok := val.(bool); !ok {
			c.addf(where, "want a boolean, got %s", jsonKind(val))
		}
	case "integer":
		if n, ok := val.(json.Number); !ok {
			c.addf(where, "want an integer, got %s", jsonKind(val))
		} else if _, err := n.Int64(); err != nil {
			c.addf(where, "want an integer, got %s", n)
		}
	case "number":
		if _, ok := val.(json.Number); !ok {
			c.addf(where, "want a number, got %s", jsonKind(val))
		}
	case "array":
		arr, ok := val.([]any)
		if !ok {
			c.addf(where, "want an array, got %s", jsonKind(val))
			return
		}
		for i, item := range arr {
			c.value(fmt.Sprintf("%s[%d]", where, i), owner, sc.Items, item, false)
		}
	case "object", "":
		c.object(where, owner, sc, val)
	}
	if len(sc.Enum) > 0 && !enumHas(sc.Enum, val) {
		c.addf(where, "%v is not one of %v", val, sc.Enum)
	}
}

func (c *checker) object(where, defName string, sc *schema, val any) {
	if sc.Type != "" && sc.Type != "object" {
		c.value(where, defName, &schema{Type: sc.Type, Items: sc.Items, Enum: sc.Enum}, val, true)
		return
	}
	obj, ok := val.(map[string]any)
	if !ok {
		if sc.Type == "object" || len(sc.Properties) > 0 {
			c.addf(where, "want an object%s, got %s", ofDef(defName), jsonKind(val))
		}
		return
	}
	for _, k := range sortedKeys(obj) {
		prop, declared := sc.Properties[k]
		switch {
		case declared:
		case sc.AdditionalProperties != nil:
			c.value(where+"."+k, defName, sc.AdditionalProperties, obj[k], true)
			continue
		case len(sc.Properties) == 0:
			continue // free-form object
		default:
			c.addf(where+"."+k, "property does not exist%s", ofDef(defName))
			continue
		}
		if c.request && prop.ReadOnly && !readOnlyAllowed[defName+"."+k] {
			c.addf(where+"."+k, "property is readOnly in Swagger 2%s; Looker ignores it on write", ofDef(defName))
			continue
		}
		c.value(where+"."+k, defName, prop, obj[k], prop.Nullable)
	}
	if c.partial {
		return
	}
	for _, r := range sc.Required {
		if _, ok := obj[r]; !ok {
			c.addf(where+"."+r, "required property is missing%s", ofDef(defName))
		}
	}
}

func ofDef(name string) string {
	if name == "" {
		return ""
	}
	return " in " + name
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func enumHas(enum []any, v any) bool {
	for _, e := range enum {
		if fmt.Sprint(e) == fmt.Sprint(v) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
