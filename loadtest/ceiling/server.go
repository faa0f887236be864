// Package ceiling is the load tester's reference server: a trivial, in-memory,
// non-durable server of the OMA subset the load scenarios use (chat groups,
// subscriptions and session data changes; notification channels over WebSocket,
// in both subprotocols, and long polling; operator deliveries; webhooks). The load
// tester runs the same load against it and against the real target: the ratio
// says what durability and the rest of the real server cost on this machine.
//
// It keeps nothing on disk, checks little, and delivers as directly as it can; it
// must not import the server's packages (the load tester is a pure client).
package ceiling

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// Server is one running reference server on 127.0.0.1.
type Server struct {
	base string // http://127.0.0.1:port
	ln   net.Listener
	srv  *fasthttp.Server
	hc   *fasthttp.Client // webhooks
	quit chan struct{}    // closed by Close: waits end, retries stop
	wg   sync.WaitGroup   // every goroutine the server starts
	ids  atomic.Uint64

	mu       sync.RWMutex
	subs     map[string][]*subscription // by user
	subByID  map[string]*subscription
	groups   map[string]*group
	channels map[string]*channel
	webhooks map[string]*webhook // by notifyURL + "\x00" + key
	conns    map[*wsConn]struct{}
}

// Start listens on a free port of 127.0.0.1 and serves until Close.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ceiling server: %w", err)
	}
	s := &Server{base: "http://" + ln.Addr().String(), ln: ln, quit: make(chan struct{}),
		subs: map[string][]*subscription{}, subByID: map[string]*subscription{}, groups: map[string]*group{},
		channels: map[string]*channel{}, webhooks: map[string]*webhook{}, conns: map[*wsConn]struct{}{},
		hc: &fasthttp.Client{MaxConnsPerHost: 256, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}}
	s.srv = &fasthttp.Server{Handler: s.route, Name: "notifyrelay-ceiling", ReadTimeout: time.Minute,
		IdleTimeout: time.Minute}
	s.wg.Go(func() { _ = s.srv.Serve(ln) })
	return s, nil
}

// URL is the server's base URL, the load tester's --target.
func (s *Server) URL() string { return s.base }

// Close ends waits, retries and sockets, stops the listener and waits for every
// goroutine.
func (s *Server) Close() {
	s.mu.Lock()
	close(s.quit)
	for c := range s.conns {
		_ = c.conn.NetConn().Close()
	}
	s.mu.Unlock()
	_ = s.srv.Shutdown()
	s.wg.Wait()
}

// route dispatches on the decoded path's segments.
func (s *Server) route(ctx *fasthttp.RequestCtx) {
	seg := strings.Split(strings.Trim(string(ctx.Path()), "/"), "/")
	m := string(ctx.Method())
	switch {
	case len(seg) == 4 && seg[0] == "notificationchannel" && seg[3] == "channels" && m == "POST":
		s.createChannel(ctx, seg[2])
	case len(seg) == 4 && seg[0] == "ceiling" && seg[1] == "channels":
		s.channelEndpoint(ctx, seg[2], seg[3])
	case len(seg) == 4 && seg[0] == "chat" && seg[3] == "subscriptions" && m == "POST":
		s.subscribe(ctx, seg[2])
	case len(seg) == 4 && seg[0] == "chat" && seg[3] == "group" && m == "POST":
		s.createGroup(ctx, seg[2])
	case len(seg) == 6 && seg[0] == "chat" && seg[3] == "group" && seg[5] == "messages" && m == "POST":
		s.changeSession(ctx, seg[2], seg[4])
	case len(seg) == 3 && seg[0] == "relay" && seg[2] == "deliveries" && m == "POST":
		s.relay(ctx)
	case len(seg) == 5 && m == "DELETE":
		s.remove(ctx, seg[0], seg[3], seg[4])
	default:
		fail(ctx, oma.NotFound(string(ctx.Path())))
	}
}

// remove deletes a subscription or a channel; anything else is gone already.
func (s *Server) remove(ctx *fasthttp.RequestCtx, api, kind, id string) {
	switch {
	case api == "chat" && kind == "subscriptions":
		s.unsubscribe(id)
	case api == "notificationchannel" && kind == "channels":
		s.deleteChannel(id)
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) newID() string { return strconv.FormatUint(s.ids.Add(1), 36) }

// requestFormat is the body's format (JSON unless it says XML).
func requestFormat(ctx *fasthttp.RequestCtx) oma.Format {
	f, _ := oma.FormatOf(string(ctx.Request.Header.ContentType()))
	return f
}

// created answers 201 with Location and a resourceReference.
func created(ctx *fasthttp.RequestCtx, loc string) {
	ctx.Response.Header.Set("Location", loc)
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.SetBody(oma.MarshalResourceReference(oma.JSON, loc))
}

func fail(ctx *fasthttp.RequestCtx, e *oma.RequestError) {
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(e.Status)
	ctx.SetBody(e.Marshal(oma.JSON))
}

// sleep waits d or until Close; false means closed.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.quit:
		return false
	case <-t.C:
		return true
	}
}
