package bridge

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"notifyrelay/config"
	"notifyrelay/destkind"
)

// Acknowledged mode: receive, ack part, drop, post more, reconnect: delivery restarts
// at the first unacknowledged, seq contiguous, each frame's prevSeq the seq before
// it (also on the first frame after a reconnect), nothing acknowledged repeated.
func TestAckModeResumesAtFirstUnacked(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("WebSockets", "")
	for i := 1; i <= 10; i++ {
		s.notify(ch.CallbackURL, i)
	}
	c := mustDial(t, ch.ChannelData.ChannelURL, ProtocolAck)
	if c.Subprotocol() != ProtocolAck {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	for i := 1; i <= 10; i++ {
		m := readAck(t, c)
		if m.Seq != uint64(i) || *m.PrevSeq != uint64(i-1) || numberOf(t, []byte(m.Notification)) != i || m.ContentType != "application/json" {
			t.Fatalf("frame %d: %+v", i, m)
		}
	}
	if err := c.WriteJSON(map[string]int{"ack": 6}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ack applied", func() bool { return s.q.DestStats(destkind.ChannelPrefix+idOf(ch)).Depth == 4 })
	c.Close()
	for i := 11; i <= 15; i++ {
		s.notify(ch.CallbackURL, i)
	}
	c = mustDial(t, ch.ChannelData.ChannelURL, ProtocolAck)
	for want := 7; want <= 15; want++ {
		m := readAck(t, c)
		if m.Seq != uint64(want) || *m.PrevSeq != uint64(want-1) || numberOf(t, []byte(m.Notification)) != want {
			t.Fatalf("after reconnect want %d, got %+v", want, m)
		}
	}
	if err := c.WriteJSON(map[string]int{"ack": 15}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all acked", func() bool { return s.q.DestStats(destkind.ChannelPrefix+idOf(ch)).Depth == 0 })
}

func idOf(ch chanDoc) string {
	return ch.ResourceURL[strings.LastIndexByte(ch.ResourceURL, '/')+1:]
}

// The window bounds what is unacknowledged; an ack opens it again.
func TestAckModeWindow(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("WebSockets", "")
	for i := 1; i <= 5; i++ {
		s.notify(ch.CallbackURL, i)
	}
	c := mustDial(t, ch.ChannelData.ChannelURL+"?window=2", ProtocolAck)
	readAck(t, c)
	readAck(t, c)
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, data, err := c.ReadMessage(); err == nil {
		t.Fatalf("third frame beyond the window: %s", data)
	}
	// A read timeout poisons a gorilla conn: reconnect, which restarts at seq 1.
	c.Close()
	c = mustDial(t, ch.ChannelData.ChannelURL+"?window=2", ProtocolAck)
	readAck(t, c)
	if m := readAck(t, c); m.Seq != 2 {
		t.Fatalf("got %+v", m)
	}
	_ = c.WriteJSON(map[string]int{"ack": 2})
	if m := readAck(t, c); m.Seq != 3 {
		t.Fatalf("after ack got %+v", m)
	}
}

// 10,000 notifications from 8 concurrent posters arrive in accepted order: seq is
// contiguous and each poster's notifications come in the order it posted them.
func TestOrderedUnderConcurrentPosters(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Channels.Window = 4096 })
	ch := s.create("WebSockets", "")
	c := mustDial(t, ch.ChannelData.ChannelURL, ProtocolAck)
	const posters, each = 8, 1250
	var wg sync.WaitGroup
	for p := 0; p < posters; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				st, _, body := s.do("POST", ch.CallbackURL, "application/json", notification(p*each+i))
				if st != 204 {
					t.Errorf("post: %d %s", st, body)
					return
				}
			}
		}()
	}
	last := make([]int, posters)
	for i := range last {
		last[i] = -1
	}
	for seq := uint64(1); seq <= posters*each; seq++ {
		m := readAck(t, c)
		if m.Seq != seq {
			t.Fatalf("seq %d, want %d", m.Seq, seq)
		}
		n := numberOf(t, []byte(m.Notification))
		if p := n / each; n <= last[p] {
			t.Fatalf("poster %d: %d after %d", p, n, last[p])
		} else {
			last[p] = n
		}
		if seq%500 == 0 {
			_ = c.WriteJSON(map[string]uint64{"ack": seq})
		}
	}
	wg.Wait()
}

