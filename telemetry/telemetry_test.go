package telemetry

import (
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// Off, a span passes the producer's traceparent through and records nothing.
func TestStartOffPassesThrough(t *testing.T) {
	span, tp := Start(noop.NewTracerProvider().Tracer("t"), "s", trace.SpanKindServer, parent)
	if tp != parent || span.IsRecording() {
		t.Fatalf("off: traceparent %q (want the parent's), recording %v", tp, span.IsRecording())
	}
	if _, tp := Start(noop.NewTracerProvider().Tracer("t"), "s", trace.SpanKindServer, ""); tp != "" {
		t.Fatalf("off without a parent: traceparent %q, want none", tp)
	}
}

// On, a span continues the parent's trace under a span id of its own.
func TestStartOnContinuesTheTrace(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(t.Context())
	span, got := Start(tp.Tracer("t"), "s", trace.SpanKindServer, parent)
	defer span.End()
	f := strings.Split(got, "-")
	if len(f) != 4 || f[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || f[2] == "00f067aa0ba902b7" || f[2] != span.SpanContext().SpanID().String() {
		t.Fatalf("on: traceparent %q for span %s", got, span.SpanContext().SpanID())
	}
}
