package scim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"

	"github.com/onboard-dev/onboard/core/state"
)

// maxCount is the largest page a list answers, whatever count asks.
const maxCount = 200

// handler serves one resource type's endpoint.
type handler struct {
	s   *Server
	rt  *resourceType
	dir *directory
}

// rendered is a resource as answered, with its ETag and location.
type rendered struct {
	attrs          map[string]any
	etag, location string
}

// render turns a stored resource into its SCIM representation.
func (h handler) render(ctx context.Context, st stored, withSet bool) (map[string]any, error) {
	out := maps.Clone(st.rec.Attributes)
	if out == nil {
		out = map[string]any{}
	}
	out["schemas"] = h.rt.schemaIDs()
	out["id"] = st.id
	if len(st.rec.Groups) > 0 {
		out["groups"] = valueList(st.rec.Groups)
	}
	if h.rt.setAttr != "" && withSet {
		ids, err := h.dir.members(st.id).all(ctx)
		if err != nil {
			return nil, err
		}
		out[h.rt.setAttr] = valueList(ids)
	}
	out["meta"] = map[string]any{
		"resourceType": h.rt.name,
		"created":      st.rec.Created.Format(time.RFC3339),
		"lastModified": st.rec.Modified.Format(time.RFC3339),
		"version":      st.etag(),
		"location":     h.location(ctx, st.id),
	}
	return out, nil
}

func (h handler) location(ctx context.Context, id string) string {
	return callFrom(ctx).base + "/" + h.rt.endpoint + "/" + url.PathEscape(id)
}

func valueList(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = map[string]any{"value": id}
	}
	return out
}

// answer renders st projected as the request's attributes and
// excludedAttributes ask.
func (h handler) answer(ctx context.Context, r *http.Request, status int, st stored) (int, any, error) {
	q := r.URL.Query()
	p := projectionOf(q)
	doc, err := h.render(ctx, st, p.wants(h.rt.setAttr))
	if err != nil {
		return 0, nil, err
	}
	return status, rendered{attrs: p.apply(doc), etag: st.etag(), location: h.location(ctx, st.id)}, nil
}

func (h handler) read(ctx context.Context, r *http.Request, id string) (int, any, error) {
	st, ok, err := h.dir.get(ctx, h.rt.kind, id)
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		return 0, nil, notFound(h.rt.name, id)
	}
	return h.answer(ctx, r, http.StatusOK, st)
}

func (h handler) list(ctx context.Context, q url.Values) (int, any, error) {
	startIndex, err := intParam(q, "startIndex", 1)
	if err != nil {
		return 0, nil, err
	}
	count, err := intParam(q, "count", maxCount)
	if err != nil {
		return 0, nil, err
	}
	startIndex, count = max(startIndex, 1), min(max(count, 0), maxCount)
	p := projectionOf(q)
	var match *scimfilter.Validator
	if f := strings.TrimSpace(q.Get("filter")); f != "" {
		s := h.rt.schema
		s.Attributes = append(slices.Clone(s.Attributes), schema.CommonAttributes()...)
		v, err := scimfilter.NewValidator(f, s, h.rt.extensions...)
		if err == nil {
			err = v.Validate()
		}
		if err != nil {
			return 0, nil, &scimError{status: http.StatusBadRequest, scimType: scimerrors.ScimTypeInvalidFilter, detail: "filter " + strconv.Quote(f) + ": " + err.Error()}
		}
		v = scimfilter.NewFilterValidator(h.rt.asValuePaths(v.GetFilter()), s, h.rt.extensions...)
		match = &v
	}
	ids, err := h.candidates(ctx, match)
	if err != nil {
		return 0, nil, err
	}
	total := len(ids)
	if match == nil {
		// Unfiltered, only the page is read.
		from := min(startIndex-1, len(ids))
		ids = ids[from:min(from+count, len(ids))]
	}
	all, err := h.dir.records(ctx, h.rt.kind, ids)
	if err != nil {
		return 0, nil, err
	}
	// A group's members are read only when answered or filtered on.
	withSet := p.wants(h.rt.setAttr) || (match != nil && h.rt.setAttr != "" && strings.Contains(strings.ToLower(q.Get("filter")), h.rt.setAttr))
	var page []map[string]any
	if match != nil {
		total = 0
	}
	for _, st := range all {
		doc, err := h.render(ctx, st, withSet)
		if err != nil {
			return 0, nil, err
		}
		if match != nil {
			if match.PassesFilter(doc) != nil {
				continue
			}
			total++
			if total < startIndex || len(page) >= count {
				continue
			}
		}
		page = append(page, p.apply(doc))
	}
	return http.StatusOK, listResponse(page, total, startIndex), nil
}

