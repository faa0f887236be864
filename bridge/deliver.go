package bridge

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"notifyrelay/telemetry"
)

// delivered is what one acknowledgement settles: the tags to report to OnSettled
// and when each notification was accepted (for the latency histogram).
type delivered struct {
	tags     []string
	enqueued []time.Time
	traced   []traced // the notifications that carry a trace context
}

// traced is a delivered notification's trace context and when it was queued.
type traced struct {
	parent   string
	enqueued time.Time
}

func (d *delivered) add(tag, traceparent string, enqueued time.Time) {
	if tag != "" {
		d.tags = append(d.tags, tag)
	}
	if traceparent != "" {
		d.traced = append(d.traced, traced{traceparent, enqueued})
	}
	d.enqueued = append(d.enqueued, enqueued)
}

func (d *delivered) addRun(run []pending) {
	for _, p := range run {
		d.add(p.env.Tag, p.env.Traceparent, p.enqueued)
	}
}

// acker acknowledges what the transports delivered.
type acker struct {
	q interface {
		Ack(ctx context.Context, dest string, seq uint64) error
	}
	onSettled func(tag string, delivered bool) // nil: nobody listens
	tracer    trace.Tracer
	metrics   *metrics
	log       zerolog.Logger
}

// delivered settles the tags of what was delivered up to seq, then removes it
// and counts it. Settling first: a crash in between delivers again and settles
// again (the relay ignores a repeated outcome), whereas the other order could
// forget an outcome.
func (a *acker) delivered(ctx context.Context, dest string, seq uint64, d delivered) {
	if a.onSettled != nil {
		for _, t := range d.tags {
			a.onSettled(t, true)
		}
	}
	if err := a.q.Ack(ctx, dest, seq); err != nil {
		a.log.Warn().Err(err).Str("dest", dest).Msg("acknowledging delivered notifications")
		return
	}
	now := time.Now()
	a.metrics.acks.Inc()
	a.metrics.deliveredAt(now, d.enqueued)
	for _, t := range d.traced {
		// One span per notification, from its queueing to the proof of receipt (the
		// client's ack, the flushed write, the next poll): the channel's share of
		// the trace that the accept span began.
		telemetry.Record(a.tracer, "notifyrelay.deliver", trace.SpanKindProducer, t.parent, t.enqueued, now,
			attribute.String("notifyrelay.dest", dest))
	}
}
