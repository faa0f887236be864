package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/delivery"
	"notifyrelay/queue"
)

var errInjected = errors.New("injected storage failure")

// faultyQueue is a real Badger queue whose writes or record reads fail on demand.
type faultyQueue struct {
	queue.Engine
	failAppend, failGet atomic.Bool
}

func (f *faultyQueue) Append(ctx context.Context, w queue.Write) ([]uint64, error) {
	if f.failAppend.Load() {
		return nil, errInjected
	}
	return f.Engine.Append(ctx, w)
}

func (f *faultyQueue) Get(ctx context.Context, key []byte) ([]byte, error) {
	if f.failGet.Load() {
		return nil, errInjected
	}
	return f.Engine.Get(ctx, key)
}

// startFaulty serves the relay's APIs on 127.0.0.1 over a faultyQueue and returns
// the chat base URL of bob.
func startFaulty(t *testing.T) (*faultyQueue, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = "http://" + ln.Addr().String()
	cfg.Delivery.AllowPrivateTargets = true
	e, err := queue.OpenBadger(cfg.DataDir, queue.BadgerOptions{GCInterval: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	q := &faultyQueue{Engine: e}
	r, err := New(Options{Config: cfg, Log: zerolog.Nop(), Queue: q, Auth: api.NewAuth(nil), Book: delivery.NewBook(q)})
	if err != nil {
		t.Fatal(err)
	}
	rt := api.NewRouter(nil, zerolog.Nop())
	r.Routes(rt)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { rt.Serve(ctx) }}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		_ = e.Close()
	})
	return q, cfg.PublicURL + "/chat/v1/tel%3A%2B19585550101/subscriptions"
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const subBody = `{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"http://127.0.0.1:9/hook"},"clientCorrelator":"c1"}}`

// A DELETE whose deletion cannot be written answers 503 with a requestError and
// leaves the subscription in place.
func TestDeleteSubscriptionFailureIs503(t *testing.T) {
	q, subs := startFaulty(t)
	st, body := httpDo(t, "POST", subs, subBody)
	if st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	res := subs + "/" + body[strings.LastIndex(body, "/")+1:strings.LastIndex(body, `"`)]
	q.failAppend.Store(true)
	if st, body = httpDo(t, "DELETE", res, ""); st != 503 || !strings.Contains(body, `"requestError"`) {
		t.Fatalf("failed delete: %d %s", st, body)
	}
	q.failAppend.Store(false)
	if st, body = httpDo(t, "GET", res, ""); st != 200 {
		t.Fatalf("after a failed delete: %d %s", st, body)
	}
	if st, body = httpDo(t, "DELETE", res, ""); st != 204 {
		t.Fatalf("delete: %d %s", st, body)
	}
}

// A clientCorrelator that cannot be looked up answers 503 and creates nothing.
func TestCorrelatorReadFailureIs503(t *testing.T) {
	q, subs := startFaulty(t)
	st, first := httpDo(t, "POST", subs, subBody)
	if st != 201 {
		t.Fatalf("create: %d %s", st, first)
	}
	q.failGet.Store(true)
	if st, body := httpDo(t, "POST", subs, subBody); st != 503 || !strings.Contains(body, `"requestError"`) {
		t.Fatalf("failed correlator read: %d %s", st, body)
	}
	q.failGet.Store(false)
	if st, again := httpDo(t, "POST", subs, subBody); st != 201 || again != first {
		t.Fatalf("repeat: %d %s, want %s", st, again, first)
	}
	if _, list := httpDo(t, "GET", subs, ""); strings.Count(list, `"resourceURL"`) != 2 { // one subscription + the list's own
		t.Fatalf("list: %s", list)
	}
}
