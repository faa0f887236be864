package relay_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// whPostDest hands one notification over and returns its id and destination id.
func whPostDest(t testing.TB, a *app.App, notifyURL, body string) (id, dest string) {
	t.Helper()
	status, _, b := whDo(t, http.MethodPost, apptest.URL(a)+"/relay/v1/deliveries?notifyURL="+url.QueryEscape(notifyURL), whOperator, "application/json", []byte(body))
	var r struct{ ID, Destination string }
	if status != http.StatusAccepted || json.Unmarshal(b, &r) != nil || !strings.HasPrefix(r.Destination, "o:") {
		t.Fatalf("POST /deliveries: %d %s", status, b)
	}
	return r.ID, r.Destination
}

// whDestination is dest as GET /destinations lists it (ok false: not listed).
func whDestination(t testing.TB, a *app.App, dest string) (whDest, bool) {
	t.Helper()
	for _, d := range whDestinations(t, a) {
		if d.ID == dest {
			return d, true
		}
	}
	return whDest{}, false
}

// whControl is POST /destinations/{id}/pause or /resume.
func whControl(t testing.TB, a *app.App, dest, action string) (int, whDest) {
	t.Helper()
	status, _, b := whDo(t, http.MethodPost, apptest.URL(a)+"/relay/v1/destinations/"+dest+"/"+action, whOperator, "", nil)
	var d whDest
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
	}
	return status, d
}

// eventSink is an operator URL that records the events it gets.
type eventSink struct {
	wh       *standardwebhooks.Webhook // nil: events are not checked
	mu       sync.Mutex
	events   []map[string]any
	unsigned int // events whose signature did not verify
}

