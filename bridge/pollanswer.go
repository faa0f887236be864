package bridge

import (
	"errors"
	"io"
	"net"
	"sync"

	"notifyrelay/oma"
	"notifyrelay/queue"
)

// pollPage is the most entries an answer reads from the queue at a time: an
// answer is streamed, so its memory is one page and one document, whatever
// maxNotifications and channels.max_answer_bytes allow.
const pollPage = 16

// pollAnswer is a long-poll response body: a notificationList streamed from the
// queue, and acknowledged once the client has received it.
//
// fasthttp sends a body stream of unknown size chunked: it writes and flushes each
// chunk before it reads the next, and after the Read that finds the body exhausted
// it writes the closing chunk and flushes it. So when that Read comes, every data
// byte is in the socket and the closing chunk is about to follow. Only once the
// client's TCP stack has acknowledged all of it, closing chunk included
// (WaitReceived), is the batch acknowledged: a client only uses a complete chunked
// answer, and a crash or a broken connection before that leaves the batch queued
// for the next poll (at least once; see docs/channels.md). HTTP/1.0 clients, who
// cannot read chunks, get the body with a Content-Length, acknowledged once written.
type pollAnswer struct {
	t        *pollTransport
	c        *channel
	conn     net.Conn
	f        oma.Format
	max      int // notifications
	maxBytes int // their bytes (the first one always goes)
	http10   bool

	page  []queue.Entry // read from the queue, not yet sent
	n     int           // notifications in the answer so far
	size  int           // and their bytes
	out   []byte        // the piece being read out
	off   int
	ended bool // the tail is in out

	seq       uint64 // the last notification of the answer
	delivered delivered
	sent      int           // body bytes
	done      chan struct{} // c.sending for this answer
	once      sync.Once
}

// start puts the list's head and first notification (always sent) in out.
func (a *pollAnswer) start(first pending, rest []queue.Entry) {
	a.page = rest
	a.out = oma.NotificationListHead(a.f)
	a.add(first)
}

func (a *pollAnswer) add(p pending) {
	a.out = oma.AppendNotificationListItem(a.out, a.f, p.env.Body, a.n)
	a.n, a.size, a.seq = a.n+1, a.size+len(p.env.Body), p.seq
	a.delivered.add(p.env.Tag, p.env.Traceparent, p.enqueued)
}

func (a *pollAnswer) Read(p []byte) (int, error) {
	for a.off == len(a.out) {
		if a.ended {
			a.finish(true)
			return 0, io.EOF
		}
		a.out, a.off = a.out[:0], 0
		if next, ok := a.take(); ok {
			a.add(next)
		} else {
			a.out, a.ended = append(a.out, oma.NotificationListTail(a.f)...), true
		}
	}
	n := copy(p, a.out[a.off:])
	a.off += n
	a.sent += n
	return n, nil
}

// take returns the next notification if it belongs in this answer: below both
// bounds and of the answer's format.
func (a *pollAnswer) take() (pending, bool) {
	if a.n >= a.max {
		return pending{}, false
	}
	if len(a.page) == 0 && !a.readPage() {
		return pending{}, false
	}
	p := decode(a.page[0])
	if p.format != a.f || a.size+len(p.env.Body) > a.maxBytes {
		return pending{}, false
	}
	a.page = a.page[1:]
	return p, true
}

// readPage reads the entries after the last one taken: as many as the byte budget
// likely holds, judging by the size of the notifications so far.
func (a *pollAnswer) readPage() bool {
	want := min(pollPage, a.max-a.n, max(1, (a.maxBytes-a.size)/max(1, a.size/a.n)))
	es, err := a.t.q.Read(a.t.conns.life, a.c.dest(), a.seq, want)
	if err != nil || len(es) == 0 {
		return false
	}
	a.page = es
	return true
}

// CloseWithError is called by fasthttp when it is done with the body, written
// or not (err: the write error). On the HTTP/1.0 path (Content-Length, no final
// Read) everything copied without error counts as written.
func (a *pollAnswer) CloseWithError(err error) error {
	a.finish(err == nil && a.ended && a.off == len(a.out))
	return nil
}

// finish runs once: a written answer waits, on its own goroutine, for the client
// to have received it; an unwritten one is left queued at once.
func (a *pollAnswer) finish(written bool) {
	a.once.Do(func() {
		if !written || a.http10 {
			a.settle(written)
			return
		}
		w, _ := WrittenBytes(a.conn)
		go a.confirm(w + 1) // owned by the conns' wg, counted when the answer began
	})
}

// confirm acknowledges the answer once more than atLeast bytes were written (the
// closing chunk was flushed) and the client's TCP stack acknowledged them all.
// Where that cannot be known (not Linux, a connection that does not count its
// bytes) the answer counts as received once written.
func (a *pollAnswer) confirm(atLeast int64) {
	err := WaitReceived(a.t.conns.life, a.conn, atLeast, a.t.cfg.WriteTimeout.D())
	if err != nil && !errors.Is(err, ErrUnconfirmable) {
		a.t.log.Debug().Err(err).Str("channel", a.c.st.ID).Msg("long-poll answer not confirmed; it stays queued")
		a.t.metrics.unconfirmed.Inc()
	}
	a.settle(err == nil || errors.Is(err, ErrUnconfirmable))
}

func (a *pollAnswer) settle(received bool) {
	if received {
		a.t.acks.delivered(a.t.conns.life, a.c.dest(), a.seq, a.delivered)
		a.t.metrics.sent("poll", 1, a.sent)
	}
	a.c.endAnswer(a.done)
	a.t.conns.wg.Done()
}

// bufferAll turns the stream into one body (HTTP/1.0 needs its length up front);
// it is bounded by channels.max_answer_bytes plus one notification.
func (a *pollAnswer) bufferAll() int {
	body := append([]byte(nil), a.out...)
	for !a.ended {
		a.out = a.out[:0]
		if next, ok := a.take(); ok {
			a.add(next)
		} else {
			a.out, a.ended = append(a.out, oma.NotificationListTail(a.f)...), true
		}
		body = append(body, a.out...)
	}
	a.out, a.off = body, 0
	return len(body)
}
