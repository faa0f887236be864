package queue

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"notifyrelay/queue/natstest"
)

// BenchmarkJetStreamAppend is BenchmarkAppend on embedded NATS: one server (R1
// stream) and a 3-server cluster (R3), with sync_interval always (fsync before every
// ack, as Badger) and the default (fsync every 2 minutes). It reports the group
// commit's latency (one publish or atomic batch) too.
//
// Run: go test ./queue -run '^$' -bench JetStreamAppend -benchtime 3000x
func BenchmarkJetStreamAppend(b *testing.B) {
	for _, servers := range []int{1, 3} {
		for _, always := range []bool{true, false} {
			c := natstest.Start(b, servers, always)
			for _, producers := range []int{1, 16, 64} {
				name := fmt.Sprintf("servers=%d/sync=%s/producers=%d", servers,
					map[bool]string{true: "always", false: "default"}[always], producers)
				b.Run(name, func(b *testing.B) { benchJetStreamAppend(b, c, servers, producers) })
			}
		}
	}
}

func benchJetStreamAppend(b *testing.B, c *natstest.Cluster, replicas, producers int) {
	var mu sync.Mutex
	var took []time.Duration
	q, err := OpenJetStream(JetStreamOptions{URLs: c.URLs, Prefix: natstest.Prefix(), Replicas: replicas,
		OnCommit: func(_ int, d time.Duration) { mu.Lock(); took = append(took, d); mu.Unlock() }}, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	b.ResetTimer()
	start := time.Now()
	runProducers(b, q, producers, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
	b.ReportMetric(float64(q.committed.Load())/float64(q.commits.Load()), "appends/commit")
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(took)
	if len(took) > 0 {
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "commit-p50-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "commit-p99-ms")
	}
}

// BenchmarkJetStreamOpen is the load half of a takeover: a node opening a prefix
// whose stream holds a backlog (appends of one 512-byte entry from 64 producers,
// not acknowledged), as a standby does when it gets the lock. One op is one Open
// (the index rebuilt from the stream) and Close.
//
// Run: go test ./queue -run '^$' -bench JetStreamOpen -benchtime 3x
func BenchmarkJetStreamOpen(b *testing.B) {
	c := natstest.Start(b, 1, false)
	for _, backlog := range []int{1000, 10000, 50000, 200000} { // 200,000: over streamScanBytes of log values
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			o := JetStreamOptions{URLs: c.URLs, Prefix: natstest.Prefix()}
			q, err := OpenJetStream(o, testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			runProducers(b, q, 64, backlog)
			if err := q.Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				q, err := OpenJetStream(o, testLogger(b))
				if err != nil {
					b.Fatal(err)
				}
				if d := q.DestStats("bench/0").Depth; d != backlog/64+1 && d != backlog/64 {
					b.Fatalf("depth %d after reopening", d)
				}
				_ = q.Close()
			}
		})
	}
}
