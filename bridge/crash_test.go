package bridge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"notifyrelay/app/apptest"
	"notifyrelay/bridge"
)

// Acknowledged mode across a SIGKILL of the real binary: after the restart delivery
// resumes at the first unacknowledged notification, seq stays contiguous, nothing
// acknowledged comes again, nothing accepted is lost.
func TestAckModeAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir})
	res, cb, ws := createChannel(t, p.URL)
	for i := 1; i <= 20; i++ {
		post(t, cb, i)
	}
	c := dialAck(t, ws)
	for i := 1; i <= 20; i++ {
		if seq, n := readFrame(t, c); seq != uint64(i) || n != i {
			t.Fatalf("frame %d: seq %d n %d", i, seq, n)
		}
	}
	if err := c.WriteJSON(map[string]int{"ack": 10}); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, p.URL, res)
	waitCheckpoints(t, p.URL, 2) // the ack is durable: it must not come again
	for i := 21; i <= 30; i++ {
		post(t, cb, i)
	}
	p.Kill()
	c.Close()

	p2 := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir})
	c = dialAck(t, strings.Replace(ws, p.Addr, p2.Addr, 1))
	for i := 11; i <= 30; i++ {
		if seq, n := readFrame(t, c); seq != uint64(i) || n != i {
			t.Fatalf("after restart want %d: seq %d n %d", i, seq, n)
		}
	}
}

// createChannel makes a WebSockets channel; it returns its resourceURL, callbackURL
// and channelURL.
func createChannel(t *testing.T, base string) (string, string, string) {
	resp, err := http.Post(base+"/notificationchannel/v1/alice/channels", "application/json",
		strings.NewReader(`{"notificationChannel":{"channelType":"WebSockets"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		NotificationChannel struct {
			ChannelData struct{ ChannelURL string }
			CallbackURL string
			ResourceURL string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	nc := doc.NotificationChannel
	return nc.ResourceURL, nc.CallbackURL, nc.ChannelData.ChannelURL
}

func post(t *testing.T, cb string, n int) {
	resp, err := http.Post(cb, "application/json", strings.NewReader(`{"n":`+strconv.Itoa(n)+`}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("post %d: %d", n, resp.StatusCode)
	}
}

func dialAck(t *testing.T, url string) *websocket.Conn {
	d := websocket.Dialer{Subprotocols: []string{bridge.ProtocolAck}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readFrame(t *testing.T, c *websocket.Conn) (uint64, int) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f struct {
		Seq          uint64
		Notification string
	}
	if err := c.ReadJSON(&f); err != nil {
		t.Fatalf("read: %v", err)
	}
	var doc struct{ N int }
	if err := json.Unmarshal([]byte(f.Notification), &doc); err != nil {
		t.Fatalf("notification %q: %v", f.Notification, err)
	}
	return f.Seq, doc.N
}

// waitAcked waits until the server applied the ack (the metric counts it).
func waitAcked(t *testing.T, base, _ string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "notifyrelay_channel_acks_total 1") {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("ack not applied")
}

// waitCheckpoints waits until the queue has written n more checkpoints: then every
// acknowledgement made before the wait began is durable.
func waitCheckpoints(t *testing.T, base string, n int) {
	t.Helper()
	from := -1
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c := metricValue(t, base, "notifyrelay_queue_checkpoints_total"); from < 0 {
			from = c
		} else if c >= from+n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no checkpoint written")
}

// metricValue reads an integer metric without labels from /metrics.
func metricValue(t *testing.T, base, name string) int {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", name, v)
			}
			return int(n)
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
