package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"notifyrelay/app/apptest"
	"notifyrelay/queue/natstest"
)

// receiver is a webhook receiver that records, per path, the n of every body.
type receiver struct {
	mu  sync.Mutex
	got map[string][]int
}

func startReceiver(t *testing.T) (*receiver, string) {
	r := &receiver{got: map[string][]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var doc struct{ N int }
		_ = json.Unmarshal(b, &doc)
		r.add(req.URL.Path, doc.N)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r, "http://" + ln.Addr().String()
}

func (r *receiver) add(key string, n int) {
	r.mu.Lock()
	r.got[key] = append(r.got[key], n)
	r.mu.Unlock()
}

func (r *receiver) list(key string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.got[key]...)
}

func (r *receiver) distinct(key string) int {
	seen := map[int]bool{}
	for _, n := range r.list(key) {
		seen[n] = true
	}
	return len(seen)
}

// checkStream checks what a destination received against the n acknowledged:
// every one arrived, and first arrivals came in order (repeats of what arrived
// already are at-least-once, allowed).
func checkStream(t *testing.T, what string, got []int, acked int) (dups int) {
	t.Helper()
	seen := map[int]bool{}
	last := 0
	for _, n := range got {
		if seen[n] {
			dups++
			continue
		}
		if n != last+1 {
			t.Errorf("%s: %d arrived first after %d (out of order or lost)", what, n, last)
		}
		seen[n], last = true, n
	}
	if last < acked {
		t.Errorf("%s: %d of %d acknowledged notifications arrived", what, last, acked)
	}
	return dups
}

// deliver POSTs one operator delivery of n to url through the nodes, starting
// with node i%len, until one acknowledges it.
func deliver(nodes []*apptest.Proc, i int, url string, n int) {
	body := fmt.Sprintf(`{"n":%d}`, n)
	for try := i; ; try++ {
		resp, err := http.Post(nodes[try%len(nodes)].URL+"/relay/v1/deliveries?notifyURL="+neturl.QueryEscape(url),
			"application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Three notifyrelay processes on a 3-server JetStream cluster (3 replicas), under
// load through every node: the active node is killed with SIGKILL, then one NATS
// server is shut down. Every acknowledged webhook delivery and channel
// notification arrives, first arrivals in order, and an acknowledged-mode client
// that keeps moving between two nodes resumes on each where it left off.
func TestClusterKillActiveNodeThenANATSServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary against a 3-server NATS cluster")
	}
	c := natstest.Start(t, 3, false)
	env := []string{"NOTIFYRELAY_QUEUE_ENGINE=jetstream", "NOTIFYRELAY_QUEUE_JETSTREAM_URLS=" + strings.Join(c.URLs, ","),
		"NOTIFYRELAY_QUEUE_JETSTREAM_REPLICAS=3", "NOTIFYRELAY_QUEUE_JETSTREAM_PREFIX=" + natstest.Prefix(),
		"NOTIFYRELAY_QUEUE_JETSTREAM_LOCK_TTL=2s", "NOTIFYRELAY_DELIVERY_ALLOW_PRIVATE_TARGETS=true",
		"NOTIFYRELAY_DELIVERY_BACKOFF_INITIAL=10ms", "NOTIFYRELAY_DELIVERY_BACKOFF_MAX=200ms"}
	var nodes []*apptest.Proc
	for range 3 {
		nodes = append(nodes, apptest.StartProcess(t, apptest.ProcOptions{DataDir: t.TempDir(), Env: env}))
	}
	if _, body := get(t, nodes[0].URL+"/metrics"); !strings.Contains(body, "notifyrelay_cluster_active 1") {
		t.Fatal("the first node is not the active one")
	}
	rc, rcURL := startReceiver(t)
	ch := createChannel(t, nodes[1].URL, "u1")
	frames := holdChannel(t, ch, nodes[2].Addr, nodes[1].Addr)

	const producers, perProducer = 3, 120
	var wg sync.WaitGroup
	progress := make(chan int, producers*perProducer)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= perProducer; n++ {
				deliver(nodes, p+n, fmt.Sprintf("%s/d%d", rcURL, p), n)
				for i := 0; !postNotification(ch.callback, nodes[(p+n+i)%3].Addr, p*perProducer+n); i++ {
					time.Sleep(20 * time.Millisecond)
				}
				progress <- n
			}
		}()
	}
	waitProgress(t, progress, producers*perProducer/4)
	killed := time.Now()
	nodes[0].Kill()
	waitProgress(t, progress, producers*perProducer/4)
	t.Logf("a standby took over and accepted a quarter of the load within %v of the kill", time.Since(killed).Round(time.Millisecond))
	c.Servers[0].Shutdown()
	wg.Wait()

	waitFor(t, "every acknowledged delivery", func() bool {
		for p := range producers {
			if rc.distinct(fmt.Sprintf("/d%d", p)) < perProducer {
				return false
			}
		}
		return frames.distinct("") >= producers*perProducer
	})
	dups := 0
	for p := range producers {
		dups += checkStream(t, fmt.Sprintf("webhook d%d", p), rc.list(fmt.Sprintf("/d%d", p)), perProducer)
	}
	t.Logf("webhooks: %d duplicates", dups)
	checkChannel(t, frames.list(""), producers, perProducer)
	moved := len(frames.list("connects:"+nodes[1].Addr)) + len(frames.list("connects:"+nodes[2].Addr))
	if len(frames.list("connects:"+nodes[1].Addr)) == 0 || len(frames.list("connects:"+nodes[2].Addr)) == 0 {
		t.Fatalf("the channel client never moved between nodes")
	}
	t.Logf("channel client: %d connections, alternating between two nodes", moved)
}

