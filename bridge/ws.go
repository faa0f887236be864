package bridge

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// The two subprotocols of a channel WebSocket (docs/api.md §4.2).
const (
	ProtocolOMA = "notificationchannel-netapi-rest.openmobilealliance.org"
	ProtocolAck = "notifyrelay.ack.v1"
)

// Close codes the server sends.
const (
	closeNormal    = websocket.CloseNormalClosure // channel deleted, socket superseded
	closeGoingAway = websocket.CloseGoingAway     // server shutting down
	closePolicy    = websocket.ClosePolicyViolation
	closeTryLater  = websocket.CloseTryAgainLater // slow client: its notifications stay queued
)

// Connection timing. pingPeriod < pongWait, as in gorilla's chat example.
const (
	pongWait       = 60 * time.Second
	pingPeriod     = 50 * time.Second
	closeGrace     = time.Second // how long a closing socket waits for the peer's close
	maxClientFrame = 16 << 10    // connCheck, connAck and acks are tiny
)

// writeBuffers lends write buffers to sockets only while they write, so an idle
// socket holds none.
var writeBuffers sync.Pool

// socketQueue is what the WebSocket transport uses of the queue: a channel's
// depth, its entries, and a wake-up when more come (a callback when the engine is
// a queue.FuncWatcher).
type socketQueue interface {
	Read(ctx context.Context, dest string, after uint64, max int) ([]queue.Entry, error)
	DestStats(dest string) queue.DestStats
	Watch(dest string) (wake <-chan struct{}, stop func())
}

// channelStore is what the transports use of the channel store.
type channelStore interface {
	// ownChannel finds the request's {channelId} among its user's channels.
	ownChannel(r *api.Request) (*channel, *oma.RequestError)
	// refresh restarts c's lifetime durably and returns the lifetime in force.
	refresh(ctx context.Context, c *channel, lifetime int) (int, error)
}

// wsTransport serves channel WebSockets: the handshake, the upgrade, and each
// socket's reader and writer (wsConn).
type wsTransport struct {
	cfg      config.Channels
	public   string // public_url: its origin is always allowed
	q        socketQueue
	channels channelStore
	acks     *acker
	conns    *connSet
	metrics  *metrics
	log      zerolog.Logger
}

// handleWS checks the handshake (401, 403, 404, 400 before any upgrade) and
// upgrades. The fasthttp hijack goroutine becomes the connection's reader.
func (t *wsTransport) handleWS(r *api.Request) (api.Answer, *oma.RequestError) {
	ctx := r.RequestCtx
	c, proto, window, rerr := t.checkHandshake(r)
	if rerr == nil {
		rerr = checkUpgrade(ctx)
	}
	if rerr != nil {
		return api.Answer{}, rerr
	}
	w := &wsConn{t: t, ch: c, ack: proto == ProtocolAck, window: window,
		ctl: make(chan []byte, 4), writerDone: make(chan struct{}), wake: make(chan struct{}, 1)}
	if t.conns.isDraining() {
		return api.Answer{}, oma.Unavailable()
	}
	t.upgrade(ctx, w, proto)
	return api.Handled(), nil
}

func (t *wsTransport) checkHandshake(r *api.Request) (*channel, string, int, *oma.RequestError) {
	ctx := r.RequestCtx
	c, rerr := t.channels.ownChannel(r)
	if rerr == nil && c.st.Type != oma.ChannelWebSockets {
		rerr = oma.NotFound(api.RequestPath(ctx))
	}
	if rerr != nil {
		return nil, "", 0, rerr
	}
	if !t.originAllowed(string(ctx.Request.Header.Peek("Origin"))) {
		return nil, "", 0, oma.Forbidden("origin " + string(ctx.Request.Header.Peek("Origin")) + " not allowed (channels.allowed_origins lists the allowed ones)")
	}
	proto := pickProtocol(string(ctx.Request.Header.Peek("Sec-WebSocket-Protocol")))
	if proto == "" {
		return nil, "", 0, oma.InvalidValue("Sec-WebSocket-Protocol", ProtocolOMA, ProtocolAck)
	}
	window, rerr := t.window(ctx)
	return c, proto, window, rerr
}

func pickProtocol(header string) string {
	for _, p := range strings.Split(header, ",") {
		if p = strings.TrimSpace(p); p == ProtocolAck || p == ProtocolOMA {
			return p
		}
	}
	return ""
}

// window is ?window= (acknowledged mode), capped at channels.max_window.
func (t *wsTransport) window(ctx *fasthttp.RequestCtx) (int, *oma.RequestError) {
	s := string(ctx.QueryArgs().Peek("window"))
	if s == "" {
		return t.cfg.Window, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, oma.InvalidInput("window (a positive integer needed)")
	}
	return min(n, t.cfg.MaxWindow), nil
}

// originAllowed: no Origin (not a browser), public_url's own origin, or a listed one.
func (t *wsTransport) originAllowed(origin string) bool {
	return api.OriginAllowed(origin, t.public, t.cfg.AllowedOrigins)
}

