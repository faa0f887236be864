package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"notifyrelay/oma"
)

// switchListener owns the public listener of a node that may start as a standby.
// Until serve is called it forwards every connection, byte for byte, to the node
// that holds the queue (the active node); from then on it hands connections to
// the node's own HTTP server through Accept. One goroutine accepts; it ends when
// the listener is closed.
type switchListener struct {
	net.Listener
	log    zerolog.Logger
	served chan net.Conn
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	serving bool
	closed  bool
	target  string // active node's address; "" answers 503
	token   string // its forwarding token (forwarded.go); "": no preface
	open    map[net.Conn]struct{}
}

func newSwitchListener(ln net.Listener, log zerolog.Logger) *switchListener {
	s := &switchListener{Listener: ln, log: log, served: make(chan net.Conn), done: make(chan struct{}),
		open: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// setTarget points forwarding at the active node's address ("" while none is
// known), with the token its listener accepts in prefaces.
func (s *switchListener) setTarget(addr, token string) {
	s.mu.Lock()
	s.target, s.token = addr, token
	s.mu.Unlock()
}

// serve stops forwarding: connections forwarded so far are closed (their clients
// reconnect, now to this node) and new ones go to Accept.
func (s *switchListener) serve() {
	s.mu.Lock()
	s.serving = true
	conns := s.open
	s.open = map[net.Conn]struct{}{}
	s.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Accept returns the connections accepted since serve.
func (s *switchListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.served:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close closes the listener and every forwarded connection, and waits for the
// forwarding goroutines.
func (s *switchListener) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := s.open
	s.open = nil
	s.mu.Unlock()
	err := s.Listener.Close()
	for c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return err
}

func (s *switchListener) acceptLoop() {
	defer s.wg.Done()
	defer close(s.done)
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error().Err(err).Msg("accept")
			}
			return
		}
		s.dispatch(c)
	}
}

func (s *switchListener) dispatch(c net.Conn) {
	s.mu.Lock()
	serving, target, token := s.serving, s.target, s.token
	if !serving && s.open != nil {
		s.open[c] = struct{}{}
	}
	s.mu.Unlock()
	if serving {
		select {
		case s.served <- c:
		case <-time.After(5 * time.Second): // the server is stopping
			c.Close()
		}
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.forget(c)
		forward(c, target, token, s.track)
	}()
}

// track adds an upstream connection to those closed by serve and Close (at once,
// if that already happened).
func (s *switchListener) track(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving || s.open == nil {
		c.Close()
		return
	}
	s.open[c] = struct{}{}
}

func (s *switchListener) forget(conns ...net.Conn) {
	s.mu.Lock()
	for _, c := range conns {
		delete(s.open, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// forward copies c to and from a new connection to target (handed to track)
// until either side ends, after a preface naming c's client when the target gave
// a token. Without a target, or when it cannot be reached, the client gets a 503
// (OMA SVC0001) with Retry-After: the active node is being replaced.
func forward(c net.Conn, target, token string, track func(net.Conn)) {
	var up net.Conn
	err := errors.New("no active node")
	if target != "" {
		up, err = net.DialTimeout("tcp", target, 2*time.Second)
	}
	if err != nil {
		writeUnavailable(c)
		return
	}
	track(up)
	defer up.Close()
	if token != "" {
		if _, err := up.Write(preface(token, c.RemoteAddr())); err != nil {
			return
		}
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	// One direction ended: give the other a moment to finish its last bytes.
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_ = up.SetDeadline(time.Now().Add(5 * time.Second))
	<-done
}

// writeUnavailable reads the request's head, answers 503, then reads what else the
// client sent until it closes (bounded). An answer written before the request
// is taken by HTTP clients for an unsolicited one, and closing a socket with
// unread bytes resets it: either way the client could lose the answer.
func writeUnavailable(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	head := make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for !bytes.Contains(head, []byte("\r\n\r\n")) && len(head) < 64<<10 {
		n, err := c.Read(buf)
		head = append(head, buf[:n]...)
		if err != nil {
			return
		}
	}
	body := oma.Unavailable().Marshal(oma.JSON)
	_, _ = fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"+
		"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
}
