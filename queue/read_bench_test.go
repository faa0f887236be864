package queue

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkReadHead measures Read of the head of one destination (max 1, as a
// webhook worker reads per delivery) and of up to 64 entries, over a backlog of
// 200,000 entries of 512 bytes in 1,000 destinations (their keys fit in the
// memtables: on a busy server tables add to the iterator's cost, not the lookup's).
func BenchmarkReadHead(b *testing.B) {
	q := openBadgerT(b, b.TempDir())
	fillBacklog(b, q, 200_000, 1000)
	dests := make([]string, 1000)
	for i := range dests {
		dests[i] = fmt.Sprintf("rss/%05d", i)
	}
	for _, max := range []int{1, 64} {
		b.Run(fmt.Sprintf("max=%d", max), func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				es, err := q.Read(context.Background(), dests[i%len(dests)], 0, max)
				if err != nil || len(es) != max {
					b.Fatalf("read: %d entries, %v", len(es), err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
		})
	}
}