// OMA mode: documents as sent, a notificationList for a batch, connCheck → connAck.
func TestOMAModeDeliversAndAnswersConnCheck(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("WebSockets", `,"channelLifetime":100`)
	s.notify(ch.CallbackURL, 1)
	c := mustDial(t, ch.ChannelData.ChannelURL, ProtocolOMA)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil || numberOf(t, data) != 1 {
		t.Fatalf("first frame %s: %v", data, err)
	}
	eventually(t, "delivered once written", func() bool { return s.q.DestStats(destkind.ChannelPrefix+idOf(ch)).Depth == 0 })
	xmlDoc := `<?xml version="1.0"?><x:thing xmlns:x="urn:x"><a>1</a></x:thing>`
	if st, _, body := s.do("POST", ch.CallbackURL, "application/xml", xmlDoc); st != 204 {
		t.Fatalf("xml notify: %d %s", st, body)
	}
	_, data, err = c.ReadMessage()
	if err != nil || !strings.Contains(string(data), "<x:thing") {
		t.Fatalf("xml frame %s: %v", data, err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"connCheck":{"checkInterval":60}}`))
	_, data, err = c.ReadMessage()
	if err != nil || string(data) != `{"connAck":{"channelLifetime":100}}` {
		t.Fatalf("connAck %s: %v", data, err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`<nc:connCheck xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"><checkInterval>5</checkInterval></nc:connCheck>`))
	_, data, err = c.ReadMessage()
	if err != nil || !strings.Contains(string(data), "<nc:connAck") || !strings.Contains(string(data), "<channelLifetime>100</channelLifetime>") {
		t.Fatalf("xml connAck %s: %v", data, err)
	}
}

// A new socket on the channel supersedes the old one.
func TestNewSocketSupersedes(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("WebSockets", "")
	old := mustDial(t, ch.ChannelData.ChannelURL, ProtocolOMA)
	_ = mustDial(t, ch.ChannelData.ChannelURL, ProtocolOMA)
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := old.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("old socket: %v", err)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	s := startServer(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "alice-token", User: "alice"}, {Token: "bob-token-1", User: "bob"}}
		c.Channels.AllowedOrigins = []string{"https://app.example"}
	})
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	_, _, body := s.do("POST", "/notificationchannel/v1/alice/channels", "application/json",
		`{"notificationChannel":{"channelType":"WebSockets"}}`, "Authorization", "Bearer alice-token")
	var doc struct{ NotificationChannel chanDoc }
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(body)
	}
	u := doc.NotificationChannel.ChannelData.ChannelURL
	cases := []struct {
		name, url, proto string
		h                http.Header
		status           int
	}{
		{"no token", u, ProtocolOMA, nil, 401},
		{"wrong token", u, ProtocolOMA, hdr("Authorization", "Bearer nope-nope"), 401},
		{"other user", u, ProtocolOMA, hdr("Authorization", "Bearer bob-token-1"), 403},
		{"unknown channel", strings.Replace(u, "/channels/", "/channels/0", 1), ProtocolOMA, hdr("Authorization", "Bearer alice-token"), 404},
		{"no subprotocol", u, "", hdr("Authorization", "Bearer alice-token"), 400},
		{"wrong subprotocol", u, "chat", hdr("Authorization", "Bearer alice-token"), 400},
		{"bad origin", u, ProtocolOMA, hdr("Authorization", "Bearer alice-token", "Origin", "https://evil.example"), 403},
		{"bad window", u + "?window=0", ProtocolAck, hdr("Authorization", "Bearer alice-token"), 400},
	}
	for _, tc := range cases {
		_, resp, err := dial(t, tc.url, tc.proto, tc.h)
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			got := 0
			if resp != nil {
				got = resp.StatusCode
			}
			t.Errorf("%s: status %d, want %d (%v)", tc.name, got, tc.status, err)
		}
	}
	for _, ok := range []http.Header{
		hdr("Authorization", "Bearer alice-token", "Origin", "https://app.example"),
		hdr("Origin", s.url),
	} {
		url := u
		if ok.Get("Authorization") == "" {
			url += "?access_token=alice-token"
		}
		c, _, err := dial(t, url, ProtocolOMA, ok)
		if err != nil {
			t.Errorf("allowed handshake %v: %v", ok, err)
			continue
		}
		c.Close()
	}
}

// A client frame over the read limit closes the socket with 1009.
func TestOversizeClientFrame(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("WebSockets", "")
	c := mustDial(t, ch.ChannelData.ChannelURL, ProtocolOMA)
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"connCheck":"`+strings.Repeat("x", 64<<10)+`"}`))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("want close 1009, got %v", err)
	}
}

// Issue 16, F10: pings are answered up to a rate; a flood closes the socket with
// 1008 (policy violation).
func TestPingFloodClosesWith1008(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("WebSockets", "")
	c := mustDial(t, ch.ChannelData.ChannelURL, ProtocolAck)
	for range 1000 {
		if err := c.WriteControl(websocket.PingMessage, []byte("x"), time.Now().Add(5*time.Second)); err != nil {
			break // the server closed already
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Fatalf("after a ping flood: %v, want close 1008", err)
		}
		return
	}
}
