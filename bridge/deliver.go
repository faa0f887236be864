package bridge

import (
	"context"
	"time"

	"github.com/rs/zerolog"
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

// acker acknowledges what the transports delivered.
type acker struct {
	q interface {
		Ack(ctx context.Context, dest string, seq uint64) error
	}
	onSettled func(tag string, delivered bool) // nil: nobody listens
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
	a.metrics.acks.Inc()
	a.metrics.deliveredAt(time.Now(), d.enqueued)
}
