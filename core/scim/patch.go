package scim

import (
	"maps"
	"reflect"
	"strconv"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

func invalidPath(detail string) *scimError {
	return &scimError{status: 400, scimType: scimerrors.ScimTypeInvalidPath, detail: detail}
}

func noTarget(detail string) *scimError {
	return &scimError{status: 400, scimType: scimerrors.ScimTypeNoTarget, detail: detail}
}

func mutability(detail string) *scimError {
	return &scimError{status: 400, scimType: scimerrors.ScimTypeMutability, detail: detail}
}

// patcher applies PATCH operations (RFC 7644 section 3.5.2) to a
// resource's attributes, in both dialects IdPs speak: Okta's (a value
// object without a path) and Entra's (capitalised ops, value-filter paths,
// booleans as "True"/"False" strings).
type patcher struct {
	rt  *resourceType
	id  string
	doc map[string]any
}

// applyAll applies a PatchOp body's operations in order.
func (p *patcher) applyAll(body map[string]any) error {
	var ops []any
	for k, v := range body {
		if strings.EqualFold(k, "Operations") {
			ops, _ = v.([]any)
		}
	}
	if len(ops) == 0 {
		return invalidValue("a PATCH body holds Operations: a list of at least one operation")
	}
	for i, raw := range ops {
		op, _ := raw.(map[string]any)
		var name, path string
		var value any
		for k, v := range op {
			switch strings.ToLower(k) {
			case "op":
				name, _ = v.(string)
			case "path":
				path, _ = v.(string)
			case "value":
				value = v
			}
		}
		name = strings.ToLower(name)
		if name != "add" && name != "remove" && name != "replace" {
			return invalidValue("Operations[" + strconv.Itoa(i) + "].op must be add, remove or replace")
		}
		if err := p.apply(name, path, value); err != nil {
			return err
		}
	}
	return nil
}

func (p *patcher) apply(op, path string, value any) error {
	if path == "" {
		if op == "remove" {
			return noTarget("a remove operation needs a path")
		}
		values, ok := value.(map[string]any)
		if !ok {
			return invalidValue("an operation without a path needs an object as its value")
		}
		for k, v := range values {
			switch {
			case strings.EqualFold(k, "schemas"), strings.EqualFold(k, "meta"):
			case strings.EqualFold(k, "id"):
				// Okta sends the id along; it may repeat it, never change it.
				if v != p.id {
					return mutability("id cannot be changed")
				}
			default:
				if ext, isExt := p.rt.extension(k); isExt {
					sub, ok := v.(map[string]any)
					if !ok {
						return invalidValue(k + " must be an object")
					}
					for sk, sv := range sub {
						if err := p.apply(op, ext.ID+":"+sk, sv); err != nil {
							return err
						}
					}
					continue
				}
				if err := p.apply(op, k, v); err != nil {
					return err
				}
			}
		}
		return nil
	}
	parsed, err := filter.ParsePath([]byte(path))
	if err != nil {
		return invalidPath("path " + strconv.Quote(path) + " is not a SCIM attribute path")
	}
	ap := parsed.AttributePath
	attr, key, ok := p.rt.attribute(ap.URI(), ap.AttributeName)
	if !ok {
		if isReadOnly(ap.AttributeName) {
			return mutability(ap.AttributeName + " is read-only")
		}
		return invalidPath("no attribute " + strconv.Quote(ap.AttributeName) + " in a " + p.rt.name)
	}
	if attr.Mutability() == "readOnly" {
		return mutability(attr.Name() + " is read-only")
	}
	target := p.doc
	if key != attr.Name() {
		ext, _ := target[key].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
			target[key] = ext
		}
		target = ext
	}
	subName := parsed.SubAttributeName()
	if subName == "" {
		subName = ap.SubAttributeName()
	}
	var sub *schema.CoreAttribute
	if subName != "" {
		s, found := attr.SubAttributes().ContainsAttribute(subName)
		if !found {
			return invalidPath("no sub-attribute " + strconv.Quote(subName) + " in " + attr.Name())
		}
		sub = &s
	}
	if parsed.ValueExpression != nil {
		return p.applyFiltered(op, target, attr, parsed.ValueExpression, sub, value)
	}
	name := attr.Name()
	switch {
	case sub != nil && attr.MultiValued():
		return invalidPath("select the values of " + name + " with a filter, as in " + name + `[type eq "work"].` + sub.Name())
	case sub != nil:
		m, _ := target[name].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		if op == "remove" {
			delete(m, sub.Name())
		} else {
			m[sub.Name()] = canonical(*sub, value)
		}
		target[name] = m
	case op == "remove":
		delete(target, name)
	case attr.MultiValued():
		values := asList(canonical(attr, value))
		if op == "add" {
			values = addDistinct(asList(target[name]), values)
		}
		target[name] = values
	case attr.HasSubAttributes():
		m, _ := target[name].(map[string]any)
		v, ok := canonical(attr, value).(map[string]any)
		if !ok {
			return invalidValue(name + " must be an object")
		}
		// Merged, as IdPs send only the sub-attributes that changed.
		merged := maps.Clone(m)
		if merged == nil {
			merged = map[string]any{}
		}
		maps.Copy(merged, v)
		target[name] = merged
	default:
		target[name] = canonical(attr, value)
	}
	return nil
}

