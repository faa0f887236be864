package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/destkind"
	"notifyrelay/internal/await"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// withoutFuncWatcher makes startServer give the bridge an engine without
// queue.FuncWatcher (TestWebSocketsWithoutFuncWatcher sets it; no test runs in
// parallel).
var withoutFuncWatcher bool

// server is the bridge on a real Badger queue and a real fasthttp listener on
// 127.0.0.1, wired as app/ wires it (the app needs the relay, built in parallel).
type server struct {
	t        testing.TB
	url      string
	b        *Bridge
	q        queue.Engine
	cfg      config.Config
	srv      *fasthttp.Server
	mu       sync.Mutex
	settled  map[string]bool
	stopOnce sync.Once
}

func startServer(t testing.TB, mod func(*config.Config)) *server {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	if mod != nil {
		mod(&cfg)
	}
	return startOn(t, cfg)
}

func startOn(t testing.TB, cfg config.Config) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.PublicURL = "http://" + ln.Addr().String()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	q, err := queue.OpenBadger(cfg.DataDir, queue.BadgerOptions{GCInterval: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, url: cfg.PublicURL, q: q, cfg: cfg, settled: map[string]bool{}}
	var bq queue.Engine = q
	if withoutFuncWatcher {
		bq = struct{ queue.Engine }{q} // hides WatchFunc: the bridge falls back to Watch
	}
	s.b, err = New(Options{Config: cfg, Log: zerolog.Nop(), Registerer: prometheus.NewRegistry(), Queue: bq,
		Auth: api.NewAuth(cfg.Auth.Tokens), OnSettled: s.onSettled})
	if err != nil {
		t.Fatal(err)
	}
	rt := api.NewRouter(nil, zerolog.Nop())
	s.b.Routes(rt)
	if err := s.b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.srv = &fasthttp.Server{MaxRequestBodySize: int(cfg.Limits.MaxBody), CloseOnShutdown: true, KeepHijackedConns: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			if !rt.Serve(ctx) {
				api.Fail(ctx, oma.NotFound(string(ctx.Path())))
			}
		},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) { api.Fail(ctx, oma.TooLarge(int(cfg.Limits.MaxBody))) },
	}
	go func() { _ = s.srv.Serve(CountingListener(ln)) }()
	t.Cleanup(s.stop)
	return s
}

// stop shuts down as app.Stop does: drain, listener, bridge, queue.
func (s *server) stop() { s.stopOnce.Do(s.shutdown) }

func (s *server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.b.Drain(ctx)
	_ = s.srv.ShutdownWithContext(ctx)
	if err := s.b.Stop(ctx); err != nil {
		s.t.Errorf("bridge stop: %v", err)
	}
	_ = s.q.Close()
}

func (s *server) onSettled(tag string, delivered bool) {
	s.mu.Lock()
	s.settled[tag] = delivered
	s.mu.Unlock()
}

// do sends one request; body "" sends none.
func (s *server) do(method, path, ctype, body string, hdr ...string) (int, http.Header, string) {
	s.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = s.url + path
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// chanDoc is the JSON notificationChannel the server answers.
type chanDoc struct {
	ChannelType string `json:"channelType"`
	ChannelData struct {
		ChannelURL       string `json:"channelURL"`
		MaxNotifications int    `json:"maxNotifications"`
	} `json:"channelData"`
	ChannelLifetime int    `json:"channelLifetime"`
	CallbackURL     string `json:"callbackURL"`
	ResourceURL     string `json:"resourceURL"`
}

// create makes a channel for alice with a JSON body and returns it.
func (s *server) create(typ string, extra string) chanDoc {
	s.t.Helper()
	body := `{"notificationChannel":{"channelType":"` + typ + `"` + extra + `}}`
	st, _, resp := s.do("POST", "/notificationchannel/v1/alice/channels", "application/json", body)
	if st != 201 {
		s.t.Fatalf("create: %d %s", st, resp)
	}
	var doc struct {
		NotificationChannel chanDoc `json:"notificationChannel"`
	}
	if err := json.Unmarshal([]byte(resp), &doc); err != nil {
		s.t.Fatal(err)
	}
	return doc.NotificationChannel
}

// notify POSTs one JSON notification carrying n to a callbackURL.
func (s *server) notify(cb string, n int) {
	s.t.Helper()
	st, _, resp := s.do("POST", cb, "application/json", notification(n))
	if st != 204 {
		s.t.Fatalf("notify %d: %d %s", n, st, resp)
	}
}

func notification(n int) string {
	return `{"testNotification":{"n":` + strconv.Itoa(n) + `}}`
}

// dial opens a channel WebSocket with a gorilla client.
func dial(t testing.TB, channelURL, proto string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 5 * time.Second}
	if proto == "" {
		d.Subprotocols = nil
	}
	return d.Dial(channelURL, hdr)
}

func mustDial(t testing.TB, channelURL, proto string) *websocket.Conn {
	t.Helper()
	c, resp, err := dial(t, channelURL, proto, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", channelURL, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ackMsg is a frame of acknowledged mode.
type ackMsg struct {
	Seq          uint64  `json:"seq"`
	PrevSeq      *uint64 `json:"prevSeq"`
	ContentType  string  `json:"contentType"`
	Notification string  `json:"notification"`
}

// readAck reads one acknowledged-mode frame within 5 s.
func readAck(t testing.TB, c *websocket.Conn) ackMsg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m ackMsg
	if err := json.Unmarshal(data, &m); err != nil || m.Seq == 0 || m.PrevSeq == nil {
		t.Fatalf("frame %s: %v", data, err)
	}
	return m
}

// numberOf extracts n from a test notification document.
func numberOf(t testing.TB, doc []byte) int {
	t.Helper()
	var v struct {
		TestNotification struct {
			N int `json:"n"`
		} `json:"testNotification"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(doc), &v); err != nil {
		t.Fatalf("notification %s: %v", doc, err)
	}
	return v.TestNotification.N
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	await.Until(t, 10*time.Second, what, cond)
}

// appendTagged queues a tagged notification on ch, as the relay does for chat.
func (s *server) appendTagged(t testing.TB, ch chanDoc, tag string) {
	t.Helper()
	env := oma.Envelope{ContentType: "application/json", Body: []byte(notification(0)), Tag: tag}
	e := queue.Entry{ID: tag, Dest: destkind.ChannelPrefix + idOf(ch), Data: env.Marshal()}
	if _, err := s.q.Append(context.Background(), queue.Write{Entries: []queue.Entry{e}}); err != nil {
		t.Fatal(err)
	}
}

func testutilCount(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
