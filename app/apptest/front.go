package apptest

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Front is one origin for a browser test: it serves the test's pages and
// forwards every other request (the API, WebSockets, /client/notifyrelay.js) to
// the server To names, which may restart on another port: start it with
// --public-url Front.URL, so that its WebSockets accept the pages' origin.
// Closed when the test ends.
type Front struct {
	URL string
	mu  sync.Mutex
	to  *url.URL
}

// NewFront serves pages (path → HTML) on 127.0.0.1:0.
func NewFront(t testing.TB, pages map[string]string) *Front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Front{URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	for path, html := range pages {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(html))
		})
	}
	mux.Handle("/", &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		f.mu.Lock()
		r.SetURL(f.to)
		f.mu.Unlock()
		r.Out.Host = r.In.Host
	}})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

// To sends what is not a page to the server at addr (host:port) from now on.
func (f *Front) To(addr string) {
	f.mu.Lock()
	f.to = &url.URL{Scheme: "http", Host: addr}
	f.mu.Unlock()
}
