package client_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The library is what a client developer adds to an application: it may import
// only the standard library, the WebSocket library and the shared wire formats.
func TestImportsOnlyWireFormatsAndWebSocket(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			stdlib := !strings.Contains(strings.Split(p, "/")[0], ".") && !strings.HasPrefix(p, "notifyrelay/")
			if !stdlib && p != "notifyrelay/oma" && p != "github.com/gorilla/websocket" {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
	if len(files) < 4 {
		t.Fatalf("no sources found (%d)", len(files))
	}
}
