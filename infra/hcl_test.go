package infra

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// tfModule is a Terraform module parsed with hclsyntax: blocks and
// expressions as written, no provider schemas. Values are static only where
// the source makes them so (literals, and var.* through the defaults).
type tfModule struct {
	resources []*tfBlock
	data      []*tfBlock
	variables map[string]*tfBlock
	outputs   map[string]*tfBlock
	locals    map[string]*tfExpr
	bodies    []*tfBlock // every file's top-level body, for whole-module walks
	ctx       *hcl.EvalContext
}

// tfBlock is a block with the source it came from.
type tfBlock struct {
	Type, Name string // resource/data type and name; variable/output name in Name
	Body       *hclsyntax.Body
	src        []byte
	file       string
}

// tfExpr is an expression with the source it came from.
type tfExpr struct {
	hclsyntax.Expression
	src []byte
}

func (b *tfBlock) addr() string { return b.Type + "." + b.Name }

func (b *tfBlock) String() string { return fmt.Sprintf("%s (%s)", b.addr(), b.file) }

func loadModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	sort.Strings(paths)
	m := &tfModule{variables: map[string]*tfBlock{}, outputs: map[string]*tfBlock{}, locals: map[string]*tfExpr{}}
	parser := hclparse.NewParser()
	for _, p := range paths {
		f, diags := parser.ParseHCLFile(p)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %s", p, diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		name := filepath.Base(p)
		m.bodies = append(m.bodies, &tfBlock{Type: "file", Name: name, Body: body, src: f.Bytes, file: name})
		for _, blk := range body.Blocks {
			b := &tfBlock{Body: blk.Body, src: f.Bytes, file: name}
			switch blk.Type {
			case "resource":
				b.Type, b.Name = blk.Labels[0], blk.Labels[1]
				m.resources = append(m.resources, b)
			case "data":
				b.Type, b.Name = "data."+blk.Labels[0], blk.Labels[1]
				m.data = append(m.data, b)
			case "variable":
				b.Type, b.Name = "var", blk.Labels[0]
				m.variables[b.Name] = b
			case "output":
				b.Type, b.Name = "output", blk.Labels[0]
				m.outputs[b.Name] = b
			case "locals":
				for n, a := range blk.Body.Attributes {
					if _, dup := m.locals[n]; dup {
						t.Fatalf("local.%s is defined twice", n)
					}
					m.locals[n] = &tfExpr{a.Expr, f.Bytes}
				}
			}
		}
	}
	defaults := map[string]cty.Value{}
	for n, v := range m.variables {
		if a := v.Body.Attributes["default"]; a != nil {
			if val, diags := a.Expr.Value(nil); !diags.HasErrors() {
				defaults[n] = val
			}
		}
	}
	m.ctx = &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(defaults)}}
	return m
}

