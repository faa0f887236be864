package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
	"notifyrelay/queue/natstest"
)

// jetStreamNode is the config of one node of a test deployment on NATS urls.
func jetStreamNode(t *testing.T, urls []string, replicas int, prefix string) config.Config {
	cfg := apptest.Config(t)
	cfg.Queue.Engine = "jetstream"
	cfg.Queue.JetStream = config.JetStream{URLs: urls, Replicas: replicas, Prefix: prefix,
		LockTTL: config.Duration(2 * time.Second)}
	return cfg
}

// channel is a notification channel as its creator sees it.
type channel struct{ callback, socket *url.URL }

// createChannel creates an ack-mode WebSocket channel for user through base.
func createChannel(t *testing.T, base, user string) channel {
	t.Helper()
	resp, err := http.Post(base+"/notificationchannel/v1/"+user+"/channels", "application/json",
		strings.NewReader(`{"notificationChannel":{"channelType":"WebSockets"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		NotificationChannel struct {
			CallbackURL string `json:"callbackURL"`
			ChannelData struct{ ChannelURL string }
		} `json:"notificationChannel"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create channel: %d %v", resp.StatusCode, err)
	}
	cb, _ := url.Parse(doc.NotificationChannel.CallbackURL)
	ws, _ := url.Parse(doc.NotificationChannel.ChannelData.ChannelURL)
	return channel{callback: cb, socket: ws}
}

// on is u with its host replaced by the node at addr.
func on(u *url.URL, addr string) string {
	c := *u
	c.Host = addr
	return c.String()
}

// postNotification POSTs a chat-like notification carrying n to the callbackURL
// through the node at addr; it reports whether the node acknowledged it (2xx).
func postNotification(cb *url.URL, addr string, n int) bool {
	body := fmt.Sprintf(`{"chatEventNotification":{"n":%d}}`, n)
	resp, err := http.Post(on(cb, addr), "application/json", strings.NewReader(body))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// ackFrame is one acknowledged-mode frame with the n it carries.
type ackFrame struct {
	Seq          uint64 `json:"seq"`
	Notification string `json:"notification"`
}

func (f ackFrame) n() int {
	var doc struct {
		E struct{ N int } `json:"chatEventNotification"`
	}
	_ = json.Unmarshal([]byte(f.Notification), &doc)
	return doc.E.N
}

// dialAck opens the channel's WebSocket in acknowledged mode through addr,
// retrying until deadline (a node may be taking over).
func dialAck(t *testing.T, ch channel, addr string, deadline time.Time) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"notifyrelay.ack.v1"}, HandshakeTimeout: 2 * time.Second}
	for {
		c, _, err := d.Dial(on(ch.socket, addr), nil)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("WebSocket through %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readFrame reads the next notification frame (skipping connAck and the like).
func readFrame(c *websocket.Conn, wait time.Duration) (ackFrame, error) {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return ackFrame{}, err
		}
		var f ackFrame
		if json.Unmarshal(b, &f) == nil && f.Seq > 0 {
			return f, nil
		}
	}
}

// Two nodes on one prefix: the second is a standby that forwards everything to
// the active node (a channel created, fed and read through it), then takes over
// when the active stops, and an acknowledged-mode client that reconnects to it
// resumes at its first unacknowledged notification.
func TestStandbyForwardsThenTakesOver(t *testing.T) {
	c := natstest.Start(t, 1, false)
	prefix := natstest.Prefix()
	a := apptest.StartConfig(t, jetStreamNode(t, c.URLs, 1, prefix))
	b := apptest.StartConfig(t, jetStreamNode(t, c.URLs, 1, prefix))
	if code, body := get(t, "http://"+b.Addr()+"/readyz"); code != 200 {
		t.Fatalf("/readyz through the standby: %d %s", code, body)
	}
	if _, body := get(t, "http://"+b.Addr()+"/metrics"); !strings.Contains(body, "notifyrelay_cluster_active 1") {
		t.Fatalf("the standby did not forward /metrics to the active node")
	}
	ch := createChannel(t, "http://"+b.Addr(), "u1")
	ws := dialAck(t, ch, b.Addr(), time.Now().Add(5*time.Second))
	for n := 1; n <= 2; n++ {
		if !postNotification(ch.callback, b.Addr(), n) {
			t.Fatalf("notification %d refused through the standby", n)
		}
	}
	f, err := readFrame(ws, 5*time.Second)
	if err != nil || f.n() != 1 {
		t.Fatalf("first frame through the standby: %+v %v", f, err)
	}
	if err := ws.WriteJSON(map[string]uint64{"ack": f.Seq}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ack to reach the active node", func() bool {
		return strings.Contains(metric(t, a, "notifyrelay_queue_depth"), `kind="channel"} 1`)
	})
	ws.Close()
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	ws = dialAck(t, ch, b.Addr(), time.Now().Add(15*time.Second))
	defer ws.Close()
	f, err = readFrame(ws, 10*time.Second)
	if err != nil || f.n() != 2 {
		t.Fatalf("after the takeover the client resumed with %+v %v; want notification 2", f, err)
	}
	if !strings.Contains(metric(t, b, "notifyrelay_cluster_active"), "notifyrelay_cluster_active 1") {
		t.Fatal("the standby does not report itself active after the takeover")
	}
}

// metric is the lines of the node's /metrics that start with name.
func metric(t *testing.T, a *app.App, name string) string {
	_, body := get(t, "http://"+a.Addr()+"/metrics")
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
