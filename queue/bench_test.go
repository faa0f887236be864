package queue

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Run: go test ./queue/ -run '^$' -bench . -benchtime 2s

var payload512 = make([]byte, 512)

// BenchmarkAppend measures durable (fsync'd) appends of one 512-byte entry per
// Append from 1, 16 and 64 concurrent producers sharing group commits.
func BenchmarkAppend(b *testing.B) {
	for _, producers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			q := openBadgerT(b, b.TempDir())
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			runProducers(b, q, producers, b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
			b.ReportMetric(float64(q.committed.Load())/float64(q.commits.Load()), "appends/commit")
		})
	}
}

func runProducers(b testing.TB, q Queue, producers, n int) {
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		count := n / producers
		if p < n%producers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dest := fmt.Sprintf("bench/%d", p)
			for i := 0; i < count; i++ {
				e := Entry{Dest: dest, ID: fmt.Sprintf("%d-%d", p, i), Data: payload512}
				if _, err := q.Append(context.Background(), Write{Entries: []Entry{e}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkRawBadger64 is the baseline: Badger with the queue's options, 64 entries
// of 512 bytes per fsync'd transaction, keys and values shaped like the queue's.
func BenchmarkRawBadger64(b *testing.B) {
	db := openRawBadger(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	rawAppend(b, db, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

func openRawBadger(b *testing.B) *badger.DB {
	opts := BadgerOptions{}.withDefaults()
	db, err := badger.Open(opts.badger(b.TempDir(), testLogger(b)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

var rawSeq uint64

func rawAppend(b *testing.B, db *badger.DB, n int) {
	for done := 0; done < n; {
		txn := db.NewTransaction(true)
		for i := 0; i < 64 && done < n; i++ {
			rawSeq++
			key := binary.BigEndian.AppendUint64([]byte("ebench/raw"), rawSeq)
			val := appendTime(appendString(nil, fmt.Sprint(rawSeq)), time.Now())
			if err := txn.Set(key, append(val, payload512...)); err != nil {
				b.Fatal(err)
			}
			done++
		}
		if err := txn.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueueVsRaw alternates rounds of 64-producer queue appends and of the raw
// baseline (4096 entries each per round), so that both see the same disk and load,
// and reports their ratio. One op is one round of each.
func BenchmarkQueueVsRaw(b *testing.B) {
	q := openBadgerT(b, b.TempDir())
	db := openRawBadger(b)
	const chunk = 4096
	var qTime, rTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		runProducers(b, q, 64, chunk)
		qTime += time.Since(start)
		start = time.Now()
		rawAppend(b, db, chunk)
		rTime += time.Since(start)
	}
	n := float64(b.N * chunk)
	b.ReportMetric(n/qTime.Seconds(), "queue-entries/s")
	b.ReportMetric(n/rTime.Seconds(), "raw-entries/s")
	b.ReportMetric(rTime.Seconds()/qTime.Seconds(), "queue/raw")
	b.ReportMetric(float64(q.committed.Load())/float64(q.commits.Load()), "appends/commit")
}

// BenchmarkWakeLatency measures the time from Append returning to a consumer
// blocked in Next (or on a Watch channel) waking up. The queue wakes consumers before
// it replies to the producer, so the wake-up often precedes the return: those count
// as zero.
func BenchmarkWakeLatency(b *testing.B) {
	for _, mode := range []string{"next", "watch"} {
		b.Run(mode, func(b *testing.B) {
			q := openBadgerT(b, b.TempDir())
			b.ReportAllocs()
			lat := make([]time.Duration, 0, b.N)
			woke := make(chan time.Time)
			go wakeConsumer(b, q, mode, b.N, woke)
			<-woke // consumer ready
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mustAppend(b, q, entry("lat/x", fmt.Sprint(i), "x"))
				returned := time.Now()
				lat = append(lat, max(0, (<-woke).Sub(returned)))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// wakeConsumer signals once when blocked for the first time, then, per entry, the
// moment it woke; it acks and releases before waiting again.
func wakeConsumer(b *testing.B, q Engine, mode string, n int, woke chan<- time.Time) {
	wake, stop := q.Watch("lat/x")
	defer stop()
	woke <- time.Now()
	for i := 0; i < n; i++ {
		if mode == "watch" {
			<-wake
		} else if _, err := q.Next(context.Background(), "lat/"); err != nil {
			b.Error(err)
			return
		}
		t := time.Now()
		if err := q.Ack(context.Background(), "lat/x", uint64(i+1)); err != nil {
			b.Error(err)
		}
		q.Release("lat/x")
		select { // drain the watch signal of the entry just consumed
		case <-wake:
		default:
		}
		woke <- t
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// TestRSS queues 1M entries of 512 bytes across 10k destinations, then reports the
// process RSS, also after a reopen. Slow: run with QUEUE_RSS=1.
func TestRSS(t *testing.T) {
	if os.Getenv("QUEUE_RSS") == "" {
		t.Skip("set QUEUE_RSS=1 to run")
	}
	dir := t.TempDir()
	q := openBadgerT(t, dir)
	start := time.Now()
	fillBacklog(t, q, 1_000_000, 10_000)
	t.Logf("queued 1M entries in %v; %s", time.Since(start).Round(time.Millisecond), rss(t))
	if f := os.Getenv("QUEUE_RSS_HEAP"); f != "" {
		w, _ := os.Create(f)
		_ = pprof.WriteHeapProfile(w)
		w.Close()
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	q = openBadgerT(t, dir)
	t.Logf("reopened in %v; %s", time.Since(start).Round(time.Millisecond), rss(t))
	if n := len(q.Dests("")); n != 10_000 {
		t.Fatalf("%d destinations after reopen", n)
	}
	drainSome(t, q, 10_000)
	t.Logf("after consuming 10k entries: %s", rss(t))
}

func fillBacklog(t testing.TB, q Queue, entries, dests int) {
	const perWrite, producers = 1000, 8
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := p; w < entries/perWrite; w += producers {
				var wr Write
				for i := 0; i < perWrite; i++ {
					n := w*perWrite + i
					wr.Entries = append(wr.Entries, Entry{Dest: fmt.Sprintf("rss/%05d", n%dests),
						ID: fmt.Sprint(n), Data: payload512})
				}
				if _, err := q.Append(context.Background(), wr); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func drainSome(t *testing.T, q Engine, n int) {
	for i := 0; i < n; i++ {
		d := mustNext(t, q, "rss/", time.Second)
		es := mustRead(t, q, d, 0, 1)
		if err := q.Ack(context.Background(), d, es[0].Seq); err != nil {
			t.Fatal(err)
		}
		q.Release(d)
	}
}

// rss reports the resident set from /proc/self/status: total, anonymous (Go heap,
// memtables, caches) and file-backed (Badger's mmapped tables and logs, reclaimable).
func rss(t *testing.T) string {
	runtime.GC()
	debug.FreeOSMemory() // measure what is live, not garbage the GC has yet to return
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range []string{"VmRSS:", "RssAnon:", "RssFile:", "VmHWM:"} {
			if strings.HasPrefix(line, k) {
				out = append(out, strings.Join(strings.Fields(line), " "))
			}
		}
	}
	out = append(out, fmt.Sprintf("Go heap in use: %d kB", ms.HeapInuse>>10), fileRSS(t))
	return strings.Join(out, ", ")
}

// fileRSS sums resident pages of mapped files by extension (.sst, .mem, .vlog).
func fileRSS(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return ""
	}
	byExt := map[string]int{}
	ext := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			ext = "" // a mapping's header line: address range, perms, ..., path
			if len(f) >= 6 {
				ext = f[5][strings.LastIndex(f[5], ".")+1:]
			}
		case len(f) == 3 && f[0] == "Rss:":
			var kb int
			_, _ = fmt.Sscan(f[1], &kb)
			byExt[ext] += kb
		}
	}
	return fmt.Sprintf("mapped files: sst %d kB, mem %d kB, vlog %d kB",
		byExt["sst"], byExt["mem"], byExt["vlog"])
}

// BenchmarkAppendChange measures Appends shaped like a chat change: 9 entries of
// 700 bytes (one N1 per receiver, each to its own destination) and one 200-byte
// record, from 64 producers. One op is one change.
func BenchmarkAppendChange(b *testing.B) {
	q := openBadgerT(b, b.TempDir())
	body, rec := make([]byte, 700), make([]byte, 200)
	var next atomic.Int64
	b.SetParallelism(32) // 64 producers on 2 cores, as the chat benchmark
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			g := i % 64
			w := Write{Records: []Record{{Key: fmt.Appendf(nil, "session/%d", g), Value: rec}}}
			for r := range 9 {
				w.Entries = append(w.Entries, Entry{Dest: fmt.Sprintf("s:%02d-%d", g, r), ID: fmt.Sprint(i, ".", r), Data: body})
			}
			if _, err := q.Append(context.Background(), w); err != nil {
				b.Error(err)
				return
			}
		}
	})
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/secs, "changes/s")
	b.ReportMetric(float64(9*b.N)/secs, "entries/s")
	b.ReportMetric(float64(q.committed.Load())/float64(q.commits.Load()), "appends/commit")
}
