package scim

import (
	"net/url"
	"slices"
	"strings"
)

// projection is a request's attributes or excludedAttributes (RFC 7644
// section 3.4.2.5): names of top-level attributes ("emails"),
// sub-attributes ("name.givenName") or extension attributes with their
// URN, compared case-insensitively.
type projection struct {
	only, excluded []string
}

func projectionOf(q url.Values) projection {
	split := func(v string) []string {
		var out []string
		for _, a := range strings.Split(v, ",") {
			if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
				out = append(out, a)
			}
		}
		return out
	}
	return projection{only: split(q.Get("attributes")), excluded: split(q.Get("excludedAttributes"))}
}

// wants says whether the answer may include the top-level attribute name.
func (p projection) wants(name string) bool {
	if name == "" {
		return false
	}
	name = strings.ToLower(name)
	for _, e := range p.excluded {
		if e == name {
			return false
		}
	}
	if len(p.only) == 0 {
		return true
	}
	for _, o := range p.only {
		if o == name || strings.HasPrefix(o, name+".") {
			return true
		}
	}
	return false
}

// apply projects a rendered resource; id and schemas are always returned.
func (p projection) apply(doc map[string]any) map[string]any {
	if len(p.only) == 0 && len(p.excluded) == 0 {
		return doc
	}
	out := map[string]any{}
	for k, v := range doc {
		lk := strings.ToLower(k)
		if lk == "id" || lk == "schemas" {
			out[k] = v
			continue
		}
		if ext, ok := v.(map[string]any); ok && strings.HasPrefix(lk, "urn:") {
			// An extension's attributes are named with its URN as prefix;
			// the URN alone names them all.
			sub := projection{only: under(p.only, lk), excluded: under(p.excluded, lk)}
			switch {
			case slices.Contains(p.excluded, lk), len(p.only) > 0 && len(sub.only) == 0 && !slices.Contains(p.only, lk):
			case slices.Contains(p.only, lk):
				out[k] = v
			default:
				if kept := sub.keepAll(ext); len(kept) > 0 {
					out[k] = kept
				}
			}
			continue
		}
		if kept, ok := p.keepOne(lk, v); ok {
			out[k] = kept
		}
	}
	return out
}

// keepOne projects one top-level attribute: whole, or only the named
// sub-attributes of a complex one.
func (p projection) keepOne(name string, v any) (any, bool) {
	for _, e := range p.excluded {
		if e == name {
			return nil, false
		}
	}
	if len(p.only) == 0 {
		return v, true
	}
	var subs []string
	for _, o := range p.only {
		if o == name {
			return v, true
		}
		if sub, ok := strings.CutPrefix(o, name+"."); ok {
			subs = append(subs, sub)
		}
	}
	m, complex := v.(map[string]any)
	if len(subs) == 0 || !complex {
		return nil, len(subs) > 0
	}
	kept := map[string]any{}
	for k, sv := range m {
		for _, s := range subs {
			if strings.EqualFold(k, s) {
				kept[k] = sv
			}
		}
	}
	return kept, true
}

// keepAll projects every attribute of attrs.
func (p projection) keepAll(attrs map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range attrs {
		if kept, ok := p.keepOne(strings.ToLower(k), v); ok {
			out[k] = kept
		}
	}
	return out
}

// under lists the names given with urn as prefix, without it.
func under(names []string, urn string) []string {
	var out []string
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, urn+":"); ok {
			out = append(out, rest)
		}
	}
	return out
}
