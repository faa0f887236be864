package ceiling

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// The two subprotocols of a channel WebSocket.
const (
	protoOMA = "notificationchannel-netapi-rest.openmobilealliance.org"
	protoAck = "notifyrelay.ack.v1"
)

// wsConn is one channel socket: the hijack goroutine reads (acks), a writer
// goroutine sends each batch of pending notifications in one write.
type wsConn struct {
	ch     *channel
	conn   *websocket.Conn
	out    *flushConn
	ack    bool
	window int
	wake   chan struct{} // capacity 1
	done   chan struct{} // closed when the reader ends
}

func (w *wsConn) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// upgrade hijacks the request and runs the socket until it closes. The net/http
// style upgrader writes the 101 on the raw connection, under which flushConn
// gathers each batch of frames.
func (s *Server) upgrade(ctx *fasthttp.RequestCtx, c *channel) {
	req := &http.Request{Method: "GET", Header: http.Header{}}
	for _, k := range []string{"Connection", "Upgrade", "Sec-WebSocket-Version", "Sec-WebSocket-Key", "Sec-WebSocket-Protocol"} {
		req.Header.Set(k, string(ctx.Request.Header.Peek(k)))
	}
	w := &wsConn{ch: c, window: defaultWindow, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if n, err := strconv.Atoi(string(ctx.QueryArgs().Peek("window"))); err == nil && n > 0 {
		w.window = n
	}
	u := &websocket.Upgrader{Subprotocols: []string{protoAck, protoOMA}, CheckOrigin: func(*http.Request) bool { return true }}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(nc net.Conn) {
		w.out = &flushConn{Conn: nc}
		conn, err := u.Upgrade(hijacked{w.out}, req, nil)
		if err != nil {
			return
		}
		w.conn, w.ack = conn, conn.Subprotocol() == protoAck
		if s.track(w) {
			w.serve()
			s.untrack(w)
		}
		_ = conn.Close()
	})
}

func (s *Server) track(w *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.quit:
		return false
	default:
	}
	s.conns[w] = struct{}{}
	s.wg.Add(1) // before Close takes s.mu, so before its Wait
	return true
}

func (s *Server) untrack(w *wsConn) {
	s.mu.Lock()
	delete(s.conns, w)
	s.mu.Unlock()
	s.wg.Done()
}

// serve attaches the socket to its channel (closing the one it supersedes), runs
// the writer and reads until the socket ends.
func (w *wsConn) serve() {
	if old := w.ch.attach(w); old != nil {
		_ = old.conn.NetConn().Close()
	}
	var wg sync.WaitGroup
	wg.Go(w.writeLoop)
	w.kick()
	w.readLoop()
	close(w.done)
	wg.Wait()
	w.ch.detach(w)
}

func (w *wsConn) readLoop() {
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			return
		}
		if m, err := oma.ParseClientMessage(data, w.ack); err == nil && m.Kind == "ack" {
			w.ch.acked(m.Ack)
			w.kick()
		}
	}
}

func (w *wsConn) writeLoop() {
	for {
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
		for batch := w.ch.nextBatch(w); len(batch) > 0; batch = w.ch.nextBatch(w) {
			if err := w.writeBatch(batch); err != nil {
				_ = w.conn.NetConn().Close()
				return
			}
		}
	}
}

// writeBatch writes the notifications as frames (OMA mode: one per run of one
// format, as a notificationList when several) and sends them in one write.
func (w *wsConn) writeBatch(batch []note) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	w.out.hold()
	for len(batch) > 0 {
		frame, n := w.frame(batch)
		if err := w.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			_ = w.out.flush()
			return err
		}
		batch = batch[n:]
	}
	return w.out.flush()
}

// frame renders the next frame of batch and says how many notifications it holds.
func (w *wsConn) frame(batch []note) ([]byte, int) {
	if w.ack {
		b, _ := json.Marshal(struct {
			Seq          uint64 `json:"seq"`
			ContentType  string `json:"contentType"`
			Notification string `json:"notification"`
		}{batch[0].seq, batch[0].ctype, string(batch[0].body)})
		return b, 1
	}
	f, docs := runOf(batch, w.ch.maxN)
	if len(docs) == 1 {
		return docs[0], 1
	}
	return oma.MarshalNotificationList(f, docs), len(docs)
}

func (c *channel) attach(w *wsConn) *wsConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.ws
	c.ws, c.sent = w, 0 // acknowledged mode: what was not acknowledged comes again
	return old
}

func (c *channel) detach(w *wsConn) {
	c.mu.Lock()
	if c.ws == w {
		c.ws = nil
	}
	c.mu.Unlock()
}

// acked drops what the client acknowledged (never more than was sent).
func (c *channel) acked(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq = min(seq, c.sent)
	n := 0
	for n < len(c.pending) && c.pending[n].seq <= seq {
		n++
	}
	c.pending = c.pending[n:]
}

// nextBatch is what w writes next: in OMA mode up to maxBatch notifications, taken
// off the channel; in acknowledged mode those not yet sent that fit the window.
func (c *channel) nextBatch(w *wsConn) []note {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws != w {
		return nil
	}
	if !w.ack {
		n := min(len(c.pending), maxBatch)
		batch := c.pending[:n:n]
		c.pending = c.pending[n:]
		return batch
	}
	inflight := 0
	for inflight < len(c.pending) && c.pending[inflight].seq <= c.sent {
		inflight++
	}
	n := min(len(c.pending)-inflight, w.window-inflight, maxBatch)
	if n <= 0 {
		return nil
	}
	batch := append([]note(nil), c.pending[inflight:inflight+n]...)
	c.sent = batch[n-1].seq
	return batch
}

// flushConn is the socket under a WebSocket: between hold and flush it gathers
// what is written and sends it in one write (or more past its buffer); otherwise
// writes (the reader's pongs and close replies) go straight through.
type flushConn struct {
	net.Conn
	mu      sync.Mutex
	bw      *bufio.Writer
	holding bool
}

func (c *flushConn) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bw == nil {
		c.bw = bufio.NewWriterSize(c.Conn, 64<<10)
	}
	c.holding = true
}

func (c *flushConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		return c.bw.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *flushConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	return c.bw.Flush()
}

// hijacked is the http.ResponseWriter the upgrader needs: it only hijacks.
type hijacked struct{ conn net.Conn }

func (h hijacked) Header() http.Header         { return http.Header{} }
func (h hijacked) Write(p []byte) (int, error) { return h.conn.Write(p) }
func (h hijacked) WriteHeader(int)             {}

func (h hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReaderSize(h.conn, 16), bufio.NewWriterSize(h.conn, 16)), nil
}
