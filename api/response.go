package api

import (
	"strings"

	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// Negotiate chooses the response format: Accept first, else the request's
// Content-Type, else JSON. An Accept that allows neither XML nor JSON is a 406.
func Negotiate(ctx *fasthttp.RequestCtx) (oma.Format, *oma.RequestError) {
	accept := string(ctx.Request.Header.Peek("Accept"))
	if strings.TrimSpace(accept) != "" {
		if f, ok := acceptFormat(accept); ok {
			return f, nil
		}
		if !acceptsAny(accept) {
			return oma.JSON, oma.NotAcceptable(accept)
		}
	}
	if f, ok := oma.FormatOf(string(ctx.Request.Header.ContentType())); ok {
		return f, nil
	}
	return oma.JSON, nil
}

// ErrorFormat is the format a fault is written in: the negotiated one, JSON when
// nothing can be negotiated.
func ErrorFormat(ctx *fasthttp.RequestCtx) oma.Format {
	f, _ := Negotiate(ctx)
	return f
}

// acceptFormat returns the first XML or JSON type listed in Accept (q values are
// honoured only as far as q=0 excluding a type).
func acceptFormat(accept string) (oma.Format, bool) {
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(part, ";")
		if strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") && !strings.Contains(params, "q=0.") {
			continue
		}
		if f, ok := oma.FormatOf(mt); ok {
			return f, true
		}
	}
	return oma.JSON, false
}

func acceptsAny(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		mt = strings.TrimSpace(mt)
		if mt == "*/*" || mt == "application/*" || mt == "text/*" {
			return true
		}
	}
	return false
}

// acceptsJSON reports whether Accept allows a JSON answer (no Accept does).
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt == "*/*" || mt == "application/*" || mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return true
		}
	}
	return false
}

// Write sends a document with its status in format f.
func Write(ctx *fasthttp.RequestCtx, status int, f oma.Format, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType(f.ContentType())
	ctx.SetBody(body)
}

// WriteError sends a requestError in format f with the fault's status.
func WriteError(ctx *fasthttp.RequestCtx, f oma.Format, e *oma.RequestError) {
	e = storageFault(e)
	switch e.Status {
	case fasthttp.StatusUnauthorized:
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="notifyrelay"`)
	case fasthttp.StatusInsufficientStorage:
		ctx.Response.Header.Set("Retry-After", StorageRetryAfter)
	}
	Write(ctx, e.Status, f, e.Marshal(f))
}

// Fail writes e in the format negotiated for ctx (JSON when none can be).
func Fail(ctx *fasthttp.RequestCtx, e *oma.RequestError) { WriteError(ctx, ErrorFormat(ctx), e) }

// Body returns a copy of the request body: fasthttp reuses its buffers once the
// handler returns, and what we queue outlives it.
func Body(ctx *fasthttp.RequestCtx) []byte {
	return append([]byte(nil), ctx.PostBody()...)
}

// RequestFormat is the format of the request body from its Content-Type; a body of
// any other type is a 415.
func RequestFormat(ctx *fasthttp.RequestCtx) (oma.Format, *oma.RequestError) {
	ct := string(ctx.Request.Header.ContentType())
	f, ok := oma.FormatOf(ct)
	if !ok {
		return oma.JSON, oma.UnsupportedMedia(ct)
	}
	return f, nil
}

// originalPathKey holds the path as the client sent it, before base_path was
// stripped (set by the app).
const originalPathKey = "notifyrelay.originalPath"

// SetRequestPath records the path as the client sent it; the app calls it before
// removing base_path.
func SetRequestPath(ctx *fasthttp.RequestCtx, raw string) { ctx.SetUserValue(originalPathKey, raw) }

// RequestPath is the path as the client sent it (base_path included, still
// percent-encoded): what a 404 names as the resource that does not exist.
func RequestPath(ctx *fasthttp.RequestCtx) string {
	if p, ok := ctx.UserValue(originalPathKey).(string); ok {
		return p
	}
	return string(ctx.URI().PathOriginal())
}
