package api

import (
	"io"

	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// Handler serves one method of one route: it returns its answer, or the fault to
// answer instead. The router renders both (render), so no handler writes a status,
// a content type or a requestError itself.
type Handler func(r *Request) (Answer, *oma.RequestError)

// Methods maps an HTTP method to its handler for one resource.
type Methods map[string]Handler

// Request is one request as its handler sees it, after its API's Opening.
type Request struct {
	*fasthttp.RequestCtx
	Params Params
	User   string     // {userId} as the token may act for it (acr:auth resolved); "" without one
	Format oma.Format // the answer's format, faults included
}

// Answer is what a handler answers when it succeeds.
type Answer struct {
	Status      int
	Body        []byte // a document in the request's Format, unless ContentType is set
	ContentType string // the Body's type when it is not the request's Format
	Location    string // the Location header (a 201's new resource)
	// Stream, when set, is the body, read after the handler returned (a long-poll
	// answer); StreamSize is its length, -1 for chunked.
	Stream     io.Reader
	StreamSize int
	handled    bool
}

// OK is 200 with a document.
func OK(body []byte) Answer { return Answer{Status: fasthttp.StatusOK, Body: body} }

// Created is 201 with the new resource's URL and document.
func Created(location string, body []byte) Answer {
	return Answer{Status: fasthttp.StatusCreated, Body: body, Location: location}
}

// Accepted is 202 with a document.
func Accepted(body []byte) Answer { return Answer{Status: fasthttp.StatusAccepted, Body: body} }

// NoContent is 204.
func NoContent() Answer { return Answer{Status: fasthttp.StatusNoContent} }

// Handled says the handler wrote the response itself: a WebSocket upgrade, a
// streamed long-poll answer.
func Handled() Answer { return Answer{handled: true} }

// Opening is what every handler of an API needs before it runs: who the request acts
// for and the format of its answer (Request.User, Request.Format), or the fault that
// ends it. An API declares it once for all its routes. It sets Format even when it
// fails: the fault is written in it.
type Opening func(r *Request) *oma.RequestError

// ForUser opens the user APIs (chat, notification channels): a token acting for
// {userId}, then the answer's format negotiated (406 when none can be).
func ForUser(a *Auth) Opening {
	return func(r *Request) *oma.RequestError {
		r.Format = ErrorFormat(r.RequestCtx)
		user, e := a.ActAs(r.RequestCtx, r.Params["userId"])
		if e != nil {
			return e
		}
		r.User = user
		r.Format, e = Negotiate(r.RequestCtx)
		return e
	}
}

// ForSocket opens a WebSocket handshake: as ForUser, but the token may also come in
// ?access_token= (browsers cannot set headers) and Accept is not negotiated (a
// handshake's answer is an upgrade).
func ForSocket(a *Auth) Opening {
	return func(r *Request) *oma.RequestError {
		r.Format = ErrorFormat(r.RequestCtx)
		p, e := a.Authenticate(r.RequestCtx, true)
		if e == nil {
			r.User, e = p.Resolve(r.Params["userId"])
		}
		return e
	}
}

// ForOperator opens the operator API: an operator token (401 without a valid one,
// 403 POL0001 for a user token); every answer is JSON, so an Accept without JSON is
// a 406.
func ForOperator(a *Auth) Opening {
	return func(r *Request) *oma.RequestError {
		r.Format = oma.JSON
		p, e := a.Authenticate(r.RequestCtx, false)
		switch {
		case e != nil:
			return e
		case !p.Operator:
			return oma.Forbidden("the operator API needs an operator token")
		case !acceptsJSON(string(r.Request.Header.Peek("Accept"))):
			return oma.NotAcceptable(string(r.Request.Header.Peek("Accept")))
		}
		return nil
	}
}

// ForAnyone opens a resource whose URL is its credential (a callbackURL): no token;
// faults in the negotiated format.
func ForAnyone(r *Request) *oma.RequestError {
	r.Format = ErrorFormat(r.RequestCtx)
	return nil
}

// render writes a handler's answer or fault.
func (rt *Router) render(r *Request, a Answer, e *oma.RequestError, route string) {
	if e != nil {
		if e.Cause != nil {
			rt.log.Warn().Err(e.Cause).Str("route", route).Int("status", e.Status).Msg("request failed")
		}
		WriteError(r.RequestCtx, r.Format, e)
		return
	}
	if a.handled {
		return
	}
	if a.Location != "" {
		r.Response.Header.Set("Location", a.Location)
	}
	r.SetStatusCode(a.Status)
	if a.Body == nil && a.Stream == nil {
		return
	}
	ct := a.ContentType
	if ct == "" {
		ct = r.Format.ContentType()
	}
	r.SetContentType(ct)
	if a.Stream != nil {
		r.Response.SetBodyStream(a.Stream, a.StreamSize)
		return
	}
	r.SetBody(a.Body)
}