func (s *eventSink) serve(w http.ResponseWriter, r *http.Request, body []byte) {
	var e map[string]any
	_ = json.Unmarshal(body, &e)
	s.mu.Lock()
	s.events = append(s.events, e)
	if s.wh != nil && s.wh.Verify(body, r.Header) != nil {
		s.unsigned++
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// has reports whether an event with these event and cause came for dest.
func (s *eventSink) has(event, cause, dest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e["event"] == event && e["cause"] == cause && e["destination"] == dest {
			return true
		}
	}
	return false
}

// After delivery.breaker.failures failed attempts in a row the destination is
// paused (operator event, signed as webhooks are, metric); once the receiver is
// back a probe succeeds, the destination resumes by itself, and its backlog
// arrives in order.
func TestBreakerOpensAndProbeCloses(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a 32-byte secret for the events!"))
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sink := &eventSink{wh: wh}
	events := whListen(t, sink.serve)
	var down atomic.Bool
	down.Store(true)
	rc := whListen(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	a := whStart(t, func(c *config.Config) {
		c.Delivery.Breaker = config.Breaker{Failures: 3, ProbeInterval: config.Duration(100 * time.Millisecond), OperatorURL: events.URL("/events")}
		c.Delivery.SigningSecret = secret
	})
	first, dest := whPostDest(t, a, rc.URL("/b"), `{"n":1}`)
	whWait(t, 10*time.Second, "the breaker to pause the destination", func() bool {
		d, ok := whDestination(t, a, dest)
		return ok && d.Paused && d.State == "paused"
	})
	whWait(t, 10*time.Second, "the paused event", func() bool { return sink.has("paused", "breaker", dest) })
	if m := metricsText(t, a); !strings.Contains(m, "notifyrelay_webhook_paused_destinations 1") ||
		!strings.Contains(m, `notifyrelay_webhook_pause_events_total{cause="breaker",event="paused"} 1`) {
		t.Errorf("metrics do not show the pause:\n%s", grepLines(m, "paused"))
	}
	second, _ := whPostDest(t, a, rc.URL("/b"), `{"n":2}`)
	down.Store(false)
	whWaitState(t, a, second, "delivered", 10*time.Second)
	whWaitState(t, a, first, "delivered", time.Second)
	whWait(t, 10*time.Second, "the resumed event", func() bool { return sink.has("resumed", "probe", dest) })
	if d, _ := whDestination(t, a, dest); d.Paused {
		t.Fatalf("still paused: %+v", d)
	}
	sink.mu.Lock()
	if sink.unsigned > 0 {
		t.Errorf("%d operator events failed signature verification", sink.unsigned)
	}
	sink.mu.Unlock()
	if got := rc.delivered("/b"); len(got) != 2 || got[0] != `{"n":1}` || got[1] != `{"n":2}` {
		t.Fatalf("delivered %v", got)
	}
}

// The operator pauses a destination (no attempt, not even a probe, while paused;
// other destinations go on), the pause survives a restart, and resume delivers
// the backlog in order. Unknown destinations are 404.
func TestOperatorPauseResume(t *testing.T) {
	rc := whListen(t, nil)
	cfg := apptest.Config(t)
	cfg.Delivery.AllowPrivateTargets = true
	cfg.Delivery.Backoff = config.Backoff{Initial: config.Duration(time.Millisecond), Max: config.Duration(20 * time.Millisecond)}
	cfg.Delivery.Breaker.ProbeInterval = config.Duration(time.Millisecond) // an operator's pause is never probed
	cfg.Auth.Tokens = []config.Token{{Token: whOperator, Operator: true}}
	a := apptest.StartConfig(t, cfg)
	for _, unknown := range []string{"o:00000000000000000000000000000000", "x", "c:abc"} {
		if status, _ := whControl(t, a, unknown, "pause"); status != http.StatusNotFound {
			t.Errorf("pause %s: %d, want 404", unknown, status)
		}
	}
	first, dest := whPostDest(t, a, rc.URL("/p"), `{"n":1}`)
	whWaitState(t, a, first, "delivered", 10*time.Second)
	status, view := whControl(t, a, dest, "pause")
	if status != http.StatusOK || !view.Paused || view.ID != dest || view.NotifyURL != rc.URL("/p") {
		t.Fatalf("pause: %d %+v", status, view)
	}
	whPostDest(t, a, rc.URL("/p"), `{"n":2}`)
	whPostDest(t, a, rc.URL("/p"), `{"n":3}`)
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	a = apptest.StartConfig(t, cfg)
	other, _ := whPostDest(t, a, rc.URL("/other"), `{"n":1}`)
	whWaitState(t, a, other, "delivered", 10*time.Second) // the workers run
	if d, ok := whDestination(t, a, dest); !ok || !d.Paused || d.Depth != 2 {
		t.Fatalf("after the restart: %+v listed %v, want paused with 2 queued", d, ok)
	}
	if got := rc.delivered("/p"); len(got) != 1 {
		t.Fatalf("a paused destination got %v", got)
	}
	if status, view := whControl(t, a, dest, "resume"); status != http.StatusOK || view.Paused {
		t.Fatalf("resume: %d %+v", status, view)
	}
	whWait(t, 10*time.Second, "the backlog", func() bool { return len(rc.delivered("/p")) == 3 })
	if got := rc.delivered("/p"); got[1] != `{"n":2}` || got[2] != `{"n":3}` {
		t.Fatalf("delivered %v", got)
	}
}

// metricsText is the server's /metrics.
func metricsText(t testing.TB, a *app.App) string {
	t.Helper()
	_, _, b := whDo(t, http.MethodGet, apptest.URL(a)+"/metrics", "", "", nil)
	return string(b)
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// While the breaker holds a destination paused, it is probed once per
// probe_interval, not at the retry backoff's pace.
func TestBreakerProbesAreSpaced(t *testing.T) {
	rc := whListen(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(http.StatusServiceUnavailable) })
	const interval = 300 * time.Millisecond
	a := whStart(t, func(c *config.Config) {
		c.Delivery.Breaker = config.Breaker{Failures: 2, ProbeInterval: config.Duration(interval)}
	})
	whPostDest(t, a, rc.URL("/down"), `{"n":1}`)
	whWait(t, 20*time.Second, "two failures and three probes", func() bool { return len(rc.requests()) >= 5 })
	var at []time.Time
	for _, r := range rc.requests() {
		at = append(at, r.At)
	}
	for i := 3; i < 5; i++ { // the probes after the first: each one interval after the one before
		if gap := at[i].Sub(at[i-1]); gap < interval-20*time.Millisecond {
			t.Fatalf("probe %d came %v after the one before, want at least %v (arrivals %v)", i-1, gap, interval, at)
		}
	}
}
