package relay_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// benchSink is a fasthttp webhook receiver that counts deliveries (first arrival
// of each webhook-id) and notes when each arrived.
type benchSink struct {
	url   string
	count atomic.Int64
	mu    sync.Mutex
	at    map[string]time.Time
	gate  chan struct{} // when set, requests wait until it is closed
}

func newBenchSink(b *testing.B) *benchSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSink{url: "http://" + ln.Addr().String(), at: map[string]time.Time{}}
	srv := &fasthttp.Server{Handler: s.serve}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	b.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

func (s *benchSink) serve(ctx *fasthttp.RequestCtx) {
	if s.gate != nil {
		<-s.gate
	}
	id := string(ctx.Request.Header.Peek("webhook-id"))
	now := time.Now()
	s.mu.Lock()
	_, dup := s.at[id]
	if !dup {
		s.at[id] = now
	}
	s.mu.Unlock()
	if !dup {
		s.count.Add(1)
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *benchSink) wait(b *testing.B, n int64) {
	for deadline := time.Now().Add(5 * time.Minute); s.count.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivered", s.count.Load(), n)
		}
	}
}

func benchStart(b *testing.B) *app.App {
	return apptest.Start(b, func(c *config.Config) {
		c.Delivery.AllowPrivateTargets = true
		c.Delivery.MaxConnsPerHost = 512 // every destination is on the one local sink
		c.LogLevel = "error"
	})
}

// benchFeed accepts n notifications over dests destinations in batches of up to
// 1,000 (one request, one fsync each), from 4 producers.
func benchFeed(b *testing.B, a *app.App, sink string, n, dests int) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := next.Add(1000) - 1000
				if start >= int64(n) {
					return
				}
				items := make([]whItem, 0, 1000)
				for i := start; i < min(start+1000, int64(n)); i++ {
					items = append(items, whItem{NotifyURL: fmt.Sprintf("%s/d%d", sink, i%int64(dests)), ContentType: "application/json", Body: `{"n":1}`})
				}
				whBatch(b, a, items)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkWebhookThroughput: notifications accepted and delivered (each with a
// durable Ack) to a local fasthttp receiver, spread over 1,000 destinations, and
// to one destination in order.
func BenchmarkWebhookThroughput(b *testing.B) {
	for _, dests := range []int{1000, 1} {
		b.Run(fmt.Sprintf("dests=%d", dests), func(b *testing.B) {
			a := benchStart(b)
			sink := newBenchSink(b)
			b.ResetTimer()
			start := time.Now()
			benchFeed(b, a, sink.url, b.N, dests)
			sink.wait(b, int64(b.N))
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkWebhookBacklog: delivery alone, from a backlog over 1,000 destinations
// accepted beforehand (the receiver holds the first attempts until everything is
// queued, then the clock starts); then, as the ceiling, the same number of POSTs to
// the same receiver from a plain fasthttp client loop on 64 connections, and the
// ratio of the two.
func BenchmarkWebhookBacklog(b *testing.B) {
	a := benchStart(b)
	sink := newBenchSink(b)
	sink.gate = make(chan struct{})
	benchFeed(b, a, sink.url, b.N, 1000)
	b.ResetTimer()
	start := time.Now()
	close(sink.gate)
	sink.wait(b, int64(b.N))
	rate := float64(b.N) / time.Since(start).Seconds()
	b.StopTimer()
	raw := rawPosts(b, sink, b.N, 64)
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(raw, "raw-posts/s")
	b.ReportMetric(rate/raw, "vs-raw")
}

// rawPosts sends n POSTs like a webhook delivery (signed-size headers aside) from
// conns goroutines over one fasthttp client, and returns the rate.
func rawPosts(b *testing.B, sink *benchSink, n, conns int) float64 {
	cl := &fasthttp.Client{MaxConnsPerHost: conns}
	base := sink.count.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				req.SetRequestURI(fmt.Sprintf("%s/d%d", sink.url, i%1000))
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.Header.Set("webhook-id", fmt.Sprint("raw-", i))
				req.SetBodyString(`{"n":1}`)
				if err := cl.Do(req, resp); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()
	sink.wait(b, base+int64(n))
	return rate
}

// BenchmarkWebhookLatency: accepted → delivered latency at a steady 2,000
// notifications/s (single POSTs from 64 producers, 100 destinations).
func BenchmarkWebhookLatency(b *testing.B) {
	a := benchStart(b)
	sink := newBenchSink(b)
	const rate = 2000
	var mu sync.Mutex
	accepted := make(map[string]time.Time, b.N)
	ticks := make(chan int, rate)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ticks {
				sent := time.Now() // accepted ≤ sent + the POST's round trip: latency includes acceptance
				id := benchPost(b, a, fmt.Sprintf("%s/d%d", sink.url, i%100))
				mu.Lock()
				accepted[id] = sent
				mu.Unlock()
			}
		}()
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
		ticks <- i
	}
	close(ticks)
	wg.Wait()
	sink.wait(b, int64(b.N))
	b.StopTimer()
	var lat []time.Duration
	sink.mu.Lock()
	for id, acc := range accepted {
		lat = append(lat, max(sink.at[id].Sub(acc), 0))
	}
	sink.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

var benchClient = &fasthttp.Client{MaxConnsPerHost: 256}

func benchPost(b *testing.B, a *app.App, notifyURL string) string {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(apptest.URL(a) + "/relay/v1/deliveries?notifyURL=" + url.QueryEscape(notifyURL))
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer "+whOperator)
	req.SetBodyString(`{"n":1}`)
	if err := benchClient.Do(req, resp); err != nil || resp.StatusCode() != 202 {
		b.Errorf("POST: %v %d %s", err, resp.StatusCode(), resp.Body())
		return ""
	}
	var r struct{ ID string }
	_ = json.Unmarshal(resp.Body(), &r)
	return r.ID
}

// BenchmarkWebhookPaced: one destination rate-limited to 500/s (bursts of 1),
// b.N notifications accepted beforehand; reports the delivered rate and its ratio
// to the limit (1.0 is exact pacing; below is slack of the timers).
func BenchmarkWebhookPaced(b *testing.B) {
	const rate = 500
	a := apptest.Start(b, func(c *config.Config) {
		c.Delivery.AllowPrivateTargets = true
		c.Delivery.RateLimit = config.RateLimit{Rate: rate, Burst: 1}
		c.LogLevel = "error"
	})
	sink := newBenchSink(b)
	sink.gate = make(chan struct{})
	benchFeed(b, a, sink.url, b.N, 1)
	b.ResetTimer()
	start := time.Now()
	close(sink.gate)
	sink.wait(b, int64(b.N))
	got := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(got, "deliveries/s")
	b.ReportMetric(got/rate, "vs-limit")
}
