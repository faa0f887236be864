package telemetry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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

// Record adds a finished span with the given times inside the parent's trace, and
// nothing without a parent.
func TestRecord(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(t.Context())
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	Record(tp.Tracer("t"), "s", trace.SpanKindProducer, parent, start, start.Add(time.Second))
	Record(tp.Tracer("t"), "s", trace.SpanKindProducer, "", start, start.Add(time.Second))
	Record(noop.NewTracerProvider().Tracer("t"), "s", trace.SpanKindProducer, parent, start, start.Add(time.Second))
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans recorded, want 1 (the one with a parent, traces on)", len(ended))
	}
	s := ended[0]
	if s.Parent().SpanID().String() != "00f067aa0ba902b7" || s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		!s.StartTime().Equal(start) || !s.EndTime().Equal(start.Add(time.Second)) {
		t.Fatalf("span: parent %s trace %s from %v to %v", s.Parent().SpanID(), s.SpanContext().TraceID(), s.StartTime(), s.EndTime())
	}
}

// Commit records a span under the parent, with an error status when the write
// failed; off, or without a parent, it records nothing.
func TestCommit(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(t.Context())
	Commit(tp.Tracer("t"), parent)(nil)
	Commit(tp.Tracer("t"), parent)(errors.New("disk full"))
	Commit(tp.Tracer("t"), "")(nil)
	Commit(noop.NewTracerProvider().Tracer("t"), parent)(nil)
	ended := rec.Ended()
	if len(ended) != 2 || ended[0].Name() != "notifyrelay.commit" || ended[0].Parent().SpanID().String() != "00f067aa0ba902b7" ||
		ended[0].Status().Code != codes.Unset || ended[1].Status().Code != codes.Error {
		t.Fatalf("%d spans: %+v", len(ended), ended)
	}
}
