//go:build !linux

package bridge

// unacked: SIOCOUTQ is Linux only; elsewhere receipt cannot be confirmed.
func unacked(*tallyConn) (int, error) { return 0, ErrUnconfirmable }

// ackedBytes: likewise.
func ackedBytes(*tallyConn) (int64, error) { return 0, ErrUnconfirmable }
