// Package trialsd_test holds the tests that keep the code's shape as
// docs/architecture.md draws it: which package may import which, and how
// long a function may grow. They read the source; nothing runs.
package trialsd_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/trialsd/trialsd/"

// layers ranks every package: a package imports only packages of a lower
// rank, so the arrows of docs/architecture.md point one way. A new package
// takes its place here and in docs/architecture.md.
var layers = map[string]int{
	// Leaves: words and tools every layer may use.
	"internal/apperr": 0, "internal/clock": 0, "internal/config": 0, "internal/logging": 0,
	"internal/signature": 0, "internal/jobargs": 0, "migrations": 0,
	"internal/domain": 1, "internal/database": 1, "internal/ratelimit": 1, "internal/turnstile": 1,
	"internal/emails": 1,
	// The code sqlc generates, over the domain's types.
	"internal/store/internal/dbsqlc": 2,
	// Rows and shapes.
	"internal/store": 3, "internal/wire": 3, "internal/testdb": 3, "internal/testsmtp": 3,
	// The domain services, each above what it calls.
	"internal/outbox": 4, "internal/accounts": 4, "internal/metrics": 4, "internal/eligibility": 4,
	"internal/lifecycle": 5,
	"internal/signup":    6, "internal/enterprise": 6,
	"internal/billing": 7, "internal/jobs": 7, "internal/console": 7,
	// The edges.
	"internal/httpapi": 8, "internal/services": 8,
	"internal/daemon": 9,
	"internal/cli":    10,
	"cmd/trialsd":     11,
	// The benchmark harness is a tool beside the daemon, not a part of it.
	"cmd/trialsbench": 11, "cmd/trialsbench/internal/bench": 10,
	// make test's runner.
	"tools/testrun": 11,
	// Tests only.
	"internal/chaos": 11,
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// packages lists the module's packages with their non-test imports.
func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		p := pkg{ImportPath: strings.TrimPrefix(f[0], module)}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module) {
				p.Imports = append(p.Imports, strings.TrimPrefix(imp, module))
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// Dependencies point one way: handlers → domain services → store → domain
// words; no package imports one drawn above it.
func TestImportsPointDown(t *testing.T) {
	t.Parallel()
	for _, p := range packages(t) {
		if p.ImportPath == "github.com/trialsd/trialsd" {
			continue // this test
		}
		rank, ok := layers[p.ImportPath]
		if !ok {
			t.Errorf("%s has no layer: give it one here and a paragraph in docs/architecture.md", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if r, ok := layers[imp]; ok && r >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies point down", p.ImportPath, rank, imp, r)
			}
		}
	}
}

// folders rank the module's top folders, for a drawing of the house by
// folders: the commands and tools on top, internal/ under them, the
// migrations and the root package (the release) at the bottom. No import
// may run up it, as jobs/jobargs under the workers' folder once made four
// do.
var folders = map[string]int{"cmd": 2, "tools": 2, "internal": 1, "migrations": 0, ".": 0}

func TestFoldersImportDown(t *testing.T) {
	t.Parallel()
	folder := func(p string) string {
		if p == strings.TrimSuffix(module, "/") {
			return "." // the root package
		}
		f, _, _ := strings.Cut(p, "/")
		return f
	}
	for _, p := range packages(t) {
		from := folder(p.ImportPath)
		rank, ok := folders[from]
		if !ok {
			t.Errorf("%s is in folder %s, which has no rank here", p.ImportPath, from)
			continue
		}
		for _, imp := range p.Imports {
			if to := folder(imp); to != from && folders[to] >= rank {
				t.Errorf("%s (folder %s) imports %s (folder %s): imports run down the folders", p.ImportPath, from, imp, to)
			}
		}
	}
}

// behindTheStore are the packages whose exported API names no store type:
// rows are the store's business, the domain's types cross the doors.
var behindTheStore = []string{"internal/eligibility", "internal/lifecycle", "internal/signup", "internal/enterprise", "internal/billing", "internal/httpapi", "internal/console"}

func TestNoStoreTypeCrossesTheDoors(t *testing.T) {
	t.Parallel()
	for _, dir := range behindTheStore {
		fset := token.NewFileSet()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range storeTypesInAPI(f) {
				t.Errorf("%s: store.%s in an exported signature or type: use a domain type", fset.Position(at.pos), at.name)
			}
		}
	}
}

