package bridge

import (
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/fasthttp/websocket"

	"notifyrelay/oma"
	"notifyrelay/queue"
)

// sent is one notification written in acknowledged mode and not yet acknowledged.
type sent struct {
	seq         uint64
	tag         string
	traceparent string
	enqueued    time.Time
}

// Work for the writer, set by kick.
const (
	workQueue uint8 = 1 << iota // notifications appended, or the client acknowledged some
	workCtl                     // a reply (connAck) is waiting in ctl
	workPing                    // the ping timer fired
	workStop                    // stop was called: send the close frame and end
)

// kick hands work to the connection's writer, starting it if it is not running.
// An idle socket has no writer goroutine: the queue's watch callback, the reader
// and the ping timer start one when there is something to write, and it ends
// when nothing is left. Never blocks.
func (w *wsConn) kick(work uint8) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.ended {
		return
	}
	w.work |= work
	if w.open && !w.running {
		w.running = true
		go w.runWriter()
	} else if w.running {
		select { // a writer waiting for receipts (awaitReceipt) writes first
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// takeWork returns the pending work, or false (and the writer ends) when there is
// none and no batch waits for its receipt (then work is 0). After workStop no
// writer starts again.
func (w *wsConn) takeWork() (uint8, bool) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	work := w.work
	w.work = 0
	if work == 0 && len(w.unconf) > 0 {
		return 0, true
	}
	if work == 0 {
		w.running = false
		return 0, false
	}
	if work&workStop != 0 {
		w.ended = true
	}
	return work, true
}

// runWriter is the connection's only writer while it runs (kick starts at most one
// at a time). It sends what is pending (up to send_buffer per batch), answers
// connChecks and pings, and in OMA mode waits for the receipt of what it wrote
// (receipt.go) when it has nothing else to do. A write (or receipt) that does not
// come within channels.write_timeout means the client stopped reading: it is
// disconnected with 1013 and its notifications stay queued.
func (w *wsConn) runWriter() {
	for {
		work, ok := w.takeWork()
		if !ok {
			return
		}
		if work&workStop != 0 {
			w.finish()
			return
		}
		var err error
		if work == 0 {
			err = w.awaitReceipt(0, w.wake, time.Time{})
		} else {
			err = w.doWork(work)
		}
		if err != nil {
			w.failed(err)
		}
	}
}

// doWork writes everything pending as one batch: whatever it writes reaches the
// socket in one write (two or more only past batchBytes), flushed before anything
// written is acknowledged.
func (w *wsConn) doWork(work uint8) error {
	w.out.hold()
	err := w.writeWork(work)
	if ferr := w.flush(); err == nil {
		err = ferr
	}
	return err
}

func (w *wsConn) writeWork(work uint8) error {
	if work&workCtl != 0 {
		if err := w.writeReplies(); err != nil {
			return err
		}
	}
	if work&workPing != 0 {
		w.ping.Reset(pingPeriod)
		if err := w.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(w.t.cfg.WriteTimeout.D())); err != nil {
			return err
		}
	}
	// The in-memory depth spares an idle socket a disk read.
	if work&workQueue == 0 || (w.t.q.DestStats(w.ch.dest()).Depth == 0 && w.ackReq.Load() == 0) {
		return nil
	}
	var err error
	if w.ack {
		w.inflight, w.cursor, err = w.pumpAck(w.inflight, w.cursor)
	} else {
		w.cursor, err = w.pumpOMA(w.cursor)
	}
	return err
}

func (w *wsConn) writeReplies() error {
	for {
		select {
		case msg := <-w.ctl:
			if err := w.write(msg); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// failed ends the connection after a write or queue error.
func (w *wsConn) failed(err error) {
	var ne net.Error
	w.broken = true
	if errors.As(err, &ne) && ne.Timeout() {
		w.t.metrics.slow.Inc()
		w.t.log.Info().Str("channel", w.ch.st.ID).Msg("slow WebSocket client disconnected")
		w.stop(closeTryLater, "client too slow: reconnect to resume")
	} else {
		w.stop(closeNormal, "")
	}
}

// finish sends the close frame; a broken connection is closed at once. What was
// written in OMA mode and is not known received by then (closeGrace at most)
// stays queued.
func (w *wsConn) finish() {
	defer close(w.writerDone)
	defer w.leaveUnconfirmed()
	if !w.broken {
		w.sendClose(closeGrace)
		_ = w.awaitReceipt(0, nil, time.Now().Add(closeGrace))
		return
	}
	w.sendClose(100 * time.Millisecond)
	_ = w.confirm()
	_ = w.conn.NetConn().Close()
}

// sendClose sends the close frame and gives the peer closeGrace to answer before
// the reader gives up.
func (w *wsConn) sendClose(wait time.Duration) {
	msg := websocket.FormatCloseMessage(w.closeCode, w.closeText)
	_ = w.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait))
	_ = w.conn.SetReadDeadline(time.Now().Add(closeGrace))
}

// write hands a frame to the socket's batch (see doWork).
func (w *wsConn) write(frame []byte) error {
	if err := w.conn.SetWriteDeadline(time.Now().Add(w.t.cfg.WriteTimeout.D())); err != nil {
		return err
	}
	if err := w.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		return err
	}
	w.heldFrames++
	w.heldBytes += len(frame)
	return nil
}

