package bridge

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// metrics are the bridge's Prometheus series.
type metrics struct {
	channels      *prometheus.GaugeVec   // by type
	connections   *prometheus.GaugeVec   // by mode: oma, ack, poll
	frames        *prometheus.CounterVec // by mode
	bytes         *prometheus.CounterVec // by mode
	acks          prometheus.Counter
	slow          prometheus.Counter
	unconfirmed   prometheus.Counter  // long-poll answers the client's TCP stack did not acknowledge
	wsUnconfirmed prometheus.Counter  // OMA-mode WebSocket notifications, likewise
	delivered     prometheus.Counter  // notifyrelay_notifications_delivered_total{kind="channel"}
	latency       prometheus.Observer // notifyrelay_delivery_latency_seconds{kind="channel"}
}

// newMetrics registers the bridge's series in reg (nil: none); dests reports the
// channel queues, for the backlog gauges.
func newMetrics(reg prometheus.Registerer, dests func(prefix string) []queue.DestStats) (*metrics, error) {
	m := &metrics{
		channels: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "notifyrelay_channels",
			Help: "Notification channels that exist, by channel type."}, []string{"type"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "notifyrelay_channel_connections",
			Help: "Open channel WebSockets and waiting long polls, by mode (oma, ack, poll)."}, []string{"mode"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notifyrelay_channel_frames_sent_total",
			Help: "WebSocket frames and long-poll answers sent, by mode."}, []string{"mode"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notifyrelay_channel_bytes_sent_total",
			Help: "Payload bytes sent on channels, by mode."}, []string{"mode"}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{Name: "notifyrelay_channel_acks_total",
			Help: "Acknowledgements applied to channel queues (delivered batches)."}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{Name: "notifyrelay_channel_slow_disconnects_total",
			Help: "WebSockets closed because the client stopped reading."}),
		unconfirmed: prometheus.NewCounter(prometheus.CounterOpts{Name: "notifyrelay_channel_poll_unconfirmed_total",
			Help: "Long-poll answers written but not acknowledged by the client's TCP stack in time; left queued."}),
		wsUnconfirmed: prometheus.NewCounter(prometheus.CounterOpts{Name: "notifyrelay_channel_ws_unconfirmed_total",
			Help: "OMA-mode WebSocket notifications written but not acknowledged by the client's TCP stack before the socket ended; left queued."}),
	}
	delivered := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notifyrelay_notifications_delivered_total",
		Help: "Notifications delivered, by destination kind."}, []string{"kind"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "notifyrelay_delivery_latency_seconds",
		Help:    "Notification latency from accepted to delivered, by destination kind.",
		Buckets: prometheus.ExponentialBucketsRange(0.001, 86400, 24)}, []string{"kind"})
	m.delivered, m.latency = delivered.WithLabelValues("channel"), latency.WithLabelValues("channel")
	for _, t := range []string{oma.ChannelWebSockets, oma.ChannelLongPolling} {
		m.channels.WithLabelValues(t)
	}
	if reg == nil {
		return m, nil
	}
	total := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "notifyrelay_channel_backlog",
		Help: "Notifications queued on all channels, not yet delivered."}, func() float64 { return backlog(dests, false) })
	worst := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "notifyrelay_channel_backlog_max",
		Help: "Notifications queued on the channel with the largest backlog."}, func() float64 { return backlog(dests, true) })
	var errs []error
	for _, c := range []prometheus.Collector{m.channels, m.connections, m.frames, m.bytes, m.acks, m.slow, m.unconfirmed, m.wsUnconfirmed, delivered, latency, total, worst} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}

func (m *metrics) channelAdded(t string) { m.channels.WithLabelValues(t).Inc() }
func (m *metrics) channelGone(t string)  { m.channels.WithLabelValues(t).Dec() }

func (m *metrics) connected(mode string, d float64) { m.connections.WithLabelValues(mode).Add(d) }

func (m *metrics) sent(mode string, frames, bytes int) {
	if frames == 0 {
		return
	}
	m.frames.WithLabelValues(mode).Add(float64(frames))
	m.bytes.WithLabelValues(mode).Add(float64(bytes))
}

// deliveredAt counts notifications delivered now and observes their latency
// from acceptance.
func (m *metrics) deliveredAt(now time.Time, enqueued []time.Time) {
	m.delivered.Add(float64(len(enqueued)))
	for _, t := range enqueued {
		m.latency.Observe(now.Sub(t).Seconds())
	}
}

// backlog sums (or, worst, maximises) the depth of every channel queue.
func backlog(dests func(prefix string) []queue.DestStats, worst bool) float64 {
	var total, top int
	for _, d := range dests(destkind.ChannelPrefix) {
		total += d.Depth
		top = max(top, d.Depth)
	}
	if worst {
		return float64(top)
	}
	return float64(total)
}
