package api

import (
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"notifyrelay/oma"
	"notifyrelay/telemetry"
)

// AcceptSpan starts the server span of a request that hands notifications over
// (notifyrelay.accept), under the producer's W3C traceparent when it sent a valid
// one, and returns it with the traceparent to queue with the notifications. The
// caller ends the span once the request is answered.
func AcceptSpan(tr trace.Tracer, ctx *fasthttp.RequestCtx, api string) (trace.Span, string) {
	parent := ""
	if tp := string(ctx.Request.Header.Peek("traceparent")); oma.ValidTraceparent(tp) {
		parent = tp
	}
	return telemetry.Start(tr, "notifyrelay.accept", trace.SpanKindServer, parent, attribute.String("notifyrelay.api", api))
}
