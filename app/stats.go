package app

import (
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"notifyrelay/api"
	"notifyrelay/oma"
)

// stats is GET /relay/v1/stats: the counters and gauges the console charts, read
// from the metrics registry (the same numbers /metrics exports), by kind. Counters
// are totals since start: the console takes differences between two reads.
type stats struct {
	At               time.Time                   `json:"at"`
	Accepted         map[string]float64          `json:"accepted"`
	Delivered        map[string]float64          `json:"delivered"`
	DeadLettered     map[string]float64          `json:"deadLettered"`
	Retried          map[string]float64          `json:"retried"`
	InFlight         map[string]float64          `json:"inFlight"`
	QueueDepth       map[string]float64          `json:"queueDepth"`
	OldestAgeSeconds map[string]float64          `json:"oldestAgeSeconds"`
	Latency          map[string]latencyHistogram `json:"latency"`
}

// latencyHistogram is a cumulative histogram: Counts[i] observations ≤ Le[i].
type latencyHistogram struct {
	Le     []float64 `json:"le"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
}

func statsHandler(g prometheus.Gatherer) func(*api.Request) (api.Answer, *oma.RequestError) {
	return func(*api.Request) (api.Answer, *oma.RequestError) {
		fams, err := g.Gather()
		if err != nil {
			return api.Answer{}, oma.Internal().Because(err)
		}
		byName := map[string]*dto.MetricFamily{}
		for _, f := range fams {
			byName[f.GetName()] = f
		}
		b, _ := json.Marshal(readStats(byName))
		return api.OK(b), nil
	}
}

func readStats(m map[string]*dto.MetricFamily) stats {
	s := stats{At: time.Now().UTC(),
		Accepted:         byKind(m["notifyrelay_notifications_accepted_total"]),
		Delivered:        byKind(m["notifyrelay_webhook_delivered_total"]),
		DeadLettered:     byKind(m["notifyrelay_webhook_dead_lettered_total"]),
		Retried:          byKind(m["notifyrelay_webhook_retried_total"]),
		QueueDepth:       byKind(m["notifyrelay_queue_depth"]),
		OldestAgeSeconds: byKind(m["notifyrelay_queue_oldest_age_seconds"]),
		InFlight:         map[string]float64{"webhook": total(m["notifyrelay_webhook_in_flight"])},
		Latency:          histograms(m["notifyrelay_webhook_delivery_latency_seconds"]),
	}
	for k, v := range byKind(m["notifyrelay_notifications_delivered_total"]) {
		s.Delivered[k] += v
	}
	for k, h := range histograms(m["notifyrelay_delivery_latency_seconds"]) {
		s.Latency[k] = h
	}
	return s
}

// byKind sums a family's samples by their kind label ("" without one).
func byKind(f *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		out[kindOf(m)] += value(m)
	}
	return out
}

func total(f *dto.MetricFamily) float64 {
	sum := 0.0
	for _, v := range byKind(f) {
		sum += v
	}
	return sum
}

func kindOf(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "kind" {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func histograms(f *dto.MetricFamily) map[string]latencyHistogram {
	out := map[string]latencyHistogram{}
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		lh := latencyHistogram{Count: h.GetSampleCount()}
		for _, b := range h.GetBucket() {
			lh.Le, lh.Counts = append(lh.Le, b.GetUpperBound()), append(lh.Counts, b.GetCumulativeCount())
		}
		out[kindOf(m)] = lh
	}
	return out
}