// storeUse is a store type named at pos.
type storeUse struct {
	pos  token.Pos
	name string
}

// storeTypesInAPI finds store.X in f's exported API: exported functions'
// and exported types' methods' signatures, and exported types (aliases
// included), their exported fields and their interfaces' methods.
func storeTypesInAPI(f *ast.File) []storeUse {
	var found []storeUse
	find := func(n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "store" {
					found = append(found, storeUse{sel.Pos(), sel.Sel.Name})
				}
			}
			return true
		})
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Name.IsExported() && (d.Recv == nil || exportedRecv(d.Recv)) {
				find(d.Type)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				if ts, ok := spec.(*ast.TypeSpec); ok && ts.Name.IsExported() {
					findExported(ts.Type, find)
				}
			}
		}
	}
	return found
}

// findExported runs find over a type's exported parts.
func findExported(typ ast.Expr, find func(ast.Node)) {
	fields := func(l *ast.FieldList) {
		for _, fld := range l.List {
			if len(fld.Names) == 0 || fld.Names[0].IsExported() {
				find(fld.Type)
			}
		}
	}
	switch x := typ.(type) {
	case *ast.StructType:
		fields(x.Fields)
	case *ast.InterfaceType:
		fields(x.Methods)
	default:
		find(x)
	}
}

func exportedRecv(recv *ast.FieldList) bool {
	t := recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

// wiringOnly are packages that wire the services and run no SQL of their
// own: they may not import the store, so a read they need goes to the
// package whose figures it is (the metrics' reads to internal/metrics).
var wiringOnly = []string{"internal/daemon"}

func TestWiringRunsNoSQL(t *testing.T) {
	t.Parallel()
	for _, p := range packages(t) {
		if slices.Contains(wiringOnly, p.ImportPath) && slices.Contains(p.Imports, "internal/store") {
			t.Errorf("%s imports internal/store: it only wires; its reads belong to the package they serve", p.ImportPath)
		}
	}
}

// docs/architecture.md has a paragraph for every package.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packages(t) {
		if p.ImportPath == "github.com/trialsd/trialsd" {
			continue
		}
		if !strings.Contains(string(doc), "`"+p.ImportPath+"`") {
			t.Errorf("docs/architecture.md does not name `%s`", p.ImportPath)
		}
	}
}

// Limits a function stays within, so it reads in one screen and its call
// sites read without a list of positional values.
const (
	maxFunctionLines  = 80
	maxFunctionParams = 6
)

var generated = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

func TestFunctionsStayShort(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil || generated.Match(src) {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		checkFunctions(t, fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkFunctions(t *testing.T, fset *token.FileSet, f *ast.File) {
	ast.Inspect(f, func(n ast.Node) bool {
		var typ *ast.FuncType
		var body *ast.BlockStmt
		switch fn := n.(type) {
		case *ast.FuncDecl:
			typ, body = fn.Type, fn.Body
		case *ast.FuncLit:
			typ, body = fn.Type, fn.Body
		default:
			return true
		}
		if body == nil {
			return true
		}
		at := fset.Position(n.Pos())
		if lines := fset.Position(body.End()).Line - at.Line + 1; lines > maxFunctionLines {
			t.Errorf("%s: a function of %d lines (at most %d)", at, lines, maxFunctionLines)
		}
		if params := countParams(typ); params > maxFunctionParams {
			t.Errorf("%s: a function of %d parameters (at most %d): pass a value for what travels together", at, params, maxFunctionParams)
		}
		return true
	})
}

func countParams(typ *ast.FuncType) int {
	n := 0
	for _, field := range typ.Params.List {
		n += max(len(field.Names), 1)
	}
	return n
}
