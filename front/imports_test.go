package front

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFrontImportsOnlyTheEdge: the front reaches nothing past its Handler.
// Its non-test files import the standard library and the two internal
// packages of the edge only (doc.go), never the pipeline, the upstreams or
// the decision point.
func TestFrontImportsOnlyTheEdge(t *testing.T) {
	allowed := map[string]bool{
		"github.com/sigilcore/sigil-hub/internal/framing":    true,
		"github.com/sigilcore/sigil-hub/internal/strictjson": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(path, ".") && !allowed[path] {
				t.Errorf("%s imports %s: the front may import only the standard library, internal/framing and internal/strictjson", name, path)
			}
		}
	}
}
