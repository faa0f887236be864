package bridge

import (
	"errors"
	"math"
	"time"
)

// OMA mode has no client acknowledgement, so a batch counts as delivered once the
// client's TCP stack has acknowledged its last byte (docs/channels.md §3, §5), as a
// long-poll answer does. The writer does not wait for that after each batch: it
// notes the batch as unconfirmed and writes the next, and acknowledges in order,
// with one queue Ack for all the batches received since it last looked. When
// nothing is left to write it waits for the rest before it ends, and goes back to
// writing as soon as new work comes.

// maxUnconfirmed bounds the batches written and not yet known received: past it
// the writer waits for the oldest before it writes more.
const maxUnconfirmed = 64

// confirmEvery: a writer that keeps writing looks at the socket after this many
// batches (two syscalls), to keep its list of unconfirmed batches short.
const confirmEvery = 8

// unconfirmed is an OMA-mode batch flushed to the socket, not yet known received.
type unconfirmed struct {
	end  int64  // the socket's byte count once the batch was flushed
	seq  uint64 // the batch's last notification
	done delivered
	by   time.Time // not received by then: the client stopped reading or is gone
}

// receiptTimeout ends a socket whose client's TCP stack did not acknowledge a
// batch within channels.write_timeout; a timeout, so it is closed as a slow
// client (1013) and the batch stays queued.
type receiptTimeout struct{}

func (receiptTimeout) Error() string {
	return "client did not acknowledge a batch within channels.write_timeout"
}
func (receiptTimeout) Timeout() bool   { return true }
func (receiptTimeout) Temporary() bool { return true }

// flushed records an OMA-mode batch, up to seq, as written: acknowledged at once
// where receipt cannot be known, else once the client received it.
func (w *wsConn) flushed(seq uint64, done delivered) error {
	if !w.receipt {
		w.t.acks.delivered(w.t.conns.life, w.ch.dest(), seq, done)
		return nil
	}
	end, _ := WrittenBytes(w.out.Conn)
	w.unconf = append(w.unconf, unconfirmed{end: end, seq: seq, done: done,
		by: time.Now().Add(w.t.cfg.WriteTimeout.D())})
	switch n := len(w.unconf); {
	case n >= maxUnconfirmed:
		return w.awaitReceipt(maxUnconfirmed-1, nil, time.Time{})
	case n%confirmEvery == 0: // the batch just written cannot be received yet
		return w.confirm()
	}
	return nil
}

// confirm acknowledges, in order, the batches the client's TCP stack has
// acknowledged. It fails once the connection closed with batches unreceived,
// or when the oldest is overdue.
func (w *wsConn) confirm() error {
	if len(w.unconf) == 0 {
		return nil
	}
	acked, err := AckedBytes(w.out.Conn)
	if errors.Is(err, ErrUnconfirmable) {
		w.receipt, acked, err = false, math.MaxInt64, nil
	}
	n := 0
	for n < len(w.unconf) && w.unconf[n].end <= acked {
		n++
	}
	w.ackBatches(n)
	switch {
	case len(w.unconf) == 0:
		return nil
	case err != nil:
		return err
	case time.Now().After(w.unconf[0].by):
		return receiptTimeout{}
	}
	return nil
}

// ackBatches acknowledges the first n unconfirmed batches with one Ack.
func (w *wsConn) ackBatches(n int) {
	if n == 0 {
		return
	}
	var done delivered
	for _, u := range w.unconf[:n] {
		done.tags = append(done.tags, u.done.tags...)
		done.enqueued = append(done.enqueued, u.done.enqueued...)
	}
	w.t.acks.delivered(w.t.conns.life, w.ch.dest(), w.unconf[n-1].seq, done)
	rest := copy(w.unconf, w.unconf[n:])
	clear(w.unconf[rest:])
	w.unconf = w.unconf[:rest]
}

// awaitReceipt waits until at most left batches are unconfirmed. It returns
// early, without error, when wake fires (new work) or limit passes (if set);
// with an error when the connection closed, a batch is overdue or the bridge
// gave up waiting (Stop after shutdown_timeout). It polls the socket (one
// syscall) on a schedule that follows how a peer acknowledges: at once (a LAN
// or loopback peer in quick-ACK mode, or one that sends), else with a delayed
// ACK, at least 40 ms later on Linux.
func (w *wsConn) awaitReceipt(left int, wake <-chan struct{}, limit time.Time) error {
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	for polls := 0; ; polls++ {
		if err := w.confirm(); err != nil || len(w.unconf) <= left {
			return err
		}
		if !limit.IsZero() && time.Now().After(limit) {
			return nil
		}
		select {
		case <-wake:
			return nil
		case <-w.t.conns.life.Done():
			return ErrNotReceived
		case <-t.C:
		}
		t.Reset(receiptPoll(polls))
	}
}

// receiptPoll is the pause after the given number of polls (the first one
// came 1 ms after the batch).
func receiptPoll(polls int) time.Duration {
	if polls == 0 {
		return 40 * time.Millisecond
	}
	return 10 * time.Millisecond
}

// leaveUnconfirmed gives up on what was not received: it stays queued for the
// channel's next connection.
func (w *wsConn) leaveUnconfirmed() {
	n := 0
	for _, u := range w.unconf {
		n += len(u.done.enqueued)
	}
	if n > 0 {
		w.t.metrics.wsUnconfirmed.Add(float64(n))
		w.t.log.Debug().Str("channel", w.ch.st.ID).Int("notifications", n).
			Msg("OMA-mode frames not acknowledged by the client's TCP stack; they stay queued")
	}
	w.unconf = nil
}
