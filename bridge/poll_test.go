package bridge

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"notifyrelay/config"
	"notifyrelay/destkind"
)

type pollResult struct {
	status int
	body   string
}

// poll runs a long poll in the background.
func (s *server) pollAsync(url string) <-chan pollResult {
	out := make(chan pollResult, 1)
	go func() {
		st, _, body := s.do("POST", url, "application/json", `{"longPollingRequestParameters":null}`)
		out <- pollResult{st, body}
	}()
	return out
}

func waitResult(t *testing.T, ch <-chan pollResult) pollResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("poll did not answer")
		return pollResult{}
	}
}

func TestLongPolling(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Channels.PollTimeout = config.Duration(300 * time.Millisecond) })
	ch := s.create("LongPolling", `,"channelData":{"maxNotifications":2}`)
	url := ch.ChannelData.ChannelURL
	// Nothing pending: an empty list at the poll timeout.
	if r := waitResult(t, s.pollAsync(url)); r.status != 200 || r.body != `{"notificationList":[]}` {
		t.Fatalf("empty poll: %+v", r)
	}
	// Pending: answered at once, at most maxNotifications.
	for i := 1; i <= 3; i++ {
		s.notify(ch.CallbackURL, i)
	}
	r := waitResult(t, s.pollAsync(url))
	if r.status != 200 || r.body != `{"notificationList":[`+notification(1)+`,`+notification(2)+`]}` {
		t.Fatalf("poll: %+v", r)
	}
	// The next poll never repeats what the previous one answered.
	if r = waitResult(t, s.pollAsync(url)); r.body != `{"notificationList":[`+notification(3)+`]}` {
		t.Fatalf("second poll: %+v", r)
	}
	// A waiting poll is answered as soon as a notification arrives.
	pending := s.pollAsync(url)
	eventually(t, "poll waiting", func() bool { return s.waitingPoll(ch) })
	s.notify(ch.CallbackURL, 4)
	if r = waitResult(t, pending); r.body != `{"notificationList":[`+notification(4)+`]}` {
		t.Fatalf("woken poll: %+v", r)
	}
}

func (s *server) waitingPoll(ch chanDoc) bool {
	c := s.b.store.hub.get(idOf(ch))
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.poll != nil
}

func TestLongPollSupersededAndDeleted(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("LongPolling", "")
	first := s.pollAsync(ch.ChannelData.ChannelURL)
	eventually(t, "first poll waiting", func() bool { return s.waitingPoll(ch) })
	c := s.b.store.hub.get(idOf(ch))
	c.mu.Lock()
	firstPoller := c.poll
	c.mu.Unlock()
	second := s.pollAsync(ch.ChannelData.ChannelURL)
	if r := waitResult(t, first); r.status != 409 || !strings.Contains(r.body, "SVC1012") {
		t.Fatalf("first poll: %+v", r)
	}
	eventually(t, "second poll waiting", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.poll != nil && c.poll != firstPoller
	})
	if st, _, _ := s.do("DELETE", ch.ResourceURL, "", ""); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if r := waitResult(t, second); r.status != 404 || !strings.Contains(r.body, "SVC0004") {
		t.Fatalf("second poll after delete: %+v", r)
	}
	if st, _, _ := s.do("POST", ch.ChannelData.ChannelURL, "", ""); st != 404 {
		t.Fatalf("poll of a deleted channel: %d", st)
	}
}

func TestLongPollXMLAndLifetimeReset(t *testing.T) {
	s := startServer(t, nil)
	st, h, body := s.do("POST", "/notificationchannel/v1/alice/channels", "application/xml",
		`<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"><channelType>LongPolling</channelType><channelLifetime>50</channelLifetime></nc:notificationChannel>`)
	if st != 201 {
		t.Fatalf("%d %s", st, body)
	}
	res := h.Get("Location")
	id := res[strings.LastIndexByte(res, '/')+1:]
	c := s.b.store.hub.get(id)
	s.b.store.hub.refresh(c, 50, time.Now().Add(-40*time.Second)) // 10 s left
	cb := c.st.callback(s.b.store)
	if st, _, body := s.do("POST", cb, "application/xml", `<?xml version="1.0"?><x:n xmlns:x="urn:x">1</x:n>`); st != 204 {
		t.Fatalf("notify: %d %s", st, body)
	}
	st, _, body = s.do("POST", res+"/poll", "application/xml", `<nc:longPollingRequestParameters xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"/>`)
	want := `<nc:notificationList xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"><x:n xmlns:x="urn:x">1</x:n></nc:notificationList>`
	if st != 200 || !strings.HasSuffix(body, want) {
		t.Fatalf("xml poll: %d %s", st, body)
	}
	if _, _, body = s.do("GET", res+"/channelLifetime", "", "", "Accept", "application/json"); body != `{"notificationChannelLifetime":{"channelLifetime":50}}` {
		t.Fatalf("lifetime not reset by the poll: %s", body)
	}
	if st, _, body = s.do("POST", res+"/poll", "application/json", `{"somethingElse":1}`); st != 400 {
		t.Fatalf("bad poll body: %d %s", st, body)
	}
}

