package loadtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// sink is the tool's own webhook receiver: one fasthttp server on 127.0.0.1 (or
// --listen) where receiver r is the path /r/<r>. It answers 204, or 503 for a
// --fail-rate fraction of attempts, which the server must retry.
type sink struct {
	ln       net.Listener
	srv      *fasthttp.Server
	base     string
	failRate float64
	handle   func(receiver string, body []byte, now time.Time)
	wg       sync.WaitGroup
}

func newSink(addr string, failRate float64, handle func(receiver string, body []byte, now time.Time)) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("webhook receivers: %w", err)
	}
	s := &sink{ln: ln, base: "http://" + ln.Addr().String(), failRate: failRate, handle: handle}
	s.srv = &fasthttp.Server{Handler: s.serve, Name: "notifyrelay-loadtest", ReadTimeout: time.Minute,
		IdleTimeout: time.Minute, Concurrency: 1 << 20}
	s.wg.Go(func() { _ = s.srv.Serve(ln) })
	return s, nil
}

// URL is receiver's notifyURL.
func (s *sink) URL(receiver string) string { return s.base + "/r/" + receiver }

func (s *sink) serve(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	receiver, ok := strings.CutPrefix(string(ctx.Path()), "/r/")
	if !ok || !ctx.IsPost() {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	if s.failRate > 0 && rand.Float64() < s.failRate {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		return
	}
	s.handle(receiver, ctx.PostBody(), now)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// Close stops the server and waits for it.
func (s *sink) Close() {
	_ = s.srv.Shutdown()
	s.wg.Wait()
}
