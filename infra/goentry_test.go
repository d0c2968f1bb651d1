package infra

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const functionsImport = "github.com/GoogleCloudPlatform/functions-framework-go/functions"

// registeredFunctions reads the non-test Go files of the given directories
// (relative to the repository root) and returns each function name registered
// with functions-framework-go, mapped to how: "HTTP", "CloudEvent" or
// "Typed". Names may be string literals or package-level string constants.
func registeredFunctions(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	for _, d := range dirs {
		paths, err := filepath.Glob(filepath.Join(repoRoot, d, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatalf("parsing %s: %v", p, err)
			}
			files = append(files, f)
		}
	}

	consts := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if v, err := strconv.Unquote(lit.Value); err == nil {
								consts[n.Name] = v
							}
						}
					}
				}
			}
		}
	}

	out := map[string]string{}
	for _, f := range files {
		alias := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == functionsImport {
				alias = "functions"
				if imp.Name != nil {
					alias = imp.Name.Name
				}
			}
		}
		if alias == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok || pkg.Name != alias {
				return true
			}
			kind := sel.Sel.Name
			if kind != "HTTP" && kind != "CloudEvent" && kind != "Typed" {
				return true
			}
			switch a := call.Args[0].(type) {
			case *ast.BasicLit:
				if v, err := strconv.Unquote(a.Value); err == nil {
					out[v] = kind
				}
			case *ast.Ident:
				if v, ok := consts[a.Name]; ok {
					out[v] = kind
				}
			}
			return true
		})
	}
	return out
}
