package apptest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from one fixed 127.0.0.1 address to a server
// that may restart on another port, so that a client keeps one URL across
// restarts: start the server with --public-url Proxy.URL and call To after each
// start. A connection ends on both sides when either side ends. Closed when the
// test ends.
type Proxy struct {
	URL  string // http://Addr
	Addr string
	ln   net.Listener
	mu   sync.Mutex
	to   string
	open map[net.Conn]struct{}
	wg   sync.WaitGroup
}

// NewProxy listens on 127.0.0.1:0; it refuses connections until To is called.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, Addr: ln.Addr().String(), open: map[net.Conn]struct{}{}}
	p.URL = "http://" + p.Addr
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// To sends new connections to addr (host:port).
func (p *Proxy) To(addr string) {
	p.mu.Lock()
	p.to = addr
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		to := p.to
		p.mu.Unlock()
		up, err := net.Dial("tcp", to)
		if err != nil || !p.track(c, up) {
			_ = c.Close()
			if up != nil {
				_ = up.Close()
			}
			continue
		}
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// track registers a pair; false once the proxy is closing.
func (p *Proxy) track(c, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil {
		return false
	}
	p.open[c], p.open[up] = struct{}{}, struct{}{}
	return true
}

func (p *Proxy) pipe(c, up net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) { _, _ = io.Copy(dst, src); done <- struct{}{} }
	go cp(up, c)
	go cp(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.open, c)
	delete(p.open, up)
	p.mu.Unlock()
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		_ = c.Close()
	}
	p.open = nil
	p.mu.Unlock()
	p.wg.Wait()
}
