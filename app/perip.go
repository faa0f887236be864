package app

import (
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
type perIPListener struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[string]int
}

func limitPerIP(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		return ln
	}
	return &perIPListener{Listener: ln, max: max, open: map[string]int{}}
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := ipOf(c.RemoteAddr())
		if l.take(ip) {
			return &perIPConn{Conn: c, l: l, ip: ip}, nil
		}
		refuse(c)
	}
}

func (l *perIPListener) take(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] >= l.max {
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
	l    *perIPListener
	ip   string
	once sync.Once
}

func (c *perIPConn) Close() error {
	c.once.Do(func() { c.l.give(c.ip) })
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
