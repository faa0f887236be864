package clientjs_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"notifyrelay/app/apptest"
	clientjs "notifyrelay/client/js"
)

// The server serves the embedded module at the root, loadable from any origin.
func TestServedModule(t *testing.T) {
	base := apptest.URL(apptest.Start(t, nil))
	resp, err := http.Get(base + clientjs.Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, clientjs.Source) || len(body) == 0 ||
		resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET: %d %v (%d bytes)", resp.StatusCode, resp.Header, len(body))
	}
	resp, err = http.Post(base+clientjs.Path, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", resp.StatusCode, resp.Header)
	}
}
