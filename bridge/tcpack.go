package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Knowing that a client received what was written: "written" (the write call
// returned) only means the bytes reached our kernel's send buffer, and a crash
// loses what sits there. The peer's TCP stack acknowledging them is the strongest
// signal a protocol without client acks gives. On Linux, SIOCOUTQ on the socket
// counts the bytes not yet acknowledged by the peer; 0 on an established
// connection means the peer's kernel has everything written so far.
//
// API (also meant for the OMA-mode WebSocket writer):
//   - CountingListener(ln) wraps the server's listener; each accepted connection
//     counts the bytes written to it (app wraps its public listener).
//   - WrittenBytes(conn) is that count (false for a connection not accepted
//     through a CountingListener).
//   - WaitReceived(ctx, conn, atLeast, timeout) waits until at least atLeast bytes
//     were written to conn and the peer acknowledged all of them.
//   - AckedBytes(conn) is how many of the bytes written the peer acknowledged so
//     far: a writer that keeps writing confirms earlier batches with it (the
//     send queue of a busy socket is rarely empty, so WaitReceived would wait).
// conn may be a hijacked connection (fasthttp's wrapper is looked through).

// ErrUnconfirmable: receipt cannot be known here (not Linux, not a TCP socket, or
// a connection that does not count its bytes). Callers fall back to "written".
var ErrUnconfirmable = errors.New("tcp receipt cannot be confirmed on this connection")

// ErrNotReceived: the connection broke, the timeout passed or ctx ended before
// the peer acknowledged everything. Treat the data as not delivered.
var ErrNotReceived = errors.New("peer did not acknowledge the bytes written")

// errClosed: the connection is no longer established; what the peer
// acknowledged so far is all it ever will.
var errClosed = fmt.Errorf("%w: connection closed", ErrNotReceived)

// CountingListener wraps ln so that its connections count the bytes written.
func CountingListener(ln net.Listener) net.Listener { return countingListener{ln} }

type countingListener struct{ net.Listener }

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tallyConn{Conn: c}, nil
}

type tallyConn struct {
	net.Conn
	written atomic.Int64
}

func (c *tallyConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// SyscallConn exposes the socket, for SIOCOUTQ.
func (c *tallyConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, ErrUnconfirmable
	}
	return sc.SyscallConn()
}

// unwrap looks through fasthttp's hijacked-connection wrapper.
func unwrap(c net.Conn) net.Conn {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return c
}

// WrittenBytes is the number of bytes written to c so far.
func WrittenBytes(c net.Conn) (int64, bool) {
	cc, ok := unwrap(c).(*tallyConn)
	if !ok {
		return 0, false
	}
	return cc.written.Load(), true
}

// WaitReceived waits until at least atLeast bytes were written to c and the peer
// acknowledged every byte written (see the API note above). It polls: a
// loopback or LAN peer acknowledges within a millisecond or two, a delayed ACK
// within ~40 ms.
func WaitReceived(ctx context.Context, c net.Conn, atLeast int64, timeout time.Duration) error {
	cc, ok := unwrap(c).(*tallyConn)
	if !ok {
		return ErrUnconfirmable
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	pause := 200 * time.Microsecond
	for {
		if cc.written.Load() >= atLeast {
			switch n, err := unacked(cc); {
			case errors.Is(err, ErrUnconfirmable):
				return err
			case err != nil:
				return fmt.Errorf("%w: %w", ErrNotReceived, err)
			case n == 0:
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNotReceived, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%w within %v", ErrNotReceived, timeout)
		case <-time.After(pause):
		}
		pause = min(pause*2, 20*time.Millisecond)
	}
}

// AckedBytes is how many of the bytes written to c the peer's TCP stack has
// acknowledged. The error is ErrUnconfirmable (see WrittenBytes), or wraps
// ErrNotReceived once the connection is closed (the count is then final).
func AckedBytes(c net.Conn) (int64, error) {
	cc, ok := unwrap(c).(*tallyConn)
	if !ok {
		return 0, ErrUnconfirmable
	}
	return ackedBytes(cc)
}
