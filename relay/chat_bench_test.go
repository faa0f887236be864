package relay_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// BenchmarkChatPost measures the whole POST …/messages path over HTTP on
// 127.0.0.1: parse, authorise, apply, build N1 for a 10-participant group (9
// receivers with one subscription each), durable append, 201. Parallel clients
// spread over 64 groups. The receivers' webhook answers 503 with a one-hour backoff,
// so delivery work stays out of the measurement.
func BenchmarkChatPost(b *testing.B) {
	cfg := apptest.Config(b)
	cfg.LogLevel = "error"
	cfg.Delivery.AllowPrivateTargets = true
	cfg.Delivery.Backoff = config.Backoff{Initial: config.Duration(time.Hour), Max: config.Duration(time.Hour)}
	a := apptest.StartConfig(b, cfg)
	base := apptest.URL(a) + "/chat/v1/"
	hook := fasthttpSink(b)
	cl := &fasthttp.Client{MaxConnsPerHost: 512}
	post := func(path, body string) (int, []byte) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.URI().DisablePathNormalizing = true
		req.SetRequestURI(base + path)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
		if err := cl.Do(req, resp); err != nil {
			b.Fatal(err)
		}
		return resp.StatusCode(), append([]byte(nil), resp.Body()...)
	}
	const groups, members = 64, 10
	paths := make([]string, groups)
	for g := range groups {
		var parts []string
		for m := 1; m < members; m++ {
			user := fmt.Sprintf("tel:+1555%03d%03d", g, m)
			parts = append(parts, `{"address":"`+user+`"}`)
			st, body := post(esc(user)+"/subscriptions", `{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+hook+`"}}}`)
			if st != 201 {
				b.Fatalf("subscribe: %d %s", st, body)
			}
		}
		owner := fmt.Sprintf("tel:+1555%03d000", g)
		st, body := post(esc(owner)+"/group", `{"groupChatSessionInformation":{"participant":[`+strings.Join(parts, ",")+`]}}`)
		m := sessionIDRe.FindStringSubmatch(string(body))
		if st != 201 || m == nil {
			b.Fatalf("group: %d %s", st, body)
		}
		paths[g] = esc(owner) + "/group/" + m[1] + "/messages"
	}
	keys0 := metricOf(b, a, "notifyrelay_queue_keys_written_total")
	reqs0, commits0 := metricOf(b, a, "notifyrelay_queue_commit_batch_size_sum"), metricOf(b, a, "notifyrelay_queue_commit_batch_size_count")
	var next atomic.Int64
	b.SetParallelism(benchClients / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if st, body := post(paths[i%groups], `{"chatSessionData":{"subject":"s`+fmt.Sprint(i)+`"}}`); st != 201 {
				b.Fatalf("change: %d %s", st, body)
			}
		}
	})
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/secs, "changes/s")
	b.ReportMetric(float64(b.N*(members-1))/secs, "N1/s")
	b.ReportMetric((metricOf(b, a, "notifyrelay_queue_keys_written_total")-keys0)/float64(b.N), "keys/change")
	b.ReportMetric((metricOf(b, a, "notifyrelay_queue_commit_batch_size_sum")-reqs0)/
		(metricOf(b, a, "notifyrelay_queue_commit_batch_size_count")-commits0), "requests/commit")
}

// metricOf reads a metric without labels from a's /metrics.
func metricOf(b *testing.B, a *app.App, name string) float64 {
	_, body, err := fasthttp.Get(nil, apptest.URL(a)+"/metrics")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatalf("no metric %s", name)
	return 0
}

// benchClients is how many requests BenchmarkChatPost keeps in flight
// (CHATPOST_CLIENTS, default 64): with one fsync per group commit, throughput is
// about clients / commit time, so more clients mean larger commits.
var benchClients = func() int {
	if n, err := strconv.Atoi(os.Getenv("CHATPOST_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 64
}()

// fasthttpSink is a webhook that always answers 503.
func fasthttpSink(b *testing.B) string {
	r := newReceiver(b)
	r.setStatus("/sink", 503)
	return r.url + "/sink"
}