// byType lists the resources of one type.
func (m *tfModule) byType(typ string) []*tfBlock {
	var out []*tfBlock
	for _, r := range m.resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func (m *tfModule) resource(addr string) *tfBlock {
	for _, r := range m.resources {
		if r.addr() == addr {
			return r
		}
	}
	return nil
}

// block returns the first nested block along path, or nil.
func (b *tfBlock) block(path ...string) *hclsyntax.Body {
	body := b.Body
	for _, p := range path {
		var next *hclsyntax.Body
		for _, blk := range body.Blocks {
			if blk.Type == p {
				next = blk.Body
				break
			}
		}
		if next == nil {
			return nil
		}
		body = next
	}
	return body
}

// attr returns the attribute at the end of path (blocks, then the
// attribute's name), or nil.
func (b *tfBlock) attr(path ...string) *tfExpr {
	body := b.block(path[:len(path)-1]...)
	if body == nil {
		return nil
	}
	a := body.Attributes[path[len(path)-1]]
	if a == nil {
		return nil
	}
	return &tfExpr{a.Expr, b.src}
}

// text is the expression's source text.
func (e *tfExpr) text() string {
	r := e.Range()
	return string(e.src[r.Start.Byte:r.End.Byte])
}

// value evaluates e statically: literals, and var.* through the defaults.
func (m *tfModule) value(e *tfExpr) (cty.Value, bool) {
	if e == nil {
		return cty.NilVal, false
	}
	v, diags := e.Value(m.ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return cty.NilVal, false
	}
	return v, true
}

func (m *tfModule) str(e *tfExpr) (string, bool) {
	v, ok := m.value(e)
	if !ok || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

func (m *tfModule) num(e *tfExpr) (int64, bool) {
	v, ok := m.value(e)
	if !ok || v.Type() != cty.Number {
		return 0, false
	}
	n, acc := v.AsBigFloat().Int64()
	return n, acc == 0
}

// refs lists what e refers to: "type.name" for resources, "data.type.name",
// "var.x", "local.x", "each.value"...
func refs(e hclsyntax.Expression) []string {
	var out []string
	for _, tr := range e.Variables() {
		parts := []string{tr.RootName()}
		want := 2
		if tr.RootName() == "data" {
			want = 3
		}
		for _, step := range tr[1:] {
			if len(parts) == want {
				break
			}
			a, ok := step.(hcl.TraverseAttr)
			if !ok {
				break
			}
			parts = append(parts, a.Name)
		}
		out = append(out, strings.Join(parts, "."))
	}
	return out
}

// refersTo reports whether e refers to addr, directly or through one local.
func (m *tfModule) refersTo(e *tfExpr, addr string) bool {
	if e == nil {
		return false
	}
	for _, r := range refs(e.Expression) {
		if r == addr {
			return true
		}
		if l, ok := strings.CutPrefix(r, "local."); ok && m.locals[l] != nil {
			if slices.Contains(refs(m.locals[l].Expression), addr) {
				return true
			}
		}
	}
	return false
}

// resolvedText is e's source, or for a bare local.x reference the local's.
func (m *tfModule) resolvedText(e *tfExpr) string {
	if e == nil {
		return ""
	}
	if st, ok := e.Expression.(*hclsyntax.ScopeTraversalExpr); ok && st.Traversal.RootName() == "local" && len(st.Traversal) == 2 {
		if a, ok := st.Traversal[1].(hcl.TraverseAttr); ok && m.locals[a.Name] != nil {
			return m.locals[a.Name].text()
		}
	}
	return e.text()
}

// stringLiterals lists every literal string inside e (tuples, toset(...),
// object values), in order.
func stringLiterals(e hclsyntax.Node) []string {
	var out []string
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if lit, ok := n.(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type() == cty.String {
			out = append(out, lit.Val.AsString())
		}
		return nil
	})
	return out
}

// objectItems finds the first object constructor in e (also inside a for
// expression) and returns its items by key.
func objectItems(e hclsyntax.Expression, src []byte) map[string]*tfExpr {
	var obj *hclsyntax.ObjectConsExpr
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if o, ok := n.(*hclsyntax.ObjectConsExpr); ok && obj == nil {
			obj = o
		}
		return nil
	})
	if obj == nil {
		return nil
	}
	out := map[string]*tfExpr{}
	for _, it := range obj.Items {
		key := ""
		if k, ok := it.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); ok {
			if st, ok := k.Wrapped.(*hclsyntax.ScopeTraversalExpr); ok && len(st.Traversal) == 1 {
				key = st.Traversal.RootName()
			} else if v, diags := k.Wrapped.Value(nil); !diags.HasErrors() && v.Type() == cty.String {
				key = v.AsString()
			}
		}
		if key != "" {
			out[key] = &tfExpr{it.ValueExpr, src}
		}
	}
	return out
}

// roles are the static role names a binding grants: its role literal, or for
// role = each.value the literals of its for_each.
func (m *tfModule) roles(b *tfBlock) []string {
	role := b.attr("role")
	if role == nil {
		return nil
	}
	if s, ok := m.str(role); ok {
		return []string{s}
	}
	if role.text() == "each.value" || role.text() == "each.key" {
		if fe := b.attr("for_each"); fe != nil {
			return stringLiterals(fe.Expression)
		}
	}
	return nil
}
