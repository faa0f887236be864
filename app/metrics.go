package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"notifyrelay/queue"
)

// queueCollector reports queue depth and oldest age by destination kind at scrape
// time, from the queue's in-memory stats (no disk read).
type queueCollector struct {
	stats              queue.Stats
	depth, age, active *prometheus.Desc
}

func newQueueCollector(s queue.Stats) *queueCollector {
	labels := []string{"kind"}
	return &queueCollector{
		stats:  s,
		depth:  prometheus.NewDesc("notifyrelay_queue_depth", "Notifications queued, by destination kind.", labels, nil),
		age:    prometheus.NewDesc("notifyrelay_queue_oldest_age_seconds", "Age of the oldest queued notification, by destination kind.", labels, nil),
		active: prometheus.NewDesc("notifyrelay_queue_destinations", "Destinations with queued notifications, by kind.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.age
	ch <- c.active
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	type agg struct {
		depth, dests int
		oldest       time.Time
	}
	kinds := map[string]*agg{"subscription": {}, "operator": {}, "channel": {}}
	for _, d := range c.stats.Dests("") {
		k := kinds[destKind(d.Dest)]
		if k == nil {
			continue
		}
		k.depth += d.Depth
		k.dests++
		if !d.Oldest.IsZero() && (k.oldest.IsZero() || d.Oldest.Before(k.oldest)) {
			k.oldest = d.Oldest
		}
	}
	for kind, k := range kinds {
		age := 0.0
		if !k.oldest.IsZero() {
			age = time.Since(k.oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(k.depth), kind)
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age, kind)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(k.dests), kind)
	}
}

// destKind names a destination's kind from its id prefix (see relay.Dest*).
func destKind(dest string) string {
	if len(dest) < 2 {
		return ""
	}
	switch dest[:2] {
	case "s:":
		return "subscription"
	case "o:":
		return "operator"
	case "c:":
		return "channel"
	}
	return ""
}
