package bridge

import (
	"errors"

	"golang.org/x/sys/unix"
)

// unacked is the socket's SIOCOUTQ: bytes written but not yet acknowledged by
// the peer. Once the connection is no longer established (or half-closed by the
// peer) the queue says nothing (a reset empties it), so the count of bytes the
// peer acknowledged decides: a client that read everything and then reset the
// connection (closing with the last chunk unread) did receive it.
func unacked(c *tallyConn) (int, error) {
	st, err := readSocket(c, true)
	switch {
	case err != nil:
		return 0, err
	case !st.open():
		if written := c.written.Load(); st.acked < uint64(written) {
			return 0, errors.New("connection closed before the peer acknowledged everything")
		}
		return 0, nil
	}
	return st.outq, nil
}

// ackedBytes is how many of the bytes written to c the peer acknowledged:
// TCP_INFO's bytes_acked (Linux 4.1 and later), one syscall. Once the
// connection is closed the count is final (errClosed).
func ackedBytes(c *tallyConn) (int64, error) {
	st, err := readSocket(c, false)
	switch {
	case err != nil:
		return 0, err
	case !st.open():
		return int64(st.acked), errClosed
	}
	return int64(st.acked), nil
}

// socketState is what the kernel says about a connection's sending side.
type socketState struct {
	state uint8  // TCP_INFO state
	acked uint64 // bytes the peer acknowledged
	outq  int    // SIOCOUTQ: bytes written, not yet acknowledged
}

func (s socketState) open() bool { return s.state == tcpEstablished || s.state == tcpCloseWait }

// readSocket reads TCP_INFO and, if outq, SIOCOUTQ.
func readSocket(c *tallyConn, outq bool) (socketState, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return socketState{}, ErrUnconfirmable
	}
	var st socketState
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, ioErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); ioErr != nil {
			return
		}
		st.state, st.acked = info.State, info.Bytes_acked
		if outq {
			st.outq, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		}
	})
	switch {
	case err != nil:
		return st, err
	case errors.Is(ioErr, unix.ENOTSOCK) || errors.Is(ioErr, unix.EOPNOTSUPP) || errors.Is(ioErr, unix.ENOPROTOOPT):
		return st, ErrUnconfirmable
	}
	return st, ioErr
}

// TCP states of linux/tcp_states.h that still deliver what was acknowledged.
const (
	tcpEstablished = 1
	tcpCloseWait   = 8
)