func waitProgress(t *testing.T, progress <-chan int, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for range n {
		select {
		case <-progress:
		case <-deadline:
			t.Fatalf("the load stalled")
		}
	}
}

// holdChannel reads the channel in acknowledged mode, acknowledging every frame
// once recorded; each time the connection breaks or idles for a second it
// reconnects through the next of addrs, so the client moves between nodes and
// resumes on each at its first unacknowledged notification. Until the test ends.
func holdChannel(t *testing.T, ch channel, addrs ...string) *receiver {
	t.Helper()
	r := &receiver{got: map[string][]int{}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; {
			select {
			case <-done:
				return
			default:
			}
			if readUntilBroken(ch, addrs[i%len(addrs)], r, done) {
				i++ // the next connection goes to the next node
			}
		}
	}()
	t.Cleanup(func() { close(done); wg.Wait() })
	return r
}

// readUntilBroken reads through addr until the connection breaks; it reports
// whether it connected.
func readUntilBroken(ch channel, addr string, r *receiver, done <-chan struct{}) bool {
	d := websocket.Dialer{Subprotocols: []string{"notifyrelay.ack.v1"}, HandshakeTimeout: 2 * time.Second}
	ws, _, err := d.Dial(on(ch.socket, addr), nil)
	if err != nil {
		time.Sleep(100 * time.Millisecond) // a node is taking over
		return false
	}
	defer ws.Close()
	r.add("connects:"+addr, 1)
	for {
		select {
		case <-done:
			return true
		default:
		}
		f, err := readFrame(ws, time.Second)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return true // a read deadline ends the connection too: dial again
		}
		if err != nil {
			return true
		}
		r.add("", f.n())
		if ws.WriteJSON(map[string]uint64{"ack": f.Seq}) != nil {
			return true
		}
	}
}

// checkChannel checks the channel's notifications: each producer's are a stream
// of their own (producer p sent p*per+1 … p*per+per, in order).
func checkChannel(t *testing.T, got []int, producers, per int) {
	t.Helper()
	streams := make([][]int, producers)
	for _, n := range got {
		p := (n - 1) / per
		streams[p] = append(streams[p], n-p*per)
	}
	dups := 0
	for p := range producers {
		dups += checkStream(t, fmt.Sprintf("channel, producer %d", p), streams[p], per)
	}
	t.Logf("channel: %d duplicates", dups)
}
