package relay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
	"notifyrelay/internal/await"
)

// Tokens of the webhook tests' servers.
const (
	whOperator = "operator-token-1"
	whUser     = "user-token-0001"
)

// whStart runs notifyrelay in process for webhook tests: private targets allowed
// (the receivers are on 127.0.0.1), short backoff, an operator and a user token.
func whStart(t testing.TB, mod func(*config.Config)) *app.App {
	t.Helper()
	return apptest.Start(t, func(c *config.Config) {
		c.Delivery.AllowPrivateTargets = true
		c.Delivery.Backoff = config.Backoff{Initial: config.Duration(time.Millisecond), Max: config.Duration(20 * time.Millisecond)}
		c.Delivery.Timeout = config.Duration(2 * time.Second)
		c.Delivery.Workers = 16
		c.ShutdownTimeout = config.Duration(3 * time.Second)
		c.Auth.Tokens = []config.Token{{Token: whOperator, Operator: true}, {Token: whUser, User: "tel:+19585550100"}}
		if mod != nil {
			mod(c)
		}
	})
}

// whRequest is one request a receiver saw, with the status it answered.
type whRequest struct {
	ID     string
	Path   string
	Body   string
	Header http.Header
	Status int
	At     time.Time
}

// whReceiver is a webhook receiver on 127.0.0.1 that records every request.
// respond (nil: 204) writes the answer.
type whReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []whRequest
	respond func(w http.ResponseWriter, r *http.Request, body []byte)
}

func whListen(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *whReceiver {
	return whListenAt(t, "127.0.0.1:0", respond)
}

// whListenAt starts a receiver on addr (a port chosen earlier, for a receiver that
// comes up late).
func whListenAt(t testing.TB, addr string, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *whReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &whReceiver{respond: respond}
	rc.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(rc.serve)}}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *whReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if rc.respond == nil {
		rec.WriteHeader(http.StatusNoContent)
	} else {
		rc.respond(rec, r, body)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, whRequest{ID: r.Header.Get("webhook-id"), Path: r.URL.Path, Body: string(body),
		Header: r.Header.Clone(), Status: rec.status, At: time.Now()})
	rc.mu.Unlock()
}

// URL is the receiver's URL for path.
func (rc *whReceiver) URL(path string) string { return rc.srv.URL + path }

// requests returns every request so far, in arrival order.
func (rc *whReceiver) requests() []whRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]whRequest(nil), rc.got...)
}

// delivered returns the bodies answered 2xx, first occurrence only, in order.
func (rc *whReceiver) delivered(path string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rc.requests() {
		if r.Path == path && r.Status/100 == 2 && !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r.Body)
		}
	}
	return out
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Hijack lets a respond function reset the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// whDo sends one request with the operator token unless token is given.
func whDo(t testing.TB, method, u, token, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// whPost hands one JSON notification to the operator API and returns its id.
func whPost(t testing.TB, a *app.App, notifyURL, key, body string) string {
	t.Helper()
	u := apptest.URL(a) + "/relay/v1/deliveries?notifyURL=" + url.QueryEscape(notifyURL)
	if key != "" {
		u += "&key=" + url.QueryEscape(key)
	}
	status, _, b := whDo(t, http.MethodPost, u, whOperator, "application/json", []byte(body))
	if status != http.StatusAccepted {
		t.Fatalf("POST /deliveries: %d %s", status, b)
	}
	var r struct{ ID, State string }
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" || r.State != "pending" {
		t.Fatalf("POST /deliveries answer %s: %v", b, err)
	}
	return r.ID
}

// whItem is one element of a batch.
type whItem struct {
	NotifyURL   string `json:"notifyURL"`
	Key         string `json:"key,omitempty"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

// whBatch queues items in one request and returns their ids.
func whBatch(t testing.TB, a *app.App, items []whItem) []string {
	t.Helper()
	return whBatchAt(t, apptest.URL(a), items)
}

// whBatchAt queues items on the server at base.
func whBatchAt(t testing.TB, base string, items []whItem) []string {
	t.Helper()
	b, _ := json.Marshal(items)
	status, _, out := whDo(t, http.MethodPost, base+"/relay/v1/deliveries:batch", whOperator, "application/json", b)
	if status != http.StatusAccepted {
		t.Fatalf("POST /deliveries:batch: %d %s", status, out)
	}
	var r struct{ IDs []string }
	if err := json.Unmarshal(out, &r); err != nil || len(r.IDs) != len(items) {
		t.Fatalf("batch answer %s: %v", out, err)
	}
	return r.IDs
}

// whDelivery is GET /deliveries/{id}.
type whDelivery struct {
	ID, NotifyURL, Key, State, LastError string
	Attempts                             int
	CreatedAt                            time.Time
	DeliveredAt                          *time.Time
}

func whGetDelivery(t testing.TB, a *app.App, id string) whDelivery {
	t.Helper()
	status, _, b := whDo(t, http.MethodGet, apptest.URL(a)+"/relay/v1/deliveries/"+id, whOperator, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /deliveries/%s: %d %s", id, status, b)
	}
	var d whDelivery
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// whWaitState polls a delivery until it reaches state.
func whWaitState(t testing.TB, a *app.App, id, state string, within time.Duration) whDelivery {
	t.Helper()
	var d whDelivery
	whWait(t, within, fmt.Sprintf("delivery %s %s", id, state), func() bool {
		d = whGetDelivery(t, a, id)
		return d.State == state
	})
	return d
}

// whWait polls cond until it holds, failing the test after within.
func whWait(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	await.Until(t, within, what, cond)
}

// whNextAttempt polls GET /destinations until notifyURL's destination is retrying
// and returns its nextAttemptAt and when the test saw it.
func whNextAttempt(t testing.TB, a *app.App, notifyURL string) (due, seen time.Time) {
	t.Helper()
	whWait(t, 10*time.Second, "a retrying destination for "+notifyURL, func() bool {
		_, _, b := whDo(t, http.MethodGet, apptest.URL(a)+"/relay/v1/destinations", whOperator, "", nil)
		seen = time.Now()
		var out struct {
			Destinations []struct {
				NotifyURL     string
				State         string
				NextAttemptAt *time.Time
			}
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("destinations: %v: %s", err, b)
		}
		for _, d := range out.Destinations {
			if d.NotifyURL == notifyURL && d.State == "retrying" && d.NextAttemptAt != nil {
				due = *d.NextAttemptAt
				return true
			}
		}
		return false
	})
	return due, seen
}