// flush sends the batch and counts its frames as sent.
func (w *wsConn) flush() error {
	err := w.out.flush(w.t.cfg.WriteTimeout.D())
	if err == nil {
		w.t.metrics.sent(w.mode(), w.heldFrames, w.heldBytes)
	}
	w.heldFrames, w.heldBytes = 0, 0
	return err
}

// flushHold flushes the batch and starts the next one.
func (w *wsConn) flushHold() error {
	err := w.flush()
	w.out.hold()
	return err
}

// pumpOMA sends everything pending in OMA mode: one frame per run of same-format
// notifications (a bare document for one, a notificationList for several), each
// batch acknowledged once the client received it (flushed). A failed write
// acknowledges nothing of its batch: the notifications may come again, never go
// missing.
func (w *wsConn) pumpOMA(cursor uint64) (uint64, error) {
	dest, max := w.ch.dest(), w.t.cfg.SendBuffer
	for {
		es, err := w.t.q.Read(w.t.conns.life, dest, cursor, max)
		if err != nil || len(es) == 0 {
			return cursor, err
		}
		var done delivered
		for rest := es; len(rest) > 0; {
			run := leadingRun(rest, w.ch.st.MaxNotifications)
			if err := w.write(omaFrame(run)); err != nil {
				return cursor, err
			}
			done.addRun(run)
			rest = rest[len(run):]
		}
		if err := w.flushHold(); err != nil {
			return cursor, err
		}
		cursor = es[len(es)-1].Seq
		if err := w.flushed(cursor, done); err != nil {
			return cursor, err
		}
		if len(es) < max {
			return cursor, nil
		}
	}
}

func omaFrame(run []pending) []byte {
	if len(run) == 1 {
		return run[0].env.Body
	}
	docs := make([][]byte, len(run))
	for i, p := range run {
		docs[i] = p.env.Body
	}
	return oma.MarshalNotificationList(run[0].format, docs)
}

// ackFrame is a notification in acknowledged mode. PrevSeq is the seq of the
// notification before it in the channel (0: none): a client that never got it
// has missed something (gap detection, docs/channels.md).
type ackFrame struct {
	Seq          uint64 `json:"seq"`
	PrevSeq      uint64 `json:"prevSeq"`
	ContentType  string `json:"contentType"`
	Notification string `json:"notification"`
}

// pumpAck applies the client's acks, then sends pending notifications while the
// window has room, one batch per read. A new connection starts at the queue's head: the first
// notification not acknowledged.
func (w *wsConn) pumpAck(inflight []sent, cursor uint64) ([]sent, uint64, error) {
	inflight = w.applyAcks(inflight)
	dest := w.ch.dest()
	for room := w.window - len(inflight); room > 0; room = w.window - len(inflight) {
		es, err := w.t.q.Read(w.t.conns.life, dest, cursor, min(room, w.t.cfg.SendBuffer))
		if err != nil || len(es) == 0 {
			return inflight, cursor, err
		}
		for _, e := range es {
			env, err := oma.UnmarshalEnvelope(e.Data)
			if err != nil {
				env = oma.Envelope{ContentType: "application/octet-stream", Body: e.Data}
			}
			frame, _ := json.Marshal(ackFrame{Seq: e.Seq, PrevSeq: e.PrevSeq(), ContentType: env.ContentType, Notification: string(env.Body)})
			// Before the write: the client may ack the frame before Write returns.
			w.sentSeq.Store(e.Seq)
			if err := w.write(frame); err != nil {
				return inflight, cursor, err
			}
			cursor = e.Seq
			inflight = append(inflight, sent{seq: e.Seq, tag: env.Tag, traceparent: env.Traceparent, enqueued: e.Enqueued})
		}
		if err := w.flushHold(); err != nil {
			return inflight, cursor, err
		}
	}
	return inflight, cursor, nil
}

// applyAcks acknowledges in the queue what the client acknowledged and settles it.
func (w *wsConn) applyAcks(inflight []sent) []sent {
	a := w.ackReq.Load()
	n := 0
	for n < len(inflight) && inflight[n].seq <= a {
		n++
	}
	if n == 0 {
		return inflight
	}
	var done delivered
	for _, s := range inflight[:n] {
		done.add(s.tag, s.traceparent, s.enqueued)
	}
	w.t.acks.delivered(w.t.conns.life, w.ch.dest(), a, done)
	return append(inflight[:0], inflight[n:]...)
}

// watch calls fn whenever something is appended to dest, without a goroutine when
// the queue engine can (queue.FuncWatcher). The returned stop waits for the
// fallback goroutine.
func watch(q socketQueue, dest string, fn func()) (stop func()) {
	if fw, ok := q.(queue.FuncWatcher); ok {
		return fw.WatchFunc(dest, fn)
	}
	wake, stopWatch := q.Watch(dest)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-wake:
				fn()
			case <-quit:
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		stopWatch()
	}
}
