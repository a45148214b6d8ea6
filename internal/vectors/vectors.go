// Package vectors locates the shared known-answer vectors for tests: they
// live in ../shared/vectors beside the repository (CI always has them there)
// and are never copied into it. Test-only: production code must not import
// it. It imports only the standard library.
package vectors

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the vectors directory, or skips tb with a message saying where
// it was looked for. Safe for concurrent use.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("no go.mod above the test directory; cannot locate ../shared/vectors")
		}
		dir = parent
	}
	v := filepath.Join(dir, "..", "shared", "vectors")
	if _, err := os.Stat(v); err != nil {
		tb.Skipf("shared vectors not found at %s (they live beside the repository, never in it): %v", v, err)
	}
	return v
}
