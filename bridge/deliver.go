package bridge

import (
	"context"
	"time"
)

// delivered is what one acknowledgement settles: the tags to report to OnSettled
// and when each notification was accepted (for the latency histogram).
type delivered struct {
	tags     []string
	enqueued []time.Time
}

func (d *delivered) add(tag string, enqueued time.Time) {
	if tag != "" {
		d.tags = append(d.tags, tag)
	}
	d.enqueued = append(d.enqueued, enqueued)
}

func (d *delivered) addRun(run []pending) {
	for _, p := range run {
		d.add(p.env.Tag, p.enqueued)
	}
}

// ackDelivered settles the tags of what was delivered up to seq, then removes it
// and counts it. Settling first: a crash in between delivers again and settles
// again (the relay ignores a repeated outcome), whereas the other order could
// forget an outcome.
func (b *Bridge) ackDelivered(ctx context.Context, dest string, seq uint64, d delivered) {
	if b.opts.OnSettled != nil {
		for _, t := range d.tags {
			b.opts.OnSettled(t, true)
		}
	}
	if err := b.q.Ack(ctx, dest, seq); err != nil {
		b.log.Warn().Err(err).Str("dest", dest).Msg("acknowledging delivered notifications")
		return
	}
	b.metrics.acks.Inc()
	b.metrics.deliveredAt(time.Now(), d.enqueued)
}