// wsConn is one channel WebSocket: the hijack goroutine reads (serve); a writer
// goroutine runs only while there is something to write (kick).
type wsConn struct {
	t      *wsTransport
	ch     *channel
	conn   *websocket.Conn
	out    *batchConn // the socket under conn
	ack    bool       // acknowledged mode
	window int

	stopOnce   sync.Once
	closeCode  int
	closeText  string
	ctl        chan []byte // replies (connAck) for the writer
	writerDone chan struct{}

	sentSeq atomic.Uint64 // highest seq written (acknowledged mode): acks above it are refused
	ackReq  atomic.Uint64 // highest seq the client acknowledged

	wmu     sync.Mutex    // guards the writer's lifecycle below
	work    uint8         // workQueue | workCtl | ...
	open    bool          // serve has the socket: writers may start
	running bool          // a writer goroutine runs
	wake    chan struct{} // work for a writer waiting for receipts
	ended   bool          // the writer took workStop: none starts again

	// Owned by the running writer.
	ping     *time.Timer // kicks workPing every pingPeriod
	inflight []sent      // acknowledged mode: written, not yet acknowledged
	cursor   uint64      // last seq written
	receipt  bool        // OMA mode: a batch is acknowledged once received (receipt.go)
	unconf   []unconfirmed
	broken   bool // a write failed: close without waiting for the peer
	// Frames in the unflushed batch, counted as sent once flushed.
	heldFrames, heldBytes int
}

// abort closes the socket under w at once, so that its blocked reads and writes
// return (Stop's last resort after shutdown_timeout).
func (w *wsConn) abort() { _ = w.out.Conn.Close() }

// stop asks the connection to close with code; the first call wins.
func (w *wsConn) stop(code int, text string) {
	w.stopOnce.Do(func() {
		w.closeCode, w.closeText = code, text
		w.kick(workStop)
	})
}

// serve is the connection's reader goroutine, started once the 101 is written, the
// connection tracked and the channel taken (takeChannel): it watches the channel's
// queue, reads until the connection ends, then waits for the writer's close.
//
// The connection is tracked from the hijack handler, not before the upgrade:
// fasthttp skips the handler when it cannot hijack, and a count taken earlier
// would then never be given back (Stop would wait for its timeout).
func (w *wsConn) serve(conn *websocket.Conn) {
	t := w.t
	defer t.conns.untrack(w, nil)
	defer conn.Close()
	w.conn = conn
	if !w.ack {
		_, w.receipt = WrittenBytes(w.out.Conn)
	}
	mode := w.mode()
	t.metrics.connected(mode, 1)
	defer t.metrics.connected(mode, -1)
	w.wmu.Lock() // the timer's kick takes wmu: it sees w.ping set
	w.ping = time.AfterFunc(pingPeriod, func() { w.kick(workPing) })
	w.open = true
	w.wmu.Unlock()
	defer w.ping.Stop()
	defer w.ch.detach(w) // attached by the hijack handler
	if _, err := t.channels.refresh(t.conns.life, w.ch, 0); err != nil {
		t.log.Warn().Err(err).Str("channel", w.ch.st.ID).Msg("refreshing lifetime on connect")
	}
	stopWatch := watch(t.q, w.ch.dest(), func() { w.kick(workQueue) })
	defer stopWatch()
	w.kick(workQueue) // the backlog
	w.readLoop()
	w.stop(closeNormal, "")
	<-w.writerDone
}

func (w *wsConn) mode() string {
	if w.ack {
		return "ack"
	}
	return "oma"
}

// takeChannel makes w the channel's socket and closes the one it supersedes.
func (w *wsConn) takeChannel() {
	if old := w.ch.attach(w); old != nil {
		old.stop(closeNormal, "superseded by a newer connection")
	}
}

// attach makes w the channel's socket and returns the one it supersedes.
func (c *channel) attach(w *wsConn) *wsConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.conn
	c.conn = w
	if c.gone.Load() {
		w.stop(closeNormal, "channel deleted")
	}
	return old
}

func (c *channel) detach(w *wsConn) {
	c.mu.Lock()
	if c.conn == w {
		c.conn = nil
	}
	c.mu.Unlock()
}

// readLoop reads client frames until an error or a close.
func (w *wsConn) readLoop() {
	w.conn.SetReadLimit(maxClientFrame)
	_ = w.conn.SetReadDeadline(time.Now().Add(pongWait))
	w.conn.SetPongHandler(func(string) error { return w.conn.SetReadDeadline(time.Now().Add(pongWait)) })
	w.limitPings()
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = w.conn.SetReadDeadline(time.Now().Add(pongWait))
		if !w.handle(data) {
			return
		}
	}
}

// handle acts on one client frame; false ends the connection.
func (w *wsConn) handle(data []byte) bool {
	m, err := oma.ParseClientMessage(data, w.ack)
	if err != nil {
		w.stop(closePolicy, "unexpected message")
		return false
	}
	switch m.Kind {
	case "connCheck":
		lifetime, err := w.t.channels.refresh(w.t.conns.life, w.ch, 0)
		if err != nil {
			w.stop(closeTryLater, "server busy")
			return false
		}
		f := m.Format
		if w.ack {
			f = oma.JSON
		}
		select {
		case w.ctl <- oma.MarshalConnAck(f, lifetime):
			w.kick(workCtl)
		default:
			w.stop(closePolicy, "too many connCheck")
			return false
		}
	case "ack":
		// An ack above what this socket sent is stale (from an earlier socket,
		// already applied) or claims everything sent: clamp it.
		if a := min(m.Ack, w.sentSeq.Load()); a > w.ackReq.Load() {
			w.ackReq.Store(a)
		}
		w.kick(workQueue)
	}
	return true
}
