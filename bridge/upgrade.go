package bridge

import (
	"bufio"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// The upgrade keeps nothing of fasthttp per socket. fasthttp's own WebSocket path
// would keep, for the socket's life, the connection's 4 KiB request reader (the
// socket reads through it) and, while its hijack goroutine runs, the RequestCtx.
// Instead the handshake is checked here, the connection hijacked without a
// response, and the 101 written by the net/http-style upgrader straight on the
// TCP connection; the hijack handler returns at once, so fasthttp releases its
// context and reader. This needs fasthttp.Server.KeepHijackedConns (see Routes).

// checkUpgrade refuses what is not a WebSocket handshake, before any hijack.
func checkUpgrade(ctx *fasthttp.RequestCtx) *oma.RequestError {
	h := &ctx.Request.Header
	switch {
	case !hasToken(h.Peek("Connection"), "upgrade"):
		return oma.InvalidValue("Connection", "Upgrade")
	case !hasToken(h.Peek("Upgrade"), "websocket"):
		return oma.InvalidValue("Upgrade", "websocket")
	case !hasToken(h.Peek("Sec-WebSocket-Version"), "13"):
		return oma.InvalidValue("Sec-WebSocket-Version", "13")
	}
	key, err := base64.StdEncoding.DecodeString(string(h.Peek("Sec-WebSocket-Key")))
	if err != nil || len(key) != 16 {
		return oma.InvalidInput("Sec-WebSocket-Key (16 bytes in base64 needed)")
	}
	return nil
}

func hasToken(header []byte, token string) bool {
	for _, t := range strings.Split(string(header), ",") {
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// upgradeRequest copies what the upgrader reads of the handshake (ctx is reused
// once the hijack handler returns).
func upgradeRequest(ctx *fasthttp.RequestCtx, proto string) *http.Request {
	h := http.Header{}
	for _, k := range []string{"Connection", "Upgrade", "Sec-WebSocket-Version", "Sec-WebSocket-Key"} {
		h.Set(k, string(ctx.Request.Header.Peek(k)))
	}
	h.Set("Sec-WebSocket-Protocol", proto)
	return &http.Request{Method: http.MethodGet, Header: h}
}

// wrapRawConn, when set (tests only), wraps each hijacked connection, e.g. to
// count the writes that reach the socket.
var wrapRawConn func(net.Conn) net.Conn

// upgrade hijacks the connection and hands the socket to w on its own goroutine.
func (t *wsTransport) upgrade(ctx *fasthttp.RequestCtx, w *wsConn, proto string) {
	req := upgradeRequest(ctx, proto)
	u := &websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   256, // client frames are small; larger ones are read in pieces
		WriteBufferSize:  16 << 10,
		WriteBufferPool:  &writeBuffers,
		Subprotocols:     []string{proto},
		CheckOrigin:      func(*http.Request) bool { return true }, // checked before
	}
	// Nothing is written from ctx (the 101 goes straight on the connection); the
	// status is set for the request metrics and logs.
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(nc net.Conn) {
		// A client sends no frame before the 101, so fasthttp's reader holds nothing.
		raw := nc
		if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
			raw = u.UnsafeConn()
		}
		if wrapRawConn != nil {
			raw = wrapRawConn(raw)
		}
		// Before the 101: a client that dials again once it has its 101 always
		// supersedes this socket, never the reverse.
		w.takeChannel()
		w.out = &batchConn{Conn: raw}
		conn, err := u.Upgrade(hijacked{w.out}, req, nil)
		if err != nil {
			w.ch.detach(w)
			_ = raw.Close()
			return
		}
		if !t.conns.track(w, nil) { // draining since the handshake
			w.ch.detach(w)
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(closeGoingAway, "server shutting down"), time.Now().Add(closeGrace))
			_ = conn.Close()
			return
		}
		go w.serve(conn)
	})
}

// hijacked is the http.ResponseWriter the upgrader needs: it only hijacks (the
// handshake was checked before, so the upgrader writes no error response).
type hijacked struct{ conn net.Conn }

func (h hijacked) Header() http.Header         { return http.Header{} }
func (h hijacked) Write(p []byte) (int, error) { return h.conn.Write(p) }
func (h hijacked) WriteHeader(int)             {}

func (h hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReaderSize(h.conn, 16), bufio.NewWriterSize(h.conn, 16)), nil
}