// asValuePaths rewrites a filter on a sub-attribute of a multi-valued
// attribute (emails.value eq "…", members.value eq "…", what IdPs send)
// into the value path it is equivalent to (emails[value eq "…"], RFC 7644
// section 3.4.2.2): the filter package matches only the latter.
func (rt *resourceType) asValuePaths(e filter.Expression) filter.Expression {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		return &filter.LogicalExpression{Left: rt.asValuePaths(e.Left), Right: rt.asValuePaths(e.Right), Operator: e.Operator}
	case *filter.NotExpression:
		return &filter.NotExpression{Expression: rt.asValuePaths(e.Expression)}
	case *filter.AttributeExpression:
		attr, _, ok := rt.attribute(e.AttributePath.URI(), e.AttributePath.AttributeName)
		if !ok || !attr.MultiValued() || e.AttributePath.SubAttribute == nil {
			return e
		}
		path := e.AttributePath
		inner := *e
		inner.AttributePath = filter.AttributePath{AttributeName: *path.SubAttribute}
		path.SubAttribute = nil
		return &filter.ValuePath{AttributePath: path, ValueFilter: &inner}
	}
	return e
}

// candidates are the ids a filter can match, from the id set: for the
// lookups IdPs make before every create (userName eq, displayName eq, id
// eq) the one id, if listed; otherwise the whole directory, which the
// filter then narrows.
func (h handler) candidates(ctx context.Context, match *scimfilter.Validator) ([]string, error) {
	if match != nil {
		if eq, ok := match.GetFilter().(*filter.AttributeExpression); ok && eq.Operator == filter.EQ && eq.AttributePath.SubAttribute == nil {
			value, isString := eq.CompareValue.(string)
			id := ""
			switch name := eq.AttributePath.AttributeName; {
			case isString && strings.EqualFold(name, h.rt.nameAttr):
				var err error
				if id, err = h.dir.lookupName(ctx, h.rt.kind, value); err != nil {
					return nil, err
				}
			case isString && strings.EqualFold(name, "id"):
				id = value
			default:
				return h.dir.ids(h.rt.kind).all(ctx)
			}
			if id == "" {
				return nil, nil
			}
			if listed, err := h.dir.ids(h.rt.kind).has(ctx, id); err != nil || !listed {
				return nil, err
			}
			return []string{id}, nil
		}
	}
	return h.dir.ids(h.rt.kind).all(ctx)
}

func intParam(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, invalidValue(name + " must be an integer")
	}
	return n, nil
}

// validate checks a full resource (a POST or PUT body, or a patched
// resource) against the schema and returns its attributes, canonical,
// and the ids of its set attribute (a group's members).
func (h handler) validate(body map[string]any) (map[string]any, []string, error) {
	attrs, serr := h.rt.schema.Validate(body)
	if serr != nil {
		return nil, nil, &scimError{status: serr.Status, scimType: serr.ScimType, detail: serr.Detail}
	}
	for _, ext := range h.rt.extensions {
		for k, v := range body {
			if !strings.EqualFold(k, ext.ID) || v == nil {
				continue
			}
			extAttrs, serr := ext.ValidateExtension(v)
			if serr != nil {
				return nil, nil, &scimError{status: serr.Status, scimType: serr.ScimType, detail: serr.Detail}
			}
			if len(extAttrs) > 0 {
				attrs[ext.ID] = extAttrs
			}
		}
	}
	// onboard sets no passwords: it is never stored, nor read back.
	delete(attrs, "password")
	name, _ := attrs[h.rt.nameAttr].(string)
	if strings.TrimSpace(name) == "" {
		return nil, nil, invalidValue(h.rt.nameAttr + " is required")
	}
	var set []string
	if h.rt.setAttr != "" {
		for _, v := range asList(attrs[h.rt.setAttr]) {
			m, _ := v.(map[string]any)
			id, _ := m["value"].(string)
			if id == "" {
				return nil, nil, invalidValue(h.rt.setAttr + " values need a value (the member's id)")
			}
			if !slices.Contains(set, id) {
				set = append(set, id)
			}
		}
		delete(attrs, h.rt.setAttr)
		slices.Sort(set)
	}
	return attrs, set, nil
}

