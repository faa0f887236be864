package ceiling

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The load tester and its reference server are pure clients of the server: of
// notifyrelay's packages they use only the shared wire formats and the client
// library (itself a pure client: client/imports_test.go).
func TestImportsNoServerPackage(t *testing.T) {
	allowed := map[string]bool{"notifyrelay/oma": true, "notifyrelay/client": true, "notifyrelay/loadtest/ceiling": true}
	files, _ := filepath.Glob("*.go")
	parent, _ := filepath.Glob("../*.go")
	for _, name := range append(files, parent...) {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "notifyrelay/") && !allowed[p] {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
	if len(files) < 2 || len(parent) < 2 {
		t.Fatalf("no sources found (%d, %d)", len(files), len(parent))
	}
}
