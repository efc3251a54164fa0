package lab

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoScenarioNameTests fails when a non-test file of package lab, other
// than the declarations in scenarios.go, chooses behaviour by a scenario's
// name: compares, switches on, prefix-tests or keys a map by a scenario
// name (a string literal, or one of scenarios.go's name constants) or by a
// Scenario field. Behaviour belongs on the Scenario value.
func TestNoScenarioNameTests(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	consts := scenarioNameConsts(t, fset)
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "scenarios.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, hit := range scenarioNameTests(fset, f, consts) {
			t.Errorf("behaviour chosen by scenario name at %s: put it on the Scenario declaration", hit)
		}
		checked++
	}
	if checked < 20 {
		t.Errorf("checked %d files; the glob missed package lab", checked)
	}
}

// TestScenarioNameTestsFinds: the checker finds each way lab used to test
// scenario names (before scenarios became values), and passes the ways
// that ask the value.
func TestScenarioNameTestsFinds(t *testing.T) {
	consts := map[string]bool{"ScenarioHideALPN": true, "PlayResolverDown": true}
	bad := []string{
		`if c.Scenario == "stale-retry" { return }`,
		`if c.Scenario != "esni" { return }`,
		`if c.Scenario == ScenarioHideALPN { return }`,
		`if "grease" == name { return }`,
		`_ = strings.HasPrefix(r.Scenario, "padding-")`,
		`switch c.Scenario { case "baseline": }`,
		`switch name { case PlayResolverDown: }`,
		`_ = map[string]string{"ech-split": "split"}`,
		`_ = Case{Scenario: "stale-retry", Transport: DNSDoH}`,
		`_ = slices.Contains([]string{"x"}, c.Scenario)`,
	}
	good := []string{
		`if c.scenario().Client.HideALPN { return }`,
		`if s.Name == name { return }`,
		`_ = scenarioLabel(c) + "/" + c.Scenario`,
		`_ = fmt.Errorf("lab: %s", ScenarioHideALPN)`,
		`_ = map[string]string{"shared": "x"}`,
	}
	for i, src := range append(bad, good...) {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "x.go", "package lab\nfunc f() {\n"+src+"\n}\n", 0)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		hits := scenarioNameTests(fset, f, consts)
		if want := i < len(bad); (len(hits) > 0) != want {
			t.Errorf("%s: hits %v, want found=%v", src, hits, want)
		}
	}
}

// scenarioNameConsts are the constants scenarios.go declares with a
// scenario's name as value.
func scenarioNameConsts(t *testing.T, fset *token.FileSet) map[string]bool {
	f, err := parser.ParseFile(fset, "scenarios.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, id := range vs.Names {
				if i < len(vs.Values) && isScenarioLit(vs.Values[i]) {
					out[id.Name] = true
				}
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("scenarios.go declares no scenario name constant")
	}
	return out
}

// isScenarioLit reports whether e is a string literal naming a scenario,
// or the prefix of some ("padding-").
func isScenarioLit(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return false
	}
	v, err := strconv.Unquote(lit.Value)
	if err != nil || v == "" {
		return false
	}
	for _, s := range Scenarios {
		if s.Name == v || strings.HasSuffix(v, "-") && strings.HasPrefix(s.Name, v) {
			return true
		}
	}
	return false
}

// scenarioNameTests lists where f chooses behaviour by scenario name.
func scenarioNameTests(fset *token.FileSet, f *ast.File, consts map[string]bool) []string {
	name := func(e ast.Expr) bool { // a scenario name: literal or constant
		id, ok := e.(*ast.Ident)
		return isScenarioLit(e) || ok && consts[id.Name]
	}
	named := func(e ast.Expr) bool { // a name, or a value that holds one
		sel, ok := e.(*ast.SelectorExpr)
		return name(e) || ok && sel.Sel.Name == "Scenario"
	}
	var hits []string
	hit := func(n ast.Node, what string) {
		hits = append(hits, fmt.Sprintf("%s (%s)", fset.Position(n.Pos()), what))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && (named(n.X) || named(n.Y)) {
				hit(n, "comparison")
			}
		case *ast.SwitchStmt:
			if n.Tag != nil && named(n.Tag) {
				hit(n, "switch on a scenario")
			}
		case *ast.CaseClause:
			for _, e := range n.List {
				if name(e) {
					hit(e, "case of a scenario name")
				}
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && (pkg.Name == "strings" || pkg.Name == "slices") {
					for _, a := range n.Args {
						if named(a) {
							hit(n, pkg.Name+"."+sel.Sel.Name)
						}
					}
				}
			}
		case *ast.KeyValueExpr:
			if name(n.Key) {
				hit(n, "keyed by a scenario name")
			}
			if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Scenario" && name(n.Value) {
				hit(n, "a Case of a named scenario")
			}
		}
		return true
	})
	return hits
}
