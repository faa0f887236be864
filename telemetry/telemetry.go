// Package telemetry traces notifications with OpenTelemetry: a span when a
// producer hands a notification over, one per delivery attempt, linked through the
// W3C traceparent kept with the queued notification and passed on to the
// receiver. It is configured by the standard OTEL_* environment variables and off
// unless an OTLP endpoint is set; off, spans are no-ops and a producer's
// traceparent passes through unchanged.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Enabled reports whether the environment asks for traces: an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or
// OTEL_TRACES_EXPORTER=otlp, and neither OTEL_SDK_DISABLED=true nor
// OTEL_TRACES_EXPORTER=none.
func Enabled() bool {
	exporter := strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER"))
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || exporter == "none" {
		return false
	}
	return exporter == "otlp" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Tracer is the server's tracer and the shutdown that flushes its spans. When
// traces are off it is a no-op tracer and shutdown does nothing.
func Tracer(ctx context.Context, version string) (trace.Tracer, func(context.Context) error, error) {
	if !Enabled() {
		return noop.NewTracerProvider().Tracer("notifyrelay"), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx) // endpoint, headers, timeout, compression: OTEL_EXPORTER_OTLP_*
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{semconv.ServiceName("notifyrelay")}
	if version != "" {
		attrs = append(attrs, semconv.ServiceVersion(version))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp.Tracer("notifyrelay"), tp.Shutdown, nil
}

// Or is t, or a no-op tracer when t is nil (a part built without tracing).
func Or(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer("notifyrelay")
	}
	return t
}

var (
	w3c      = propagation.TraceContext{}
	noopSpan = trace.SpanFromContext(context.Background()) // a no-op span
)

// Start begins a span named name whose parent is the W3C traceparent parent ("":
// a new trace) and returns it with the traceparent that names it, to keep with
// the notification or send on. With a no-op tracer that is parent itself.
func Start(tr trace.Tracer, name string, kind trace.SpanKind, parent string, attrs ...attribute.KeyValue) (trace.Span, string) {
	if _, off := tr.(noop.Tracer); off {
		return noopSpan, parent // free when off: no context, no propagation
	}
	ctx := context.Background()
	if parent != "" {
		ctx = w3c.Extract(ctx, propagation.MapCarrier{"traceparent": parent})
	}
	ctx, span := tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	out := propagation.MapCarrier{}
	w3c.Inject(ctx, out)
	return span, out["traceparent"]
}

// Record adds a finished span named name, from start to end, under the W3C
// traceparent parent. It does nothing when traces are off or parent is "": a
// span recorded after the fact only makes sense inside the notification's trace.
func Record(tr trace.Tracer, name string, kind trace.SpanKind, parent string, start, end time.Time, attrs ...attribute.KeyValue) {
	if _, off := tr.(noop.Tracer); off || parent == "" {
		return
	}
	ctx := w3c.Extract(context.Background(), propagation.MapCarrier{"traceparent": parent})
	_, span := tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	span.End(trace.WithTimestamp(end))
}

// Commit begins the span of the durable write that queues the notifications of
// the span named by parent (notifyrelay.commit: the Append and its fsync) and
// returns what ends it with the write's error. Free when traces are off.
func Commit(tr trace.Tracer, parent string) (end func(error)) {
	if _, off := tr.(noop.Tracer); off || parent == "" {
		return noEnd
	}
	span, _ := Start(tr, "notifyrelay.commit", trace.SpanKindInternal, parent)
	return func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

func noEnd(error) {}
