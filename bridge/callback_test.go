package bridge

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"notifyrelay/config"
	"notifyrelay/destkind"
)

// Every bad notification is refused with a requestError and queues nothing.
func TestCallbackRefusals(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Limits.MaxBody = 4096 })
	ch := s.create("WebSockets", "")
	cases := []struct {
		name, url, ctype, body string
		status                 int
	}{
		{"malformed json", ch.CallbackURL, "application/json", `{"a":`, 400},
		{"two roots json", ch.CallbackURL, "application/json", `{"a":1,"b":2}`, 400},
		{"array json", ch.CallbackURL, "application/json", `[{"a":1}]`, 400},
		{"trailing data", ch.CallbackURL, "application/json", `{"a":1}{"b":2}`, 400},
		{"malformed xml", ch.CallbackURL, "application/xml", `<a><b></a>`, 400},
		{"two roots xml", ch.CallbackURL, "application/xml", `<a/><b/>`, 400},
		{"doctype", ch.CallbackURL, "application/xml", `<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`, 400},
		{"deep xml", ch.CallbackURL, "application/xml", strings.Repeat("<a>", 33) + strings.Repeat("</a>", 33), 400},
		{"deep json", ch.CallbackURL, "application/json", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), 400},
		{"empty", ch.CallbackURL, "application/json", ``, 400},
		{"invalid utf-8 json", ch.CallbackURL, "application/json", "{\"n\":{\"v\":\"bad\xff\xfe\x80\"}}", 400},
		{"xml declaration after the root", ch.CallbackURL, "application/xml", `<n>x</n><?xml version="1.0"?>`, 400},
		{"text after the root", ch.CallbackURL, "application/xml", `<n>x</n>tail`, 400},
		{"not xml or json", ch.CallbackURL, "text/plain", `hello`, 415},
		{"oversize", ch.CallbackURL, "application/json", `{"a":"` + strings.Repeat("x", 5000) + `"}`, 413},
		{"unknown token", s.url + "/notifications/0123456789abcdef0123456789abcdef", "application/json", `{"a":1}`, 404},
	}
	for _, tc := range cases {
		st, _, body := s.do("POST", tc.url, tc.ctype, tc.body)
		if st != tc.status || !strings.Contains(body, "requestError") {
			t.Errorf("%s: %d %s, want %d", tc.name, st, body, tc.status)
		}
	}
	if d := s.q.DestStats(destkind.ChannelPrefix + idOf(ch)).Depth; d != 0 {
		t.Fatalf("refused notifications queued: %d", d)
	}
	// Without a Content-Type the format is sniffed.
	if st, _, body := s.do("POST", ch.CallbackURL, "", `  <a xmlns="urn:x"/>`); st != 204 {
		t.Fatalf("sniffed xml: %d %s", st, body)
	}
}

// A client that never reads is disconnected, the server's memory stays bounded
// (it reads the backlog in batches from disk), and the client gets everything
// after reconnecting.
func TestSlowClientDisconnectedThenResumes(t *testing.T) {
	s := startServer(t, func(c *config.Config) {
		c.Channels.WriteTimeout = config.Duration(300 * time.Millisecond)
		c.Channels.SendBuffer = 16
	})
	ch := s.create("WebSockets", "")
	slow := mustDial(t, ch.ChannelData.ChannelURL+"?window=4096", ProtocolAck)
	big := strings.Repeat("x", 60<<10)
	const n = 200 // 12 MB: more than the socket buffers hold
	for i := 1; i <= n; i++ {
		body := `{"testNotification":{"n":` + jsonNum(i) + `,"pad":"` + big + `"}}`
		if st, _, resp := s.do("POST", ch.CallbackURL, "application/json", body); st != 204 {
			t.Fatalf("post: %d %s", st, resp)
		}
	}
	eventually(t, "slow client disconnected", func() bool { return testutilCount(s.b.metrics.slow) >= 1 })
	slow.Close()
	// The resumed client acknowledges as it reads, with a small window: the server
	// has at most 4 frames (240 KB) in flight, which the socket buffers hold, so a
	// test slowed by a loaded machine is not taken for another slow client.
	c := mustDial(t, ch.ChannelData.ChannelURL+"?window=4", ProtocolAck)
	for i := 1; i <= n; i++ {
		m := readAck(t, c)
		if m.Seq != uint64(i) || numberOf(t, []byte(m.Notification)) != i {
			t.Fatalf("after reconnect want %d, got seq %d", i, m.Seq)
		}
		if err := c.WriteJSON(map[string]uint64{"ack": m.Seq}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all acked", func() bool { return s.q.DestStats(destkind.ChannelPrefix+idOf(ch)).Depth == 0 })
}

func jsonNum(i int) string { b, _ := json.Marshal(i); return string(b) }

// Drain closes sockets with 1001 and answers waiting polls.
func TestDrainClosesWith1001(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("WebSockets", "")
	lp := s.create("LongPolling", "")
	c := mustDial(t, ch.ChannelData.ChannelURL, ProtocolOMA)
	pending := s.pollAsync(lp.ChannelData.ChannelURL)
	eventually(t, "poll waiting", func() bool { return s.waitingPoll(lp) })
	go s.stop()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("want 1001, got %v", err)
	}
	if r := waitResult(t, pending); r.status != 200 || r.body != `{"notificationList":[]}` {
		t.Fatalf("drained poll: %+v", r)
	}
}
