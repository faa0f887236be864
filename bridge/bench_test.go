package bridge_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valyala/fasthttp"

	"notifyrelay/app/apptest"
	"notifyrelay/bridge"
)

// fanout is 1,000 OMA-mode WebSocket channels on a notifyrelay child process, each
// with a reader recording POST → frame latency.
type fanout struct {
	pid      int
	cbs      []string
	mu       sync.Mutex
	lat      []time.Duration
	postLat  []time.Duration // POST sent → 204 read
	received atomic.Int64
	last     atomic.Int64 // unix nanos of the last frame
}

func newFanout(b *testing.B, channels int) *fanout {
	raiseFileLimit(b)
	p := apptest.StartProcess(b, apptest.ProcOptions{DataDir: benchDataDir(b), Env: benchEnv})
	f := &fanout{pid: p.Pid()}
	for i := 0; i < channels; i++ {
		_, cb, ws := createChannelB(b, p.URL)
		f.cbs = append(f.cbs, cb)
		d := websocket.Dialer{Subprotocols: []string{bridge.ProtocolOMA}}
		c, _, err := d.Dial(ws, nil)
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		b.Cleanup(func() { c.Close() })
		go f.read(c)
	}
	return f
}

// benchEnv lifts the per-IP connection and per-user channel limits: every
// benchmark socket comes from 127.0.0.1 and one user.
var benchEnv = []string{"NOTIFYRELAY_LIMITS_MAX_CONNS_PER_IP=100000", "NOTIFYRELAY_LIMITS_MAX_CHANNELS_PER_USER=100000"}

// benchDataDir is the server's data dir: a temp dir, under $BENCH_DATA_DIR when set
// (e.g. /dev/shm, to see the latency without the disk's fsync).
func benchDataDir(b *testing.B) string {
	base := os.Getenv("BENCH_DATA_DIR")
	if base == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(base, "bridge-bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (f *fanout) read(c *websocket.Conn) {
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		var docs []json.RawMessage
		var list struct{ NotificationList []json.RawMessage }
		if json.Unmarshal(data, &list) == nil && list.NotificationList != nil {
			docs = list.NotificationList
		} else {
			docs = []json.RawMessage{data}
		}
		f.mu.Lock()
		for _, d := range docs {
			var n struct{ N struct{ T int64 } }
			_ = json.Unmarshal(d, &n)
			f.lat = append(f.lat, now.Sub(time.Unix(0, n.N.T)))
		}
		f.mu.Unlock()
		f.received.Add(int64(len(docs)))
		f.last.Store(now.UnixNano())
	}
}

// run POSTs total notifications round-robin over the channels from 32 posters,
// paced at rate per second (0: as fast as accepted), and waits for every frame.
func (f *fanout) run(b *testing.B, total, rate int) {
	cl := &fasthttp.Client{MaxConnsPerHost: 64}
	var next atomic.Int64
	cpu0 := cpuTime(b, f.pid)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < total; i = int(next.Add(1)) - 1 {
				if rate > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				}
				d := postFast(b, cl, f.cbs[i%len(f.cbs)], i)
				f.mu.Lock()
				f.postLat = append(f.postLat, d)
				f.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for f.received.Load() < int64(total) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.received.Load(); got != int64(total) {
		b.Fatalf("received %d of %d", got, total)
	}
	elapsed := time.Unix(0, f.last.Load()).Sub(start)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "delivered/s")
	// The server's CPU per notification: unlike the rate, it holds on a shared machine.
	b.ReportMetric(float64(cpuTime(b, f.pid)-cpu0)/float64(time.Microsecond)/float64(total), "server-cpu-us/op")
	b.ReportMetric(quantileMs(f.lat, 0.5), "p50-ms")
	b.ReportMetric(quantileMs(f.lat, 0.99), "p99-ms")
	b.ReportMetric(quantileMs(f.postLat, 0.99), "p99-post-ms")
}

// quantileMs sorts d and returns its q-quantile in milliseconds.
func quantileMs(d []time.Duration, q float64) float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[int(float64(len(d))*q)].Microseconds()) / 1000
}

// postFast POSTs notification i and returns how long the 204 took.
func postFast(b *testing.B, cl *fasthttp.Client, url string, i int) time.Duration {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	start := time.Now()
	req.SetBodyString(`{"n":{"i":` + strconv.Itoa(i) + `,"t":` + strconv.FormatInt(start.UnixNano(), 10) + `}}`)
	if err := cl.Do(req, resp); err != nil || resp.StatusCode() != 204 {
		b.Errorf("post: %v %d", err, resp.StatusCode())
	}
	return time.Since(start)
}

// BenchmarkFanoutMax: 1,000 channels, POSTs as fast as the server accepts them.
func BenchmarkFanoutMax(b *testing.B) {
	f := newFanout(b, 1000)
	b.ResetTimer()
	f.run(b, 20000*b.N, 0)
}

// BenchmarkFanout5000: 1,000 channels, 5,000 POSTs per second for 5 s.
func BenchmarkFanout5000(b *testing.B) {
	f := newFanout(b, 1000)
	b.ResetTimer()
	f.run(b, 25000*b.N, 5000)
}

// BenchmarkIdleWebSockets: RSS of the server per idle WebSocket channel
// (10,000 acknowledged-mode sockets, nothing queued).
func BenchmarkIdleWebSockets(b *testing.B) {
	const n = 10000
	raiseFileLimit(b)
	p := apptest.StartProcess(b, apptest.ProcOptions{DataDir: b.TempDir(), Env: benchEnv})
	urls := make([]string, n)
	for i := range urls {
		_, _, urls[i] = createChannelB(b, p.URL)
	}
	before := rss(b, p.Pid())
	conns := make([]*websocket.Conn, 0, n)
	d := websocket.Dialer{Subprotocols: []string{bridge.ProtocolAck}, ReadBufferSize: 256, WriteBufferSize: 256}
	for _, u := range urls {
		c, _, err := d.Dial(u, nil)
		if err != nil {
			b.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second) // let the server settle (GC, stack shrinking); nothing is asserted on time
	after := rss(b, p.Pid())
	b.ReportMetric(float64(after-before)/n/1024, "KiB-RSS/conn")
	for _, c := range conns {
		c.Close()
	}
}

func rss(b *testing.B, pid int) int64 {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// cpuTime is the user and system CPU time process pid has used (/proc/PID/stat,
// in clock ticks of 10 ms).
func cpuTime(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and stime are
	// the 12th and 13th of them.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func raiseFileLimit(b *testing.B) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func createChannelB(b *testing.B, base string) (string, string, string) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(base + "/notificationchannel/v1/alice/channels")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.SetBodyString(`{"notificationChannel":{"channelType":"WebSockets"}}`)
	if err := fasthttp.Do(req, resp); err != nil || resp.StatusCode() != 201 {
		b.Fatalf("create: %v %d", err, resp.StatusCode())
	}
	var doc struct {
		NotificationChannel struct {
			ChannelData struct{ ChannelURL string }
			CallbackURL string
			ResourceURL string
		}
	}
	if err := json.Unmarshal(resp.Body(), &doc); err != nil {
		b.Fatal(err)
	}
	nc := doc.NotificationChannel
	return nc.ResourceURL, nc.CallbackURL, nc.ChannelData.ChannelURL
}
