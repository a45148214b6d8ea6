package layers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/sigilcore/sigil-hub/"

// rule is what one package's doc comment says of its imports. only, when
// not nil, lists every import outside the standard library it may have
// (sigil-hub's own packages by their path in the module; an entry also
// allows the packages below it); never lists imports it must not have.
type rule struct {
	only  []string
	never []string
}

const mcpGo = "github.com/mark3labs/mcp-go"

// stdOnly is a package that imports the standard library alone.
var stdOnly = rule{only: []string{}}

// rules mirrors the doc comments; a package missing here fails the test,
// so that a new package states its place.
var rules = map[string]rule{
	"audit":                stdOnly,
	"router":               stdOnly,
	"internal/strictjson":  stdOnly,
	"internal/framing":     stdOnly,
	"internal/headername":  stdOnly,
	"internal/privatefile": stdOnly,
	"internal/secretlike":  stdOnly,
	"authz/policy":         {only: []string{"internal/strictjson", "golang.org/x/text"}},
	"authz":                {only: []string{"authz/policy", "internal/strictjson"}},
	"signer":               {only: []string{"authz", "authz/policy", "internal/strictjson"}},
	"front":                {only: []string{"internal/framing", "internal/strictjson"}},
	"importer":             {only: []string{"github.com/BurntSushi/toml", "internal/headername", "internal/secretlike"}},
	"upstreams":            {never: []string{"hub", "router", "authz", "front", "config", "cmd", mcpGo + "/server"}},
	"config":               {never: []string{"hub", "pins", "front", "cmd"}},
	"pins":                 {never: []string{"hub", "config", "upstreams", "cmd"}},
	"hub":                  {never: []string{"cmd", "github.com/lmittmann/tint", "github.com/oklog/run"}},
	"cmd/sigil-hub":        {never: testOnly},
	"examples/demo":        {only: []string{"github.com/BurntSushi/toml", mcpGo + "/client", mcpGo + "/mcp"}},
	// For tests, benchmarks and examples only (production code must not
	// import testOnly: checked below).
	"bench":                      {},
	"examples/upstreams/clock":   {only: []string{mcpGo}},
	"examples/upstreams/notes":   {only: []string{mcpGo}},
	"internal/conformanceserver": {only: []string{mcpGo}},
	"internal/layers":            stdOnly,
	"internal/oauthtest":         stdOnly,
	"internal/procstat":          stdOnly,
	"internal/signtest":          stdOnly,
	"internal/testbuf":           stdOnly,
	"internal/testmodern":        {only: []string{mcpGo}},
	"internal/testtasks":         stdOnly,
	"internal/testupstream":      {only: []string{mcpGo}},
	"internal/vectors":           stdOnly,
	"internal/webdriver":         {only: []string{"internal/testbuf"}},
}

// under reports whether import path p is entry or below it; entry is a
// sigil-hub package's path in the module or a full import path.
func under(p, entry string) bool {
	if !strings.Contains(strings.SplitN(entry, "/", 2)[0], ".") {
		entry = module + entry
	}
	return p == entry || strings.HasPrefix(p, entry+"/")
}

// testOnly are the packages production code must not import.
var testOnly = []string{"internal/conformanceserver", "internal/oauthtest", "internal/signtest", "internal/testbuf",
	"internal/testmodern", "internal/testtasks", "internal/testupstream", "internal/vectors", "internal/webdriver",
	"internal/procstat"}

// TestEveryPackageImportsWhatItsDocAllows reads the imports of every
// package's non-test files and checks them against rules.
func TestEveryPackageImportsWhatItsDocAllows(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]map[string]bool{} // package dir → import paths
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(path))
		dir = filepath.ToSlash(dir)
		if imports[dir] == nil {
			imports[dir] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports[dir][p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 20 {
		t.Fatalf("found %d packages under %s: not the module root?", len(imports), root)
	}
	for dir, imps := range imports {
		r, ok := rules[dir]
		if !ok {
			t.Errorf("package %s has no rule here: add what its doc comment says it may and must not import", dir)
			continue
		}
		production := !slices.Contains(testOnly, dir) && dir != "bench" && !strings.HasPrefix(dir, "examples/") && dir != "internal/layers"
		for p := range imps {
			std := !strings.Contains(strings.SplitN(p, "/", 2)[0], ".")
			if !std && r.only != nil && !slices.ContainsFunc(r.only, func(e string) bool { return under(p, e) }) {
				t.Errorf("%s imports %s: its doc comment allows only the standard library and %v", dir, p, r.only)
			}
			if slices.ContainsFunc(r.never, func(e string) bool { return under(p, e) }) {
				t.Errorf("%s imports %s: its doc comment says it must not", dir, p)
			}
			if production && slices.ContainsFunc(testOnly, func(e string) bool { return under(p, e) }) {
				t.Errorf("%s imports %s, a package for tests only", dir, p)
			}
		}
	}
}
