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
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, ErrUnconfirmable
	}
	var n int
	var state uint8
	var acked uint64
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, ioErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); ioErr != nil {
			return
		}
		state, acked = info.State, info.Bytes_acked
		n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(ioErr, unix.ENOTSOCK) || errors.Is(ioErr, unix.EOPNOTSUPP) || errors.Is(ioErr, unix.ENOPROTOOPT):
		return 0, ErrUnconfirmable
	case ioErr != nil:
		return 0, ioErr
	case state != tcpEstablished && state != tcpCloseWait:
		if written := c.written.Load(); acked < uint64(written) {
			return 0, errors.New("connection closed before the peer acknowledged everything")
		}
		return 0, nil
	}
	return n, nil
}

// TCP states of linux/tcp_states.h that still deliver what was acknowledged.
const (
	tcpEstablished = 1
	tcpCloseWait   = 8
)
