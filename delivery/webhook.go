package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"notifyrelay/config"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// maxResponseBody is how much of a receiver's response body is read (and kept as
// the last error); the rest is discarded with the connection.
const maxResponseBody = 4 << 10

// webhookClient sends one attempt at a time per call: POST, no redirects, a
// per-attempt deadline, keep-alive connections bounded per host.
type webhookClient struct {
	client  *fasthttp.Client
	timeout time.Duration
	sign    signer
	conns   *connTracker
}

// attemptResult is what came back from one POST.
type attemptResult struct {
	status     int
	retryAfter string // the Retry-After header, if any
	body       []byte // at most maxResponseBody bytes
	err        error  // no usable response
	took       time.Duration
}

func newWebhookClient(cfg config.Delivery, keys [][]byte) *webhookClient {
	w := &webhookClient{timeout: cfg.Timeout.D(), sign: signer{keys: keys}, conns: &connTracker{}}
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivateTargets {
		dialer.Control = refusePrivateDial
	}
	w.client = &fasthttp.Client{
		Name:                   "notifyrelay",
		DialTimeout:            w.conns.dialer(dialer),
		MaxConnsPerHost:        cfg.MaxConnsPerHost,
		MaxConnWaitTimeout:     cfg.Timeout.D(),
		MaxIdleConnDuration:    60 * time.Second,
		DisablePathNormalizing: true,
		StreamResponseBody:     true, // so we read at most maxResponseBody
		RetryIfErr:             retryStaleConn,
	}
	return w
}

// retryStaleConn resends once when a kept-alive connection turned out to be closed
// by the receiver before any response byte: the usual idle-close race. The
// receiver may then see the notification twice, which at-least-once allows.
func retryStaleConn(_ *fasthttp.Request, attempts int, err error) (bool, bool) {
	return false, attempts < 2 && (errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF))
}

// post sends e's envelope env to url with the stable id as webhook-id and e's
// place in its destination as the gap detection headers. The custom headers go
// first, so that nothing they hold can replace the signature's.
func (w *webhookClient) post(url string, e queue.Entry, env oma.Envelope, custom [][2]string) attemptResult {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	for _, h := range custom {
		req.Header.Set(h[0], h[1])
	}
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType(env.ContentType)
	req.Header.Set("Accept", acceptFor(env.ContentType))
	if env.Traceparent != "" { // the attempt's trace context (W3C), or the producer's when tracing is off
		req.Header.Set("traceparent", env.Traceparent)
	}
	for _, h := range w.sign.headers(e.ID, time.Now(), e.Seq, e.PrevSeq(), env.Body) {
		req.Header.Set(h[0], h[1])
	}
	req.SetBodyRaw(env.Body)
	start := time.Now()
	err := w.client.DoDeadline(req, resp, start.Add(w.timeout))
	res := attemptResult{err: err}
	if err == nil {
		res.status = resp.StatusCode()
		res.retryAfter = string(resp.Header.Peek("Retry-After"))
		res.body, res.err = readPrefix(resp)
	}
	res.took = time.Since(start)
	return res
}

// readPrefix reads at most maxResponseBody bytes of a streamed body. A longer body
// is cut (closing the connection), which is not a failure of the attempt.
func readPrefix(resp *fasthttp.Response) ([]byte, error) {
	stream := resp.BodyStream()
	if stream == nil {
		return append([]byte(nil), resp.Body()...), nil
	}
	body, err := io.ReadAll(io.LimitReader(stream, maxResponseBody+1))
	if len(body) > maxResponseBody {
		body = body[:maxResponseBody]
		if c, ok := stream.(fasthttp.ReadCloserWithError); ok {
			_ = c.CloseWithError(fasthttp.ErrBodyTooLarge)
			return body, nil
		}
	}
	if closeErr := resp.CloseBodyStream(); err == nil {
		err = closeErr
	}
	if err != nil {
		return body, fmt.Errorf("read response body: %w", err)
	}
	return body, nil
}

// acceptFor is the Accept header matching a notification's Content-Type.
func acceptFor(contentType string) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		return mt
	}
	return "*/*"
}

// describe is the attempt as the last error a delivery record and the queue keep.
func (a attemptResult) describe() string {
	if a.status == 0 {
		return a.err.Error()
	}
	s := fmt.Sprintf("HTTP %d", a.status)
	if len(a.body) > 0 {
		s += ": " + strings.ToValidUTF8(string(a.body), string(utf8.RuneError))
	}
	return s
}

// connTracker knows every open webhook connection so a shutdown that runs out of
// time can cut in-flight attempts short (fasthttp's client takes no context).
type connTracker struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	t    *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.t.remove(c) })
	return c.Conn.Close()
}

func (t *connTracker) dialer(d *net.Dialer) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, hideResolver(err)
		}
		tc := &trackedConn{Conn: conn, t: t}
		t.mu.Lock()
		if t.conns == nil {
			t.conns = map[*trackedConn]struct{}{}
		}
		t.conns[tc] = struct{}{}
		t.mu.Unlock()
		return tc, nil
	}
}

func (t *connTracker) remove(c *trackedConn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// abortAll makes every pending read and write on every connection fail now.
func (t *connTracker) abortAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		_ = c.SetDeadline(time.Unix(1, 0))
	}
}