// A long-poll answer counts as delivered once written: its tagged notification is
// settled and acknowledged (and counted) without another poll, and a restart right
// after does not send it again.
func TestLongPollDeliveredOnceWritten(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Channels.PollTimeout = config.Duration(300 * time.Millisecond) })
	ch := s.create("LongPolling", "")
	s.appendTagged(t, ch, "n1")
	if r := waitResult(t, s.pollAsync(ch.ChannelData.ChannelURL)); r.body != `{"notificationList":[`+notification(0)+`]}` {
		t.Fatalf("poll: %+v", r)
	}
	eventually(t, "settled and acknowledged without another poll", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.settled["n1"] && s.q.DestStats(destkind.ChannelPrefix+idOf(ch)).Depth == 0
	})
	if n := testutilCount(s.b.metrics.delivered); n != 1 {
		t.Fatalf("notifyrelay_notifications_delivered_total{kind=channel} = %v, want 1", n)
	}
	s.stop()
	s2 := startOn(t, s.cfg)
	path := strings.TrimPrefix(ch.ChannelData.ChannelURL, s.url)
	if r := waitResult(t, s2.pollAsync(s2.url+path)); r.status != 200 || r.body != `{"notificationList":[]}` {
		t.Fatalf("poll after restart repeats: %+v", r)
	}
}

// An answer whose write fails (fasthttp closes the body without reading it to the
// end) leaves its notifications queued, and the channel free for the next poll.
func TestLongPollAnswerNotWrittenStaysQueued(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("LongPolling", "")
	s.appendTagged(t, ch, "n1")
	c := s.b.store.hub.get(idOf(ch))
	p := &poller{ended: make(chan int, 1)}
	c.mu.Lock()
	c.poll = p
	c.mu.Unlock()
	done, ok := c.beginAnswer(p)
	if !ok {
		t.Fatal("beginAnswer refused the current poll")
	}
	if _, again := c.beginAnswer(p); again {
		t.Fatal("two answers in flight on one channel")
	}
	s.b.conns.wg.Add(1)
	a := &pollAnswer{t: s.b.poll, c: c, out: []byte("xy"), seq: 1, done: done}
	buf := make([]byte, 1)
	_, _ = a.Read(buf) // part of the body went out, then the write failed
	_ = a.CloseWithError(io.ErrClosedPipe)
	if c.inFlight() != nil || s.q.DestStats(c.dest()).Depth != 1 || s.settled["n1"] {
		t.Fatalf("failed answer: in flight %v, depth %d, settled %v", c.inFlight() != nil, s.q.DestStats(c.dest()).Depth, s.settled)
	}
	c.endPoll(p)
	r := waitResult(t, s.pollAsync(ch.ChannelData.ChannelURL))
	if r.body != `{"notificationList":[`+notification(0)+`]}` {
		t.Fatalf("next poll: %+v", r)
	}
}

// An HTTP/1.0 client gets the answer with a Content-Length (no chunks) and it
// counts as delivered.
func TestLongPollHTTP10(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("LongPolling", "")
	s.notify(ch.CallbackURL, 1)
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	path := strings.TrimPrefix(ch.ChannelData.ChannelURL, s.url)
	if _, err := io.WriteString(c, "POST "+path+" HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, _ := io.ReadAll(c)
	want := "\r\n\r\n" + `{"notificationList":[` + notification(1) + `]}`
	if !strings.Contains(string(resp), "Content-Length: ") || !strings.HasSuffix(string(resp), want) {
		t.Fatalf("HTTP/1.0 answer: %q", resp)
	}
	eventually(t, "acknowledged", func() bool { return s.q.DestStats(destkind.ChannelPrefix+idOf(ch)).Depth == 0 })
}

// The answer follows Accept when it names XML or JSON: the empty list is in that
// format and a pending run of the other format is refused with 406, unconsumed.
func TestLongPollAccept(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Channels.PollTimeout = config.Duration(200 * time.Millisecond) })
	ch := s.create("LongPolling", "")
	url := ch.ChannelData.ChannelURL
	poll := func(accept string) (int, string) {
		st, _, body := s.do("POST", url, "", "", "Accept", accept)
		return st, body
	}
	if st, body := poll("application/xml"); st != 200 || !strings.HasSuffix(body, `<nc:notificationList xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"/>`) {
		t.Fatalf("empty XML poll: %d %s", st, body)
	}
	if st, body := poll("text/plain"); st != 406 {
		t.Fatalf("Accept text/plain: %d %s", st, body)
	}
	s.notify(ch.CallbackURL, 1)
	if st, body := poll("application/xml"); st != 406 || !strings.Contains(body, "POL0011") || !strings.HasPrefix(body, "<") {
		t.Fatalf("JSON notification to an XML poll: %d %s", st, body)
	}
	if st, body := poll("*/*"); st != 200 || body != `{"notificationList":[`+notification(1)+`]}` {
		t.Fatalf("*/* poll: %d %s", st, body)
	}
	s.notify(ch.CallbackURL, 2)
	if st, body := poll("application/json"); st != 200 || body != `{"notificationList":[`+notification(2)+`]}` {
		t.Fatalf("JSON poll: %d %s", st, body)
	}
	// Accepting both formats takes a run of either; an empty list in the first named.
	if st, body := poll("application/xml, application/json"); st != 200 || !strings.HasSuffix(body, `notificationchannel:1"/>`) {
		t.Fatalf("empty poll accepting both: %d %s", st, body)
	}
	s.notify(ch.CallbackURL, 3)
	if st, body := poll("application/xml, application/json;q=0.5"); st != 200 || body != `{"notificationList":[`+notification(3)+`]}` {
		t.Fatalf("poll accepting both: %d %s", st, body)
	}
}
