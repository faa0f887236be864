package relay_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"notifyrelay/config"
)

// 1,000 notifications to one destination whose receiver fails at random (503,
// hangs past the attempt deadline, connection resets) arrive in order, none
// missing, each with one webhook-id across all its attempts.
func TestDeliveryOrderThroughFailures(t *testing.T) {
	a := whStart(t, func(c *config.Config) { c.Delivery.Timeout = config.Duration(150 * time.Millisecond) })
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(1, 2))
	rc := whListen(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		p := rnd.IntN(100)
		mu.Unlock()
		switch {
		case p < 15:
			w.WriteHeader(http.StatusServiceUnavailable)
		case p < 17:
			select { // hang until the relay gives up on the attempt
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			w.WriteHeader(http.StatusNoContent)
		case p < 22:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close() // reset: no response at all
			}
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	const n = 1000
	var ids []string
	for chunk := 0; chunk < n; chunk += 100 {
		items := make([]whItem, 100)
		for i := range items {
			items[i] = whItem{NotifyURL: rc.URL("/order"), ContentType: "application/json", Body: fmt.Sprintf(`{"n":%d}`, chunk+i)}
		}
		ids = append(ids, whBatch(t, a, items)...)
	}
	whWait(t, 60*time.Second, "1,000 deliveries", func() bool { return len(rc.delivered("/order")) == n })
	for i, body := range rc.delivered("/order") {
		if want := fmt.Sprintf(`{"n":%d}`, i); body != want {
			t.Fatalf("delivery %d is %s, want %s", i, body, want)
		}
	}
	idOf := map[string]string{}
	for _, r := range rc.requests() {
		if prev, ok := idOf[r.Body]; ok && prev != r.ID {
			t.Fatalf("%s carried webhook-id %s and %s", r.Body, prev, r.ID)
		}
		idOf[r.Body] = r.ID
	}
	for i, id := range ids {
		if got := idOf[fmt.Sprintf(`{"n":%d}`, i)]; got != id {
			t.Fatalf("notification %d: webhook-id %q, want the delivery id %q", i, got, id)
		}
	}
	t.Logf("%d requests for %d notifications", len(rc.requests()), n)
}

// A receiver that hangs does not delay others: 100 healthy destinations get all
// their notifications while the hung attempt is still waiting for its answer.
func TestDeliveryIsolation(t *testing.T) {
	a := whStart(t, func(c *config.Config) {
		c.Delivery.Workers = 4
		c.Delivery.Timeout = config.Duration(30 * time.Second)
	})
	release := make(chan struct{})
	hung := whListen(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	healthy := whListen(t, nil)
	for i := range 3 {
		whPost(t, a, hung.URL("/hang"), "", fmt.Sprintf(`{"hang":%d}`, i))
	}
	var items []whItem
	for i := range 10 {
		for d := range 100 {
			items = append(items, whItem{NotifyURL: healthy.URL(fmt.Sprintf("/d%d", d)), ContentType: "application/json", Body: fmt.Sprintf(`{"i":%d}`, i)})
		}
	}
	whBatch(t, a, items)
	whWait(t, 30*time.Second, "1,000 healthy deliveries", func() bool { return len(healthy.requests()) >= 1000 })
	close(release) // only now may the hung receiver answer
	if got := len(hung.requests()); got != 0 {
		t.Fatalf("the hung receiver answered %d requests before it was released", got)
	}
	for d := range 100 {
		got := healthy.delivered(fmt.Sprintf("/d%d", d))
		if len(got) != 10 || got[0] != `{"i":0}` || got[9] != `{"i":9}` {
			t.Fatalf("destination %d got %v", d, got)
		}
	}
	whWait(t, 30*time.Second, "the hung destination", func() bool { return len(hung.delivered("/hang")) == 3 })
}

// Every status class: 2xx delivered after one attempt; 408, 429, 5xx retried until
// they succeed; 3xx (never followed) and other 4xx dead after one attempt.
func TestDeliveryStatusClasses(t *testing.T) {
	a := whStart(t, nil)
	var mu sync.Mutex
	failed := map[string]bool{}
	rc := whListen(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		var code int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/s/"), "%d", &code)
		mu.Lock()
		first := !failed[r.URL.Path]
		failed[r.URL.Path] = true
		mu.Unlock()
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/followed")
		}
		if first || code < 300 || code >= 400 && code < 500 && code != 408 && code != 429 {
			w.WriteHeader(code)
			return
		}
		w.WriteHeader(http.StatusOK) // the retry of a retryable status succeeds
	})
	cases := map[int]struct {
		state    string
		attempts int
	}{
		200: {"delivered", 1}, 201: {"delivered", 1}, 202: {"delivered", 1}, 204: {"delivered", 1}, 299: {"delivered", 1},
		301: {"dead", 1}, 302: {"dead", 1}, 303: {"dead", 1}, 307: {"dead", 1}, 308: {"dead", 1},
		400: {"dead", 1}, 401: {"dead", 1}, 403: {"dead", 1}, 404: {"dead", 1}, 410: {"dead", 1}, 413: {"dead", 1}, 422: {"dead", 1},
		408: {"delivered", 2}, 429: {"delivered", 2}, 500: {"delivered", 2}, 502: {"delivered", 2}, 503: {"delivered", 2}, 504: {"delivered", 2}, 599: {"delivered", 2},
	}
	ids := map[int]string{}
	for code := range cases {
		ids[code] = whPost(t, a, rc.URL(fmt.Sprintf("/s/%d", code)), "", `{"code":true}`)
	}
	for code, want := range cases {
		d := whWaitState(t, a, ids[code], want.state, 10*time.Second)
		if d.Attempts != want.attempts {
			t.Errorf("status %d: %d attempts, want %d", code, d.Attempts, want.attempts)
		}
		if want.state == "dead" && !strings.Contains(d.LastError, fmt.Sprintf("HTTP %d", code)) {
			t.Errorf("status %d: lastError %q", code, d.LastError)
		}
		if want.state == "delivered" && d.DeliveredAt == nil {
			t.Errorf("status %d: no deliveredAt", code)
		}
	}
	for _, r := range rc.requests() {
		if r.Path == "/followed" {
			t.Fatal("a redirect was followed")
		}
	}
}

