package app

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// bodyLimiter reads streamed request bodies for the router, once a request is
// admitted: at most max bytes each, into pooled buffers, and at most budget bytes
// for all requests together. A body counts for its declared Content-Length (max for
// a chunked one) from before it is read until its handler returns.
type bodyLimiter struct {
	max, budget int64
	inflight    atomic.Int64
	pool        bytebufferpool.Pool
}

// bodyLease is a read body's buffer and the bytes it counts for.
type bodyLease struct {
	buf *bytebufferpool.ByteBuffer
	n   int64
}

const bodyLeaseKey = "notifyrelay.bodyLease"

// errBodyTruncated is a body that ended (connection closed) before its length.
var errBodyTruncated = errors.New("request body cut short")

// read is the router's BodyReader: the body is left in ctx.PostBody().
func (l *bodyLimiter) read(ctx *fasthttp.RequestCtx) *oma.RequestError {
	declared := int64(ctx.Request.Header.ContentLength())
	if declared == 0 {
		ctx.Request.SetBodyRaw(nil)
		return nil
	}
	if declared > l.max {
		ctx.SetConnectionClose()
		return oma.TooLarge(int(l.max))
	}
	want := declared
	if want < 0 {
		want = l.max
	}
	if !l.reserve(want) {
		ctx.Response.Header.Set("Retry-After", "1")
		ctx.SetConnectionClose()
		return oma.Unavailable() // too many request bodies in flight
	}
	lease := &bodyLease{buf: l.pool.Get(), n: want}
	ctx.SetUserValue(bodyLeaseKey, lease)
	return l.fill(ctx, lease.buf, declared)
}

func (l *bodyLimiter) fill(ctx *fasthttp.RequestCtx, buf *bytebufferpool.ByteBuffer, declared int64) *oma.RequestError {
	_, err := buf.ReadFrom(io.LimitReader(ctx.Request.BodyStream(), l.max+1))
	switch {
	case int64(buf.Len()) > l.max:
		ctx.SetConnectionClose()
		return oma.TooLarge(int(l.max))
	case err == nil && declared > 0 && int64(buf.Len()) < declared:
		err = errBodyTruncated
	}
	if err != nil {
		ctx.SetConnectionClose()
		return oma.InvalidInput("request body (" + err.Error() + ")")
	}
	ctx.Request.SetBodyRaw(buf.B)
	return nil
}

func (l *bodyLimiter) reserve(n int64) bool {
	if l.inflight.Add(n) > l.budget {
		l.inflight.Add(-n)
		return false
	}
	return true
}

// release gives back what read took for ctx, once its handler has returned.
func (l *bodyLimiter) release(ctx *fasthttp.RequestCtx) {
	lease, ok := ctx.UserValue(bodyLeaseKey).(*bodyLease)
	if !ok {
		return
	}
	ctx.RemoveUserValue(bodyLeaseKey)
	ctx.Request.ResetBody() // it aliases the buffer
	l.pool.Put(lease.buf)
	l.inflight.Add(-lease.n)
}
