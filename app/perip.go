package app

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"notifyrelay/oma"
)

// perIPListener refuses a connection from an address that already has max open
// (limits.max_conns_per_ip) with a 429 requestError. It sits under the bridge's
// CountingListener, and its connections keep the socket reachable (SyscallConn),
// so that a long poll can still tell what the client received.
//
// With a forwarding token (several nodes on JetStream), a connection that starts
// with a standby's preface (forwarded.go) counts under the client's address
// instead of the standby's; one over the limit is kept until its first bytes show
// whether it is forwarded, at most prefaceWait.
type perIPListener struct {
	net.Listener
	max   int    // 0: no limit
	token string // this node's forwarding token; "": no preface is looked for
	mu    sync.Mutex
	open  map[string]int
}

// prefaceWait is how long a connection over the limit has to show a preface.
const prefaceWait = 2 * time.Second

func limitPerIP(ln net.Listener, max int, token string) net.Listener {
	if max <= 0 && token == "" {
		return ln
	}
	return &perIPListener{Listener: ln, max: max, token: token, open: map[string]int{}}
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := ipOf(c.RemoteAddr())
		counted := l.take(ip)
		if counted || l.token != "" {
			return &perIPConn{Conn: c, l: l, ip: ip, counted: counted, claimed: l.token == ""}, nil
		}
		refuse(c)
	}
}

func (l *perIPListener) take(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.open[ip] >= l.max {
		return false
	}
	l.open[ip]++
	return true
}

func (l *perIPListener) give(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

var tooManyConns = func() []byte {
	body := oma.TooManyRequests("connections from one address (limits.max_conns_per_ip)").Marshal(oma.JSON)
	head := "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: "
	return append([]byte(head+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}()

// refuse answers 429 without reading the request and closes c (the write goes
// into an empty socket buffer; the deadline is for a peer that is already gone).
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(tooManyConns)
	_ = c.Close()
}

func ipOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

type perIPConn struct {
	net.Conn
	l       *perIPListener
	ip      string
	counted bool     // holds one of ip's slots
	claimed bool     // the start was read for a preface (or none is looked for)
	remote  net.Addr // the forwarded client's address
	rest    []byte   // read while looking for the preface, not yet returned
	restErr error    // the error that came with rest
	closed  bool
	mu      sync.Mutex // guards counted, closed, ip and remote against Close and RemoteAddr
	once    sync.Once
}

// Read looks for a standby's preface first (claim); fasthttp's serving goroutine
// is the only reader until the connection is hijacked, after its first request.
func (c *perIPConn) Read(p []byte) (int, error) {
	if !c.claimed {
		c.claimed = true
		if err := c.claim(); err != nil {
			return 0, err
		}
	}
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	if c.restErr != nil {
		return 0, c.restErr
	}
	return c.Conn.Read(p)
}

// claim reads the preface, if any: a forwarded client then counts under its own
// address. A connection that is still over the limit is refused.
func (c *perIPConn) claim() error {
	c.mu.Lock()
	over := !c.counted
	c.mu.Unlock()
	if over {
		_ = c.Conn.SetReadDeadline(time.Now().Add(prefaceWait))
	}
	client, rest, err := readPreface(c.Conn, c.l.token)
	if errors.Is(err, errBadPreface) {
		c.Conn.Close()
		return err
	}
	c.rest, c.restErr = rest, err
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	if client != nil {
		if c.counted {
			c.l.give(c.ip)
		}
		c.ip, c.remote = ipOf(client), client
		c.counted = c.l.take(c.ip)
	}
	counted := c.counted
	c.mu.Unlock()
	if !counted {
		refuse(c.Conn)
		return errTooManyConns
	}
	if over { // forwarded after all: the reader's own deadlines apply again
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	return nil
}

var errTooManyConns = errors.New("limits.max_conns_per_ip reached")

// RemoteAddr is the client's: the forwarded one's when a standby said so.
func (c *perIPConn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

func (c *perIPConn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.closed = true
		if c.counted {
			c.counted = false
			c.l.give(c.ip)
		}
	})
	return c.Conn.Close()
}

// SyscallConn exposes the socket (bridge.WaitReceived reads its send queue).
func (c *perIPConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, syscall.EINVAL
	}
	return sc.SyscallConn()
}
