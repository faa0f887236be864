package bridge

import (
	"io"
	"sync"
)

// pollAnswer is a long-poll response body that acknowledges its notifications
// once the response has been written to the connection.
//
// fasthttp sends a body stream of unknown size chunked, and writes and flushes
// each chunk to the connection before it reads the next one. So the Read that
// finds the body exhausted comes after every byte was handed to the socket: that
// Read settles and acknowledges the batch (before the closing chunk goes out, so
// the client cannot poll again before the ack). If writing fails, fasthttp closes
// the stream without that Read and the batch stays queued for the next poll.
// HTTP/1.0 clients, who cannot read chunks, get the body with a Content-Length.
type pollAnswer struct {
	b         *Bridge
	c         *channel
	body      []byte
	off       int
	seq       uint64 // the last notification of the batch
	delivered delivered
	done      chan struct{} // c.sending for this answer
	once      sync.Once
}

func (a *pollAnswer) Read(p []byte) (int, error) {
	if a.off < len(a.body) {
		n := copy(p, a.body[a.off:])
		a.off += n
		return n, nil
	}
	a.finish(true)
	return 0, io.EOF
}

// CloseWithError is called by fasthttp when it is done with the body, written
// or not (err: the write error). Everything copied without error also counts as
// written: that is the HTTP/1.0 path (Content-Length, no chunks), where the tail
// of the body may still sit in fasthttp's write buffer (docs/channels.md).
func (a *pollAnswer) CloseWithError(err error) error {
	a.finish(err == nil && a.off == len(a.body))
	return nil
}

func (a *pollAnswer) finish(written bool) {
	a.once.Do(func() {
		if written {
			a.b.ackDelivered(a.b.ctx(), a.c.dest(), a.seq, a.delivered)
			a.b.metrics.sent("poll", 1, len(a.body))
		}
		a.c.endAnswer(a.done)
		a.b.wg.Done()
	})
}