func fingerprint(attrs map[string]any, set []string) string {
	data, _ := json.Marshal([]any{attrs, set})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (h handler) create(ctx context.Context, r *http.Request, body map[string]any) (int, any, error) {
	attrs, set, err := h.validate(body)
	if err != nil {
		return 0, nil, err
	}
	if err := h.check(ctx, attrs, set); err != nil {
		return 0, nil, err
	}
	fp := fingerprint(attrs, set)
	name := attrs[h.rt.nameAttr].(string)
	holder, err := h.dir.claimName(ctx, h.rt.kind, name, newID(), fp)
	if err != nil {
		return 0, nil, err
	}
	if holder.Fingerprint != fp {
		return 0, nil, &scimError{status: http.StatusConflict, scimType: scimerrors.ScimTypeUniqueness,
			detail: h.rt.nameAttr + " " + strconv.Quote(name) + " is already taken"}
	}
	// The same POST again (a retry after a timeout or a 5xx) resumes what
	// the first one began, under the id it claimed: never a second user.
	// The record is written before the id is listed: only then does the
	// resource exist (see directory).
	id := holder.ID
	st, written, err := h.dir.readRecord(ctx, h.rt.kind, id)
	if err != nil {
		return 0, nil, err
	}
	if !written {
		now := h.dir.now().UTC()
		st.rec = record{Attributes: attrs, Created: now, Modified: now}
		st, err = h.dir.put(ctx, st)
		if errors.Is(err, state.ErrConflict) {
			st, _, err = h.dir.readRecord(ctx, h.rt.kind, id) // a concurrent retry wrote it
		}
		if err != nil {
			return 0, nil, asStoreError(err)
		}
	}
	if err := h.dir.ids(h.rt.kind).change(ctx, id, true); err != nil {
		return 0, nil, err
	}
	st, err = h.afterWrite(ctx, st, set, nil, "")
	if err != nil {
		return 0, nil, err
	}
	return h.answer(ctx, r, http.StatusCreated, st)
}

func (h handler) replace(ctx context.Context, r *http.Request, id string, body map[string]any) (int, any, error) {
	attrs, set, err := h.validate(body)
	if err != nil {
		return 0, nil, err
	}
	return h.update(ctx, r, id, func(stored, []string) (map[string]any, []string, error) { return attrs, set, nil })
}

func (h handler) patch(ctx context.Context, r *http.Request, id string, body map[string]any) (int, any, error) {
	return h.update(ctx, r, id, func(cur stored, curSet []string) (map[string]any, []string, error) {
		doc := cloneJSON(cur.rec.Attributes)
		if h.rt.setAttr != "" {
			doc[h.rt.setAttr] = valueList(curSet)
		}
		p := &patcher{rt: h.rt, id: id, doc: doc}
		if err := p.applyAll(body); err != nil {
			return nil, nil, err
		}
		for _, ext := range h.rt.extensions {
			if m, ok := doc[ext.ID].(map[string]any); ok && len(m) == 0 {
				delete(doc, ext.ID)
			}
		}
		doc["schemas"] = anyList(h.rt.schemaIDs())
		return h.validate(doc)
	})
}

// update is PUT and PATCH: change computes the new attributes from the
// current resource, again if a concurrent writer got there first.
func (h handler) update(ctx context.Context, r *http.Request, id string, change func(stored, []string) (map[string]any, []string, error)) (int, any, error) {
	for range casAttempts {
		cur, err := h.current(ctx, r, id)
		if err != nil {
			return 0, nil, err
		}
		var curSet []string
		if h.rt.setAttr != "" {
			if curSet, err = h.dir.members(id).all(ctx); err != nil {
				return 0, nil, err
			}
		}
		attrs, set, err := change(cur, curSet)
		if err != nil {
			return 0, nil, err
		}
		if err := h.check(ctx, attrs, set); err != nil {
			return 0, nil, err
		}
		oldName, newName := cur.str(h.rt.nameAttr), attrs[h.rt.nameAttr].(string)
		renamed := !strings.EqualFold(oldName, newName)
		if renamed {
			holder, err := h.dir.claimName(ctx, h.rt.kind, newName, id, "")
			if err != nil {
				return 0, nil, err
			}
			if holder.ID != id {
				return 0, nil, &scimError{status: http.StatusConflict, scimType: scimerrors.ScimTypeUniqueness,
					detail: h.rt.nameAttr + " " + strconv.Quote(newName) + " is already taken"}
			}
		}
		next := cur
		if !jsonEqual(cur.rec.Attributes, attrs) {
			next.rec.Attributes, next.rec.Modified = attrs, h.dir.now().UTC()
			next, err = h.dir.put(ctx, next)
			if errors.Is(err, state.ErrConflict) {
				continue
			}
			if err != nil {
				return 0, nil, asStoreError(err)
			}
		}
		var renamedTo string
		if renamed {
			if err := h.dir.releaseName(ctx, h.rt.kind, oldName, id); err != nil {
				return 0, nil, err
			}
			renamedTo = newName
		}
		next, err = h.afterWrite(ctx, next, set, curSet, renamedTo)
		if err != nil {
			return 0, nil, err
		}
		return h.answer(ctx, r, http.StatusOK, next)
	}
	return 0, nil, errStore(errors.New("the resource is too contended"))
}

// current reads the resource a write changes, at the version If-Match
// names when it names one.
func (h handler) current(ctx context.Context, r *http.Request, id string) (stored, error) {
	cur, ok, err := h.dir.get(ctx, h.rt.kind, id)
	if err != nil {
		return cur, err
	}
	if !ok {
		return cur, notFound(h.rt.name, id)
	}
	return cur, ifMatch(r, cur)
}

func (h handler) delete(ctx context.Context, r *http.Request, id string) (int, any, error) {
	cur, err := h.current(ctx, r, id)
	if err != nil {
		return 0, nil, err
	}
	// What the resource's deletion means is done first, so that a
	// failure (a target down, the breaker open) keeps the resource for
	// the IdP's retry.
	if h.rt.isUser() {
		if err := h.s.reconcile(ctx, h.dir, cur, true); err != nil {
			return 0, nil, err
		}
		for _, g := range cur.rec.Groups {
			if err := h.dir.members(g).change(ctx, id, false); err != nil {
				return 0, nil, err
			}
		}
	} else {
		members, err := h.dir.members(id).all(ctx)
		if err != nil {
			return 0, nil, err
		}
		if _, err := h.afterWrite(ctx, cur, nil, members, cur.str(h.rt.nameAttr)); err != nil {
			return 0, nil, err
		}
	}
	// Unlisted, the resource is gone for every read (see directory); a
	// stop before its name is released holds the name no longer than
	// staleClaim, and a record left behind is read by no one.
	if err := h.dir.ids(h.rt.kind).change(ctx, id, false); err != nil {
		return 0, nil, err
	}
	if err := h.dir.releaseName(ctx, h.rt.kind, cur.str(h.rt.nameAttr), id); err != nil {
		return 0, nil, err
	}
	if err := h.dir.remove(ctx, cur); err != nil && !errors.Is(err, state.ErrConflict) {
		return 0, nil, asStoreError(err)
	}
	return http.StatusNoContent, nil, nil
}

// check refuses, before anything is written, what could never be
// provisioned or stored: a user whose email or names onboard would
// refuse, a group member that is no user.
func (h handler) check(ctx context.Context, attrs map[string]any, set []string) error {
	if h.rt.isUser() {
		if _, err := userRequest(attrs, ""); err != nil && isActive(attrs) {
			return err
		}
		return nil
	}
	users, err := h.dir.getAll(ctx, kindUser, set)
	if err != nil {
		return err
	}
	if len(users) != len(set) {
		return invalidValue("members: every member must be a user of this directory (by its id)")
	}
	return nil
}

// afterWrite makes a written resource take effect: a user is provisioned
// (or deprovisioned) as it now is; a group's membership changes are
// written into its members' records, and every member whose groups
// changed (all of them when the group was renamed or deleted) is
// provisioned anew. It returns the resource as it ends.
func (h handler) afterWrite(ctx context.Context, st stored, set, before []string, renamedTo string) (stored, error) {
	if h.rt.isUser() {
		return st, h.s.reconcile(ctx, h.dir, st, false)
	}
	added, removed := diff(before, set), diff(set, before)
	// The member set is kept a superset of what the users' records say:
	// added to before a user's record, removed from after.
	for _, u := range added {
		if err := h.dir.members(st.id).change(ctx, u, true); err != nil {
			return st, err
		}
	}
	affected := slices.Concat(added, removed)
	if renamedTo != "" {
		affected = slices.Concat(set, removed)
	}
	for _, u := range affected {
		if err := h.s.setMembership(ctx, h.dir, u, st.id, slices.Contains(set, u)); err != nil {
			return st, err
		}
	}
	for _, u := range removed {
		if err := h.dir.members(st.id).change(ctx, u, false); err != nil {
			return st, err
		}
	}
	return st, nil
}

// diff lists what is in b and not in a.
func diff(a, b []string) []string {
	var out []string
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}

// ifMatch honours If-Match: the write proceeds only on the version the
// IdP last read (RFC 7644 section 3.14).
func ifMatch(r *http.Request, cur stored) error {
	want := r.Header.Get("If-Match")
	if want == "" {
		return nil
	}
	for _, tag := range strings.Split(want, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == strings.TrimPrefix(cur.etag(), "W/") {
			return nil
		}
	}
	return &scimError{status: http.StatusPreconditionFailed, detail: "the resource changed since it was read: it is now at version " + cur.etag()}
}

func asStoreError(err error) error {
	var se *scimError
	if errors.As(err, &se) {
		return err
	}
	return errStore(err)
}

func isActive(attrs map[string]any) bool {
	active, set := attrs["active"].(bool)
	return active || !set
}

func cloneJSON(m map[string]any) map[string]any {
	data, _ := json.Marshal(m)
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	return out
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
