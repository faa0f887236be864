package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"notifyrelay/destkind"
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
	kinds := map[destkind.Kind]*agg{}
	for _, k := range destkind.All {
		kinds[k] = &agg{}
	}
	for _, d := range c.stats.Dests("") {
		k := kinds[destkind.Of(d.Dest)]
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
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(k.depth), string(kind))
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age, string(kind))
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(k.dests), string(kind))
	}
}

// countingQueue counts the notifications the queue accepted, by destination kind,
// for every producer (chat, operator API, callbackURLs) in one place.
type countingQueue struct {
	queue.Engine
	accepted map[destkind.Kind]prometheus.Counter // resolved once
}

// newCountingQueue wraps e; the wrapper offers queue.FuncWatcher only when e does,
// so that the bridge's fallback (Watch) serves engines without it.
func newCountingQueue(e queue.Engine, reg prometheus.Registerer) queue.Engine {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "notifyrelay_notifications_accepted_total",
		Help: "Notifications made durable in the queue, by destination kind.",
	}, []string{"kind"})
	reg.MustRegister(vec)
	c := &countingQueue{Engine: e, accepted: map[destkind.Kind]prometheus.Counter{}}
	for _, kind := range destkind.All {
		c.accepted[kind] = vec.WithLabelValues(string(kind))
	}
	if fw, ok := e.(queue.FuncWatcher); ok {
		return &countingWatcher{countingQueue: c, fw: fw}
	}
	return c
}

// Append implements queue.Queue, counting what was made durable.
func (c *countingQueue) Append(ctx context.Context, w queue.Write) ([]uint64, error) {
	return c.Enqueue(ctx, w)()
}

// Enqueue implements queue.Queue, counting what was made durable.
func (c *countingQueue) Enqueue(ctx context.Context, w queue.Write) func() ([]uint64, error) {
	wait := c.Engine.Enqueue(ctx, w)
	return func() ([]uint64, error) {
		seqs, err := wait()
		if err == nil {
			c.count(w.Entries)
		}
		return seqs, err
	}
}

func (c *countingQueue) count(es []queue.Entry) {
	for i := range es {
		if counter := c.accepted[destkind.Of(es[i].Dest)]; counter != nil {
			counter.Inc()
		}
	}
}

// countingWatcher is a countingQueue over an engine with queue.FuncWatcher, passed
// through: idle channel WebSockets rely on it to keep no goroutine.
type countingWatcher struct {
	*countingQueue
	fw queue.FuncWatcher
}

// WatchFunc implements queue.FuncWatcher.
func (c *countingWatcher) WatchFunc(dest string, fn func()) func() { return c.fw.WatchFunc(dest, fn) }
