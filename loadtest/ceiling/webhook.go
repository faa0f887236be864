package ceiling

import (
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// note is one notification on its way: its media type and body.
type note struct {
	ctype string
	body  []byte
	seq   uint64 // in its channel (channels only)
}

// dest is where notifications for one notifyURL go, in order.
type dest interface{ push(n note) }

// destFor is the destination of notifyURL (and key, for operator deliveries): one
// of this server's channels when it is their callbackURL (no HTTP hop), else a
// webhook.
func (s *Server) destFor(notifyURL, key string) dest {
	if id, ok := s.callbackChannel(notifyURL); ok {
		s.mu.RLock()
		c := s.channels[id]
		s.mu.RUnlock()
		if c != nil {
			return c
		}
	}
	k := notifyURL + "\x00" + key
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.webhooks[k]
	if w == nil {
		w = &webhook{s: s, url: notifyURL}
		s.webhooks[k] = w
	}
	return w
}

// callbackChannel returns the channel id of one of this server's callbackURLs.
func (s *Server) callbackChannel(u string) (string, bool) {
	rest, ok := strings.CutPrefix(u, s.base+"/ceiling/channels/")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "/callback")
}

// webhook POSTs its notifications one at a time, in order, retrying a failed
// attempt (any non-2xx, any error) until it succeeds or the server closes. A
// goroutine runs only while something is queued.
type webhook struct {
	s       *Server
	url     string
	mu      sync.Mutex
	q       []note
	running bool
}

func (w *webhook) push(n note) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.q = append(w.q, n)
	if !w.running {
		w.running = true
		w.s.wg.Go(w.run)
	}
}

func (w *webhook) run() {
	for {
		n, ok := w.head()
		if !ok || !w.deliver(n) {
			return
		}
		w.mu.Lock()
		w.q = w.q[1:]
		w.mu.Unlock()
	}
}

// head is the next notification; false (and the goroutine ends) when none.
func (w *webhook) head() (note, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.q) == 0 {
		w.q, w.running = nil, false
		return note{}, false
	}
	return w.q[0], true
}

// deliver POSTs n until a 2xx; false when the server closed first.
func (w *webhook) deliver(n note) bool {
	backoff := time.Millisecond
	for !w.post(n) {
		if !w.s.sleep(backoff) {
			return false
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
	return true
}

func (w *webhook) post(n note) bool {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(w.url)
	req.Header.SetMethod("POST")
	req.Header.SetContentType(n.ctype)
	req.SetBodyRaw(n.body)
	err := w.s.hc.DoTimeout(req, resp, 10*time.Second)
	return err == nil && resp.StatusCode()/100 == 2
}

// relay: POST /relay/v1/deliveries?notifyURL=…&key=… queues the body for
// (notifyURL, key) and answers 202.
func (s *Server) relay(ctx *fasthttp.RequestCtx) {
	u := string(ctx.QueryArgs().Peek("notifyURL"))
	if u == "" {
		fail(ctx, oma.InvalidInput("notifyURL"))
		return
	}
	body := append([]byte(nil), ctx.PostBody()...)
	s.destFor(u, string(ctx.QueryArgs().Peek("key"))).push(note{ctype: string(ctx.Request.Header.ContentType()), body: body})
	ctx.Response.Header.Set("Location", s.base+"/relay/v1/deliveries/"+s.newID())
	ctx.SetStatusCode(fasthttp.StatusAccepted)
}
