package delivery

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"notifyrelay/destkind"
	"notifyrelay/queue"
)

// Destination kinds, as metric labels and in GET /destinations.
const (
	kindSubscription = string(destkind.Subscription)
	kindOperator     = string(destkind.Operator)
)

// KindOf names the kind of a webhook destination id (a metric label, and the kind
// the operator API reports).
func KindOf(dest string) string {
	if strings.HasPrefix(dest, destkind.SubscriptionPrefix) {
		return kindSubscription
	}
	return kindOperator
}

// deliveryMetrics are the webhook workers' Prometheus metrics.
type deliveryMetrics struct {
	delivered *prometheus.CounterVec   // kind
	retried   *prometheus.CounterVec   // kind, reason
	dead      *prometheus.CounterVec   // kind, reason
	attempt   *prometheus.HistogramVec // kind: one HTTP attempt
	endToEnd  *prometheus.HistogramVec // kind: accepted → delivered
	inFlight  prometheus.Gauge
	swept     *prometheus.CounterVec // what: records removed by the sweeper
}

func newDeliveryMetrics(reg prometheus.Registerer, q queue.Stats) *deliveryMetrics {
	m := &deliveryMetrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notifyrelay_webhook_delivered_total", Help: "Webhook notifications delivered (2xx), by destination kind.",
		}, []string{"kind"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notifyrelay_webhook_retried_total", Help: "Webhook attempts that will be retried, by destination kind and reason.",
		}, []string{"kind", "reason"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notifyrelay_webhook_dead_lettered_total", Help: "Webhook notifications dead-lettered, by destination kind and reason.",
		}, []string{"kind", "reason"}),
		attempt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "notifyrelay_webhook_attempt_seconds", Help: "Duration of one webhook HTTP attempt.",
			Buckets: prometheus.ExponentialBucketsRange(0.0005, 60, 16),
		}, []string{"kind"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "notifyrelay_webhook_delivery_latency_seconds", Help: "Webhook notification latency from accepted to delivered.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 86400, 24),
		}, []string{"kind"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "notifyrelay_webhook_in_flight", Help: "Webhook HTTP attempts in flight.",
		}),
		swept: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notifyrelay_delivery_records_swept_total",
			Help: "Records the sweeper removed once their time was up: delivery (records of ended deliveries), idempotency (keys), retained (delivered notifications kept for re-delivery).",
		}, []string{"what"}),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.retried, m.dead, m.attempt, m.endToEnd, m.inFlight, m.swept)
		for prefix, kind := range map[string]string{destkind.SubscriptionPrefix: kindSubscription, destkind.OperatorPrefix: kindOperator} {
			reg.MustRegister(withWork(q, prefix, kind))
		}
	}
	return m
}

// withWork counts the destinations of one kind that have notifications queued.
func withWork(q queue.Stats, prefix, kind string) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "notifyrelay_webhook_destinations_with_work", Help: "Webhook destinations with notifications queued.",
		ConstLabels: prometheus.Labels{"kind": kind},
	}, func() float64 { return float64(len(q.Dests(prefix))) })
}
