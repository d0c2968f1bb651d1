package sheetstest

import (
	"errors"
	"strings"
)

// fieldMask is a parsed `fields` parameter (Google's partial responses):
// "spreadsheetId,sheets.properties(sheetId,title)" or the same with "/"
// for ".". A nil mask keeps everything below it.
type fieldMask map[string]fieldMask

func parseFields(s string) (fieldMask, error) {
	p := &maskParser{s: strings.ReplaceAll(s, " ", "")}
	m, err := p.list()
	if err == nil && p.i < len(p.s) {
		err = errors.New("unexpected " + p.s[p.i:])
	}
	return m, err
}

type maskParser struct {
	s string
	i int
}

// list reads item (',' item)*.
func (p *maskParser) list() (fieldMask, error) {
	m := fieldMask{}
	for {
		if err := p.item(m); err != nil {
			return nil, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ',' {
			return m, nil
		}
		p.i++
	}
}

// item reads name ('/' | '.' name)* ['(' list ')'] into m.
func (p *maskParser) item(m fieldMask) error {
	var path []string
	for {
		start := p.i
		for p.i < len(p.s) && strings.IndexByte("/.,()", p.s[p.i]) < 0 {
			p.i++
		}
		if p.i == start {
			return errors.New("empty field name")
		}
		path = append(path, p.s[start:p.i])
		if p.i >= len(p.s) || (p.s[p.i] != '/' && p.s[p.i] != '.') {
			break
		}
		p.i++
	}
	var sub fieldMask
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		var err error
		if sub, err = p.list(); err != nil {
			return err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return errors.New("unclosed (")
		}
		p.i++
	}
	for i, name := range path {
		if i == len(path)-1 {
			m.add(name, sub)
			break
		}
		if next, ok := m[name]; ok && next == nil {
			break // already selected whole
		}
		if m[name] == nil {
			m[name] = fieldMask{}
		}
		m = m[name]
	}
	return nil
}

// add selects name with sub below it, merging with what is selected.
func (m fieldMask) add(name string, sub fieldMask) {
	prev, ok := m[name]
	switch {
	case !ok:
		m[name] = sub
	case prev == nil || sub == nil:
		m[name] = nil
	default:
		for k, v := range sub {
			prev.add(k, v)
		}
	}
}

// apply keeps the selected parts of a decoded JSON value; a list is cut
// element by element.
func (m fieldMask) apply(v any) any {
	if m == nil {
		return v
	}
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = m.apply(e)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for name, sub := range m {
			if name == "*" {
				for k, e := range v {
					out[k] = sub.apply(e)
				}
				continue
			}
			if e, ok := v[name]; ok {
				out[name] = sub.apply(e)
			}
		}
		return out
	}
	return v
}
