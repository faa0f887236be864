package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
	"notifyrelay/queue/natstest"
)

// jetStreamNode is the config of one node of a test deployment on NATS urls.
func jetStreamNode(t *testing.T, urls []string, replicas int, prefix string) config.Config {
	cfg := apptest.Config(t)
	cfg.Queue.Engine = "jetstream"
	j := &cfg.Queue.JetStream
	j.URLs, j.Replicas, j.Prefix, j.LockTTL = urls, replicas, prefix, config.Duration(2*time.Second)
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

// bodyLog records, in arrival order, the path and body of every webhook request.
type bodyLog struct {
	mu   sync.Mutex
	list []string // "path body"
}

func (l *bodyLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.list = append(l.list, r.URL.Path+" "+string(b))
	l.mu.Unlock()
}

func (l *bodyLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.list...)
}

var (
	subjectRE = regexp.MustCompile(`"subject":"([^"]*)"`)
	messageRE = regexp.MustCompile(`/messages/([^"]+)"`)
)

// Chat on two nodes of one prefix: a group created through the standby, changed
// concurrently through both nodes. Both participants receive every change in the
// same order, the group's subject is the last one they received (through either
// node), and each change's status notification (N2) comes after both its N1s.
func TestGroupChangedThroughTwoNodes(t *testing.T) {
	c := natstest.Start(t, 1, false)
	prefix := natstest.Prefix()
	nodes := make([]string, 2)
	for i := range nodes {
		cfg := jetStreamNode(t, c.URLs, 1, prefix)
		cfg.Delivery.AllowPrivateTargets = true
		nodes[i] = "http://" + apptest.StartConfig(t, cfg).Addr() + "/chat/v1/"
	}
	rec := &bodyLog{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	alice, bob, carol := "tel%3A%2B1", "tel%3A%2B2", "tel%3A%2B3"
	loc := postExpect(t, nodes[1]+alice+"/group", 201,
		`{"groupChatSessionInformation":{"subject":"s0","participant":[{"address":"tel:+2"},{"address":"tel:+3"}]}}`)
	session := loc[strings.LastIndex(loc, "/")+1:]
	for i, who := range []string{alice, bob, carol} {
		postExpect(t, nodes[i%2]+who+"/subscriptions", 201, fmt.Sprintf(
			`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"%s/%d"}}}`, srv.URL, i))
	}
	const changes = 20
	var wg sync.WaitGroup
	for n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range changes {
				postExpect(t, nodes[n]+alice+"/group/"+session+"/messages", 201,
					fmt.Sprintf(`{"chatSessionData":{"subject":"n%d-%d"}}`, n, i))
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every N1 and N2", func() bool { return len(rec.snapshot()) == 6*changes })
	checkGroupDeliveries(t, rec.snapshot(), changes)
	got := map[string][]string{}
	for _, line := range rec.snapshot() {
		if m := subjectRE.FindStringSubmatch(line); m != nil {
			got[line[:2]] = append(got[line[:2]], m[1])
		}
	}
	if strings.Join(got["/1"], ",") != strings.Join(got["/2"], ",") {
		t.Fatalf("the participants saw the changes in different orders:\n%v\n%v", got["/1"], got["/2"])
	}
	last := got["/1"][len(got["/1"])-1]
	for _, n := range nodes {
		if body := getBody(t, n+alice+"/group/"+session); !strings.Contains(body, `"subject":"`+last+`"`) {
			t.Fatalf("the group through %s is %s; the last change delivered was %s", n, body, last)
		}
	}
}

// checkGroupDeliveries checks that each message's N2 (to /0) came after its N1s
// (to /1 and /2).
func checkGroupDeliveries(t *testing.T, lines []string, changes int) {
	t.Helper()
	n1s := map[string]int{}
	for _, line := range lines {
		m := messageRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("a notification without its message: %s", line)
		}
		if strings.HasPrefix(line, "/0 ") {
			if n1s[m[1]] != 2 {
				t.Fatalf("N2 of %s came after %d of its 2 N1s", m[1], n1s[m[1]])
			}
			continue
		}
		n1s[m[1]]++
	}
	if len(n1s) != 2*changes {
		t.Fatalf("%d distinct changes notified, want %d", len(n1s), 2*changes)
	}
}

func postExpect(t *testing.T, url string, want int, body string) (location string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return resp.Header.Get("Location")
}

func getBody(t *testing.T, url string) string {
	_, body := get(t, url)
	return body
}

// A standby never forwards to its own address (a lock left by its own previous
// run, not yet expired): it answers 503 SVC0001 with Retry-After until it takes
// the lock.
func TestStandbyDoesNotForwardToItself(t *testing.T) {
	c := natstest.Start(t, 1, false)
	prefix := natstest.Prefix()
	a := apptest.StartConfig(t, jetStreamNode(t, c.URLs, 1, prefix))
	cfg := jetStreamNode(t, c.URLs, 1, prefix)
	cfg.Queue.JetStream.Advertise = a.Config().Queue.JetStream.Advertise
	b := apptest.StartConfig(t, cfg)
	resp, err := http.Get("http://" + b.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "SVC0001") {
		t.Fatalf("got %d (Retry-After %q) %s; want 503 SVC0001 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// A standby whose public_url is not the active node's says so in its log: URLs
// handed out by one node would not be recognised by the other.
func TestStandbyWarnsOnAnotherPublicURL(t *testing.T) {
	c := natstest.Start(t, 1, false)
	prefix := natstest.Prefix()
	active := jetStreamNode(t, c.URLs, 1, prefix)
	active.PublicURL = "https://relay.example"
	apptest.StartConfig(t, active)
	standby := jetStreamNode(t, c.URLs, 1, prefix)
	standby.PublicURL = "https://node-b.example"
	out := startLogged(t, standby)
	waitFor(t, "the standby's warning", func() bool {
		return strings.Contains(out.String(), `"active_public_url":"https://relay.example"`)
	})
	same := jetStreamNode(t, c.URLs, 1, prefix)
	same.PublicURL = "https://relay.example"
	quiet := startLogged(t, same) // a standby decides, and warns, within Start
	if !strings.Contains(quiet.String(), "notifyrelay standby") || strings.Contains(quiet.String(), "active_public_url") {
		t.Fatalf("a standby with the same public_url: %s", quiet.String())
	}
}

// dialFrom connects to addr from the loopback address local (any of 127/8), so
// that a test can play clients with addresses of their own.
func dialFrom(t *testing.T, local, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// A standby forwards each client after a preface naming it, so the active node
// counts limits.max_conns_per_ip per client, not per standby; a preface without
// the active node's token is refused.
func TestForwardedClientsCountAsThemselves(t *testing.T) {
	c := natstest.Start(t, 1, false)
	prefix := natstest.Prefix()
	active := jetStreamNode(t, c.URLs, 1, prefix)
	active.Limits.MaxConnsPerIP = 2
	a := apptest.StartConfig(t, active)
	standby := jetStreamNode(t, c.URLs, 1, prefix)
	standby.Limits.MaxConnsPerIP = 10 // the active node's limit is the one under test
	b := apptest.StartConfig(t, standby)
	get := func(c *rawConn) int {
		t.Helper()
		c.send(t, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
		return c.response(t).StatusCode
	}
	for _, client := range []string{"127.0.0.7", "127.0.0.7", "127.0.0.8", "127.0.0.8"} {
		if status := get(dialFrom(t, client, b.Addr())); status != 200 {
			t.Fatalf("client %s through the standby: %d; four forwarded connections, two per client, are within the limit", client, status)
		}
	}
	if status := get(dialFrom(t, "127.0.0.7", b.Addr())); status != 429 {
		t.Fatalf("a third connection of one client through the standby: %d, want 429 from the active node", status)
	}
	forged := dialFrom(t, "127.0.0.9", a.Addr())
	forged.send(t, "NRFWD 00000000000000000000000000000000 10.1.2.3:4000\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(forged.r, nil); err == nil {
		t.Fatal("a preface with another token was served")
	}
}

// startLogged starts a node on cfg with its log in the returned Output, and stops
// it when the test ends.
func startLogged(t *testing.T, cfg config.Config) *apptest.Output {
	t.Helper()
	out := &apptest.Output{}
	a, err := app.New(cfg, zerolog.New(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	return out
}
