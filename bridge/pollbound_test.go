//go:build linux

package bridge

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"notifyrelay/config"
)

// An answer holds at most channels.max_answer_bytes of notifications, but always
// at least one; the rest is for the next polls, in order.
func TestLongPollAnswerBoundedByBytes(t *testing.T) {
	one := len(notification(1)) // every n below is one digit: same size
	s := startServer(t, func(c *config.Config) { c.Channels.MaxAnswerBytes = config.Size(3*one + one/2) })
	ch := s.create("LongPolling", "")
	for i := 1; i <= 7; i++ {
		s.notify(ch.CallbackURL, i)
	}
	for _, want := range [][]int{{1, 2, 3}, {4, 5, 6}, {7}} {
		var docs []string
		for _, n := range want {
			docs = append(docs, notification(n))
		}
		if r := waitResult(t, s.pollAsync(ch.ChannelData.ChannelURL)); r.body != `{"notificationList":[`+strings.Join(docs, ",")+`]}` {
			t.Fatalf("want %v: %+v", want, r)
		}
	}

	small := startServer(t, func(c *config.Config) { c.Channels.MaxAnswerBytes = 1 })
	ch = small.create("LongPolling", "")
	small.notify(ch.CallbackURL, 8)
	small.notify(ch.CallbackURL, 9)
	if r := waitResult(t, small.pollAsync(ch.ChannelData.ChannelURL)); r.body != `{"notificationList":[`+notification(8)+`]}` {
		t.Fatalf("a notification over the bound must still go alone: %+v", r)
	}
}

// WaitReceived tells bytes the peer's TCP stack acknowledged from bytes that only
// reached our send buffer, and a broken connection from a received one.
func TestWaitReceived(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl := CountingListener(ln)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 2048) })
	}}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, err := cl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.Write(make([]byte, 64<<10)); err != nil { // fits our send buffer, not the client's window
		t.Fatal(err)
	}
	if n, _ := WrittenBytes(srv); n != 64<<10 {
		t.Fatalf("WrittenBytes %d", n)
	}
	if err := WaitReceived(context.Background(), srv, 1, 300*time.Millisecond); !errors.Is(err, ErrNotReceived) {
		t.Fatalf("client not reading: %v, want ErrNotReceived", err)
	}
	if _, err := io.CopyN(io.Discard, client, 64<<10); err != nil {
		t.Fatal(err)
	}
	if err := WaitReceived(context.Background(), srv, 64<<10, 10*time.Second); err != nil {
		t.Fatalf("client read everything: %v", err)
	}
	if err := WaitReceived(context.Background(), srv, 64<<10+1, 50*time.Millisecond); !errors.Is(err, ErrNotReceived) {
		t.Fatalf("waiting for bytes never written: %v", err)
	}

	_, _ = srv.Write(make([]byte, 64<<10))
	_ = client.(*net.TCPConn).SetLinger(0)
	client.Close() // reset: what was queued is dropped, not received
	if err := WaitReceived(context.Background(), srv, 1, 10*time.Second); !errors.Is(err, ErrNotReceived) {
		t.Fatalf("reset connection: %v, want ErrNotReceived", err)
	}
	if err := WaitReceived(context.Background(), &net.TCPConn{}, 0, time.Second); !errors.Is(err, ErrUnconfirmable) {
		t.Fatalf("a connection that does not count: %v", err)
	}
}

// After shutdown_timeout, Stop cuts the sockets its goroutines are blocked on and
// waits for them (boundedly) instead of returning with them still running: here a
// WebSocket writer stuck on a client that does not read (write_timeout 1 min).
func TestStopBoundedAfterShutdownTimeout(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Channels.WriteTimeout = config.Duration(time.Minute) })
	ch := s.create("WebSockets", "")
	big := `{"big":"` + strings.Repeat("x", 900<<10) + `"}`
	for range 8 { // more than the socket buffers hold
		if st, _, resp := s.do("POST", ch.CallbackURL, "application/json", big); st != 204 {
			t.Fatalf("notify: %d %s", st, resp)
		}
	}
	d := websocket.Dialer{Subprotocols: []string{ProtocolOMA}, NetDial: func(network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 2048) })
		}}
		return nd.Dial(network, addr)
	}}
	c, _, err := d.Dial(ch.ChannelData.ChannelURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, "the socket served", func() bool {
		s.b.conns.mu.Lock()
		defer s.b.conns.mu.Unlock()
		return len(s.b.conns.socks) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.b.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v (goroutines not waited for)", err)
	}
	if depth := s.q.DestStats(s.b.store.hub.get(idOf(ch)).dest()).Depth; depth == 0 {
		t.Fatal("notifications the client never read were counted delivered")
	}
}

// AckedBytes counts exactly the bytes the peer's TCP stack acknowledged: less
// than written while the client does not read, all of them (not one more: the
// handshake's SYN is not counted) once it read them, and a final count with an
// error once the connection was reset.
func TestAckedBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 2048) })
	}}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, err := CountingListener(ln).Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const n = 64 << 10
	if _, err := srv.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // give a wrong count the time to show; nothing waits on it
	if a, err := AckedBytes(srv); err != nil || a >= n {
		t.Fatalf("client not reading: acked %d of %d (%v)", a, n, err)
	}
	if _, err := io.CopyN(io.Discard, client, n); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bytes acknowledged", func() bool { a, _ := AckedBytes(srv); return a >= n })
	if a, err := AckedBytes(srv); a != n || err != nil {
		t.Fatalf("client read everything: acked %d of %d (%v)", a, n, err)
	}
	_, _ = srv.Write(make([]byte, n))
	_ = client.(*net.TCPConn).SetLinger(0)
	client.Close()
	eventually(t, "the socket gone", func() bool { _, err := AckedBytes(srv); return err != nil })
	if a, err := AckedBytes(srv); a >= 2*n || !errors.Is(err, ErrNotReceived) {
		t.Fatalf("reset connection: acked %d of %d (%v), want fewer and ErrNotReceived", a, 2*n, err)
	}
	if _, err := AckedBytes(&net.TCPConn{}); !errors.Is(err, ErrUnconfirmable) {
		t.Fatalf("a connection that does not count: %v", err)
	}
}
