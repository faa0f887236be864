package bridge

import (
	"strings"
	"testing"
	"time"

	"notifyrelay/config"
	"notifyrelay/destkind"
)

func TestCreateFormatsAndRead(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Channels.MaxLifetime = 9000 })
	base := "/notificationchannel/v1/alice/channels"
	xmlBody := `<?xml version="1.0" encoding="UTF-8"?>
<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <clientCorrelator>ch-1</clientCorrelator>
  <applicationTag>myApp</applicationTag>
  <channelType>LongPolling</channelType>
  <channelData xsi:type="nc:LongPollingData"><maxNotifications>10</maxNotifications></channelData>
  <channelLifetime>99999</channelLifetime>
</nc:notificationChannel>`
	st, h, body := s.do("POST", base, "application/xml", xmlBody)
	if st != 201 || !strings.HasPrefix(h.Get("Location"), s.url+base+"/") {
		t.Fatalf("xml create: %d %v %s", st, h, body)
	}
	for _, want := range []string{`<channelData xsi:type="nc:LongPollingData">`, "<channelLifetime>9000</channelLifetime>",
		"<clientCorrelator>ch-1</clientCorrelator>", "<maxNotifications>10</maxNotifications>", "/poll</channelURL>", "<callbackURL>" + s.url + "/notifications/"} {
		if !strings.Contains(body, want) {
			t.Errorf("xml create answer lacks %s: %s", want, body)
		}
	}
	// Same correlator, same body: the same answer; different body: 409 SVC0005.
	if st2, h2, _ := s.do("POST", base, "application/xml", xmlBody); st2 != 201 || h2.Get("Location") != h.Get("Location") {
		t.Fatalf("repeat: %d %s", st2, h2.Get("Location"))
	}
	if st2, _, b2 := s.do("POST", base, "application/xml", strings.Replace(xmlBody, "99999", "5", 1)); st2 != 409 || !strings.Contains(b2, "SVC0005") {
		t.Fatalf("correlator reuse: %d %s", st2, b2)
	}
	st, _, body = s.do("POST", base, "application/x-www-form-urlencoded", "channelType=WebSockets&maxNotifications=3")
	if st != 201 || !strings.Contains(body, `"channelURL":"ws://`) || strings.Contains(body, "type") && strings.Contains(body, "xsi") {
		t.Fatalf("form create: %d %s", st, body)
	}
	ch := s.create("WebSockets", "")
	if ch.ChannelLifetime != 7200 || !strings.HasSuffix(ch.ChannelData.ChannelURL, "/ws") {
		t.Fatalf("json create: %+v", ch)
	}
	st, _, body = s.do("GET", base, "", "", "Accept", "application/json")
	if st != 200 || strings.Count(body, `"channelType"`) != 3 || !strings.Contains(body, `"notificationChannel":[`) {
		t.Fatalf("list: %d %s", st, body)
	}
	if st, _, body = s.do("GET", ch.ResourceURL, "", ""); st != 200 || !strings.Contains(body, ch.CallbackURL) {
		t.Fatalf("read: %d %s", st, body)
	}
	if st, _, body = s.do("GET", base, "", "", "Accept", "application/xml"); st != 200 || !strings.Contains(body, "<nc:notificationChannelList") {
		t.Fatalf("xml list: %d %s", st, body)
	}
}

func TestCreateRefusals(t *testing.T) {
	s := startServer(t, nil)
	base := "/notificationchannel/v1/alice/channels"
	cases := []struct {
		ctype, body string
		status      int
		id          string
	}{
		{"application/json", `{"notificationChannel":{"channelType":"OMAPush"}}`, 403, "POL1023"},
		{"application/json", `{"notificationChannel":{}}`, 400, "SVC0002"},
		{"application/json", `{"notificationChannel":`, 400, "SVC0002"},
		{"application/json", `{"notificationChannel":{"channelType":"WebSockets","channelLifetime":"soon"}}`, 400, "SVC0002"},
		{"application/xml", `<!DOCTYPE x [<!ENTITY a "b">]><notificationChannel><channelType>WebSockets</channelType></notificationChannel>`, 400, "SVC0002"},
		{"application/xml", strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40), 400, "SVC0002"},
		{"text/plain", `hello`, 415, "SVC0002"},
	}
	for _, tc := range cases {
		st, _, body := s.do("POST", base, tc.ctype, tc.body)
		if st != tc.status || !strings.Contains(body, tc.id) {
			t.Errorf("%s %.40s: %d %s, want %d %s", tc.ctype, tc.body, st, body, tc.status, tc.id)
		}
	}
	if st, _, body := s.do("GET", base, "", "", "Accept", "application/json"); st != 200 || strings.Contains(body, `"channelType"`) {
		t.Fatalf("refused creates created something: %s", body)
	}
}

func TestMethodsNotAllowed(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("LongPolling", "")
	cases := []struct{ method, url, allow string }{
		{"PUT", s.url + "/notificationchannel/v1/alice/channels", "GET, POST"},
		{"DELETE", s.url + "/notificationchannel/v1/alice/channels", "GET, POST"},
		{"PUT", ch.ResourceURL, "DELETE, GET"},
		{"POST", ch.ResourceURL, "DELETE, GET"},
		{"POST", ch.ResourceURL + "/channelLifetime", "GET, PUT"},
		{"DELETE", ch.ResourceURL + "/channelLifetime", "GET, PUT"},
		{"GET", ch.ChannelData.ChannelURL, "POST"},
		{"PUT", ch.ChannelData.ChannelURL, "POST"},
		{"GET", ch.CallbackURL, "POST"},
		{"PUT", ch.CallbackURL, "POST"},
		{"DELETE", ch.CallbackURL, "POST"},
	}
	for _, tc := range cases {
		st, h, body := s.do(tc.method, tc.url, "", "")
		if st != 405 || h.Get("Allow") != tc.allow || !strings.Contains(body, "requestError") {
			t.Errorf("%s %s: %d Allow %q, want 405 %q", tc.method, tc.url, st, h.Get("Allow"), tc.allow)
		}
	}
}

