package bridge

import (
	"net"
	"sync"
	"time"
)

// batchBytes bounds what a socket holds before it writes: a batch of frames
// larger than this goes out in several writes.
const batchBytes = 64 << 10

// batchBuffers lends batch buffers to sockets only while a batch is built, so an
// idle socket holds none.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, batchBytes); return &b }}

// batchConn is the socket under a WebSocket connection. Between hold and flush it
// keeps what the connection writes (frames, pings, the reader's pongs) and sends
// it in one write, so a batch of frames costs one syscall, not one per frame.
// Otherwise writes go straight through. A failed write sticks, as in the
// WebSocket library: nothing is written after part of a frame may have been.
type batchConn struct {
	net.Conn
	mu   sync.Mutex
	buf  *[]byte // non-nil while holding
	werr error
}

// hold starts a batch.
func (c *batchConn) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		c.buf = batchBuffers.Get().(*[]byte)
	}
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.buf == nil {
		return c.writeNow(p)
	}
	if len(*c.buf)+len(p) > batchBytes {
		if err := c.send(); err != nil {
			return 0, err
		}
		if len(p) > batchBytes {
			return c.writeNow(p)
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// flush sends the batch within timeout and ends it.
func (c *batchConn) flush(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return c.werr
	}
	err := c.werr
	if err == nil && len(*c.buf) > 0 {
		err = c.Conn.SetWriteDeadline(time.Now().Add(timeout))
		if err == nil {
			err = c.send()
		}
	}
	*c.buf = (*c.buf)[:0]
	batchBuffers.Put(c.buf)
	c.buf = nil
	return err
}

// send writes the held bytes; c.mu is held. The deadline is the one last set
// (the WebSocket library sets it before each frame, flush before the last write).
func (c *batchConn) send() error {
	_, err := c.writeNow(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

func (c *batchConn) writeNow(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.werr = err
	}
	return n, err
}
