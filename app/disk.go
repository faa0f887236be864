package app

import "github.com/prometheus/client_golang/prometheus"

// diskCollector reports the data directory's filesystem: free and total bytes,
// for the "disk nearly full" alert (deploy/prometheus/alerts.yaml). The queue
// refuses new data itself before the disk is full (docs/api.md §8, 507); this is
// the warning before that.
type diskCollector struct {
	dir        string
	free, size *prometheus.Desc
}

func newDiskCollector(dir string) *diskCollector {
	return &diskCollector{dir: dir,
		free: prometheus.NewDesc("notifyrelay_disk_free_bytes", "Bytes free for the server on data_dir's filesystem.", nil, nil),
		size: prometheus.NewDesc("notifyrelay_disk_size_bytes", "Size of data_dir's filesystem.", nil, nil)}
}

// Describe implements prometheus.Collector.
func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.free
	ch <- c.size
}

// Collect implements prometheus.Collector; nothing where the space is unknown.
func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	free, size, ok := diskSpace(c.dir)
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, free)
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, size)
}