func TestAuthOnResources(t *testing.T) {
	s := startServer(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "alice-token", User: "alice"}, {Token: "bob-token-1", User: "bob"}}
	})
	base := "/notificationchannel/v1/alice/channels"
	body := `{"notificationChannel":{"channelType":"WebSockets"}}`
	if st, h, _ := s.do("POST", base, "application/json", body); st != 401 || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d", st)
	}
	if st, _, b := s.do("POST", base, "application/json", body, "Authorization", "Bearer bob-token-1"); st != 403 || !strings.Contains(b, "POL0001") {
		t.Fatalf("other user: %d %s", st, b)
	}
	st, h, _ := s.do("POST", "/notificationchannel/v1/acr:auth/channels", "application/json", body, "Authorization", "Bearer alice-token")
	if st != 201 || !strings.Contains(h.Get("Location"), "/v1/alice/channels/") {
		t.Fatalf("acr:auth: %d %s", st, h.Get("Location"))
	}
	// bob cannot see alice's channel even under his own userId.
	id := h.Get("Location")[strings.LastIndexByte(h.Get("Location"), '/')+1:]
	if st, _, _ := s.do("GET", "/notificationchannel/v1/bob/channels/"+id, "", "", "Authorization", "Bearer bob-token-1"); st != 404 {
		t.Fatalf("bob reads alice's channel: %d", st)
	}
}

func TestLifetimeAndExpiry(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Channels.MaxLifetime = 7200 })
	ch := s.create("WebSockets", `,"channelLifetime":3600`)
	st, _, body := s.do("PUT", ch.ResourceURL+"/channelLifetime", "application/json", `{"notificationChannelLifetime":{"channelLifetime":100000}}`)
	if st != 200 || body != `{"notificationChannelLifetime":{"channelLifetime":7200}}` {
		t.Fatalf("put lifetime: %d %s", st, body)
	}
	st, _, body = s.do("GET", ch.ResourceURL+"/channelLifetime", "", "", "Accept", "application/xml")
	if st != 200 || !strings.Contains(body, "<channelLifetime>7200</channelLifetime>") {
		t.Fatalf("get lifetime: %d %s", st, body)
	}
	if st, _, _ = s.do("PUT", ch.ResourceURL+"/channelLifetime", "application/json", `{"notificationChannelLifetime":{"channelLifetime":1}}`); st != 200 {
		t.Fatal(st)
	}
	// A tagged notification dropped with the expired channel is settled as not delivered.
	s.appendTagged(t, ch, "tag-1")
	c := mustDial(t, ch.ChannelData.ChannelURL, ProtocolAck)
	readAck(t, c)
	eventually(t, "expiry", func() bool {
		st, _, _ := s.do("GET", ch.ResourceURL, "", "")
		return st == 404
	})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("socket of an expired channel stays open")
	}
	if st, _, body := s.do("POST", ch.CallbackURL, "application/json", notification(1)); st != 404 {
		t.Fatalf("callback of an expired channel: %d %s", st, body)
	}
	eventually(t, "queue dropped, tag settled as not delivered", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		d, ok := s.settled["tag-1"]
		return ok && !d && s.q.DestStats(destkind.ChannelPrefix+idOf(ch)).Depth == 0
	})
}

// Channels and their queues survive a restart.
func TestChannelsSurviveRestart(t *testing.T) {
	s := startServer(t, nil)
	ch := s.create("WebSockets", "")
	s.notify(ch.CallbackURL, 1)
	cfg := s.cfg
	s.stop()
	s2 := startOn(t, cfg)
	cb := strings.Replace(ch.CallbackURL, s.url, s2.url, 1)
	s2.notify(cb, 2)
	c := mustDial(t, strings.Replace(ch.ChannelData.ChannelURL, strings.TrimPrefix(s.url, "http://"), strings.TrimPrefix(s2.url, "http://"), 1), ProtocolAck)
	if m := readAck(t, c); m.Seq != 1 || numberOf(t, []byte(m.Notification)) != 1 {
		t.Fatalf("%+v", m)
	}
	if m := readAck(t, c); m.Seq != 2 {
		t.Fatalf("%+v", m)
	}
	if dest, ok := s2.b.CallbackDest(strings.ToUpper(cb[:8]) + cb[8:] + "/"); !ok || dest != destkind.ChannelPrefix+idOf(ch) {
		t.Fatalf("CallbackDest: %q %v", dest, ok)
	}
	if _, ok := s2.b.CallbackDest(s2.url + "/notifications/nope"); ok {
		t.Fatal("CallbackDest of an unknown token")
	}
}

// Issue 16, F9: limits.max_channels_per_user. Over it: 403 POL0001, nothing made;
// deleting a channel makes room again.
func TestChannelQuota(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Limits.MaxChannelsPerUser = 2 })
	first := s.create("WebSockets", "")
	s.create("LongPolling", "")
	body := `{"notificationChannel":{"channelType":"WebSockets"}}`
	st, _, resp := s.do("POST", "/notificationchannel/v1/alice/channels", "application/json", body)
	if st != 403 || !strings.Contains(resp, "POL0001") || !strings.Contains(resp, "limits.max_channels_per_user") {
		t.Fatalf("3rd channel: %d %s", st, resp)
	}
	if st, _, _ := s.do("DELETE", first.ResourceURL, "", ""); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	s.create("WebSockets", "")
}
