package api

import (
	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// Admit decides from the route and the headers alone whether a request's body may
// be read: a request that is refused costs no memory for its body.
type Admit func(ctx *fasthttp.RequestCtx, p Params) *oma.RequestError

// BodyReader reads an admitted request's streamed body into memory, so that the
// handler finds it with ctx.PostBody().
type BodyReader func(ctx *fasthttp.RequestCtx) *oma.RequestError

// ReadBodies makes the router read streamed bodies itself (the server runs with
// StreamRequestBody): after the route matched and admit (or the route's own
// Admit) let the request in, with read.
func (r *Router) ReadBodies(admit Admit, read BodyReader) {
	r.admit, r.read = admit, read
}

// AdmitToken admits requests that carry a known bearer token (all when auth is off).
func AdmitToken(a *Auth) Admit {
	return func(ctx *fasthttp.RequestCtx, _ Params) *oma.RequestError {
		_, e := a.Authenticate(ctx, false)
		return e
	}
}

func (r *Router) readBody(ctx *fasthttp.RequestCtx, rt *route, p Params) *oma.RequestError {
	if r.read == nil || !ctx.Request.IsBodyStream() {
		return nil
	}
	if ctx.Request.Header.ContentLength() == 0 {
		return r.read(ctx) // nothing to hold: no need to admit first
	}
	admit := r.admit
	if rt.admit != nil {
		admit = rt.admit
	}
	if admit != nil {
		if e := admit(ctx, p); e != nil {
			return e
		}
	}
	return r.read(ctx)
}