// applyFiltered applies an operation to the values of a multi-valued
// attribute that match a value filter (emails[type eq "work"].value,
// members[value eq "…"]).
func (p *patcher) applyFiltered(op string, target map[string]any, attr schema.CoreAttribute, expr filter.Expression, sub *schema.CoreAttribute, value any) error {
	if !attr.MultiValued() || !attr.HasSubAttributes() {
		return invalidPath(attr.Name() + " takes no value filter")
	}
	match := scimfilter.NewFilterValidator(expr, schema.Schema{ID: p.rt.schema.ID, Attributes: attr.SubAttributes()})
	if err := match.Validate(); err != nil {
		return invalidPath("the value filter does not fit " + attr.Name() + ": " + err.Error())
	}
	var kept []any
	matched := 0
	for _, v := range asList(target[attr.Name()]) {
		el, _ := v.(map[string]any)
		if el == nil || match.PassesFilter(el) != nil {
			kept = append(kept, v)
			continue
		}
		matched++
		switch {
		case op == "remove" && sub == nil:
			continue
		case op == "remove":
			delete(el, sub.Name())
		case sub != nil:
			el[sub.Name()] = canonical(*sub, value)
		default:
			update, ok := canonical(attr, value).(map[string]any)
			if !ok {
				return invalidValue(attr.Name() + " values are objects")
			}
			maps.Copy(el, update)
		}
		kept = append(kept, el)
	}
	if matched == 0 && op != "remove" {
		// Entra replaces emails[type eq "work"].value on a user who has no
		// work email yet: an equality filter says what the new value is.
		eq, ok := expr.(*filter.AttributeExpression)
		if !ok || eq.Operator != filter.EQ || sub == nil {
			return noTarget("no value of " + attr.Name() + " matches the filter")
		}
		key, found := attr.SubAttributes().ContainsAttribute(eq.AttributePath.AttributeName)
		if !found {
			return noTarget("no value of " + attr.Name() + " matches the filter")
		}
		kept = append(kept, map[string]any{key.Name(): eq.CompareValue, sub.Name(): canonical(*sub, value)})
	}
	target[attr.Name()] = kept
	return nil
}

// canonical gives a value its attribute's canonical (sub-)attribute names
// and turns the strings "True"/"False" into booleans where the schema
// says boolean: Entra sends them so. What is still of the wrong type is
// refused by the schema validation that follows.
func canonical(attr schema.CoreAttribute, v any) any {
	switch v := v.(type) {
	case []any:
		if !attr.MultiValued() {
			return v
		}
		out := make([]any, len(v))
		for i, el := range v {
			out[i] = canonicalOne(attr, el)
		}
		return out
	default:
		return canonicalOne(attr, v)
	}
}

func canonicalOne(attr schema.CoreAttribute, v any) any {
	switch v := v.(type) {
	case string:
		if attr.AttributeType() == "boolean" {
			if b, err := strconv.ParseBool(strings.ToLower(v)); err == nil {
				return b
			}
		}
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, sv := range v {
			if sub, ok := attr.SubAttributes().ContainsAttribute(k); ok {
				out[sub.Name()] = canonicalOne(sub, sv)
				continue
			}
			out[k] = sv
		}
		return out
	}
	return v
}

func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// addDistinct appends the values not already there: a value with the same
// "value" sub-attribute (a member's id, an address) is the same value.
func addDistinct(have, add []any) []any {
	out := append([]any(nil), have...)
	for _, a := range add {
		dup := false
		for _, h := range out {
			dup = dup || sameValue(h, a)
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

func sameValue(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok && am["value"] != nil {
		return am["value"] == bm["value"]
	}
	return reflect.DeepEqual(a, b)
}

// isReadOnly names the common attributes the server alone sets.
func isReadOnly(name string) bool {
	for _, n := range []string{"id", "meta", "groups"} {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}