// Retry-After is honoured as the receiver asked, beyond delivery.backoff.max, up to
// delivery.retry_after_max and never past max_age. Checked on the due time the
// server scheduled (GET /destinations nextAttemptAt), not on the test's timing.
func TestDeliveryRetryAfter(t *testing.T) {
	a := whStart(t, func(c *config.Config) {
		c.Delivery.Backoff = config.Backoff{Initial: config.Duration(time.Millisecond), Max: config.Duration(500 * time.Millisecond)}
		c.Delivery.RetryAfterMax = config.Duration(2 * time.Second)
	})
	rc := whListen(t, retryAfterOnce(map[string]func() string{
		"/seconds": func() string { return "1" },
		"/date":    func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
		"/capped":  func() string { return "86400" },
	}))
	for _, c := range []struct {
		path   string
		lo, hi time.Duration // due time minus the 429's request time
	}{
		{"/seconds", time.Second, 2 * time.Second},
		{"/date", time.Second, 3 * time.Second}, // HTTP dates have 1 s resolution
		{"/capped", 2 * time.Second, 2 * time.Second},
	} {
		id := whPost(t, a, rc.URL(c.path), "", `{}`)
		due, seen := whNextAttempt(t, a, rc.URL(c.path))
		first := rc.requests()[len(rc.requests())-1].At
		if due.Before(first.Add(c.lo)) || due.After(seen.Add(c.hi)) {
			t.Errorf("%s: next attempt due %v after the 429, want %v..%v", c.path, due.Sub(first), c.lo, c.hi)
		}
		whWaitState(t, a, id, "delivered", 10*time.Second)
		if second := rc.requests()[len(rc.requests())-1]; second.At.Before(due) {
			t.Errorf("%s: retried at %v, before its due time %v", c.path, second.At, due)
		}
	}

	// max_age 2 s: a Retry-After of an hour is cut to what max_age leaves, then the
	// notification is dead-lettered (not kept for an hour).
	b := whStart(t, func(c *config.Config) { c.Delivery.MaxAge = config.Duration(2 * time.Second) })
	id := whPost(t, b, rc.URL("/hour"), "", `{}`)
	due, _ := whNextAttempt(t, b, rc.URL("/hour"))
	created := whGetDelivery(t, b, id).CreatedAt
	// createdAt and the queue's acceptance time differ by microseconds: 1 s of slack,
	// against the hour asked.
	if due.After(created.Add(3 * time.Second)) {
		t.Errorf("next attempt due %v after acceptance, past max_age 2s", due.Sub(created))
	}
	if d := whWaitState(t, b, id, "dead", 10*time.Second); !strings.Contains(d.LastError, "max_age") {
		t.Errorf("lastError %q", d.LastError)
	}
}

// retryAfterOnce answers the first request on each path with 429 and the path's
// Retry-After ("3600" for unknown paths), later ones with 204.
func retryAfterOnce(after map[string]func() string) func(http.ResponseWriter, *http.Request, []byte) {
	var mu sync.Mutex
	seen := map[string]int{}
	return func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		seen[r.URL.Path]++
		first := seen[r.URL.Path] == 1
		mu.Unlock()
		if !first {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h := "3600"
		if f, ok := after[r.URL.Path]; ok {
			h = f()
		}
		w.Header().Set("Retry-After", h)
		w.WriteHeader(http.StatusTooManyRequests)
	}
}

// A response body is read up to 4 KiB: a huge error body is cut in lastError, and
// a huge success body does not fail the delivery.
func TestDeliveryOversizeResponseBody(t *testing.T) {
	a := whStart(t, func(c *config.Config) { c.Delivery.MaxAttempts = 1 })
	huge := strings.Repeat("x", 1<<20)
	rc := whListen(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = w.Write([]byte(huge))
	})
	bad := whPost(t, a, rc.URL("/bad"), "", `{}`)
	good := whPost(t, a, rc.URL("/good"), "", `{}`)
	whWaitState(t, a, good, "delivered", 10*time.Second)
	d := whWaitState(t, a, bad, "dead", 10*time.Second)
	if len(d.LastError) > 4<<10+200 || !strings.Contains(d.LastError, "HTTP 500: xxxx") {
		t.Fatalf("lastError is %d bytes: %.80q", len(d.LastError), d.LastError)
	}
}

// max_attempts dead-letters after exactly that many HTTP attempts; max_age
// dead-letters what is older than it.
func TestDeliveryMaxAttemptsAndMaxAge(t *testing.T) {
	a := whStart(t, func(c *config.Config) { c.Delivery.MaxAttempts = 3 })
	rc := whListen(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(http.StatusBadGateway) })
	id := whPost(t, a, rc.URL("/always502"), "", `{}`)
	d := whWaitState(t, a, id, "dead", 10*time.Second)
	if d.Attempts != 3 || len(rc.requests()) != 3 || !strings.Contains(d.LastError, "max_attempts") {
		t.Fatalf("max_attempts 3: %d attempts, %d requests, lastError %q", d.Attempts, len(rc.requests()), d.LastError)
	}

	b := whStart(t, func(c *config.Config) { c.Delivery.MaxAge = config.Duration(300 * time.Millisecond) })
	id = whPost(t, b, rc.URL("/aging"), "", `{}`)
	d = whWaitState(t, b, id, "dead", 10*time.Second)
	if !strings.Contains(d.LastError, "max_age") || d.Attempts < 1 {
		t.Fatalf("max_age: %+v", d)
	}
}
