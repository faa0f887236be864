package relay_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// operatorDest is the documented id of (notifyURL, key).
func operatorDest(notifyURL, key string) string {
	sum := sha256.Sum256([]byte(notifyURL + "\x00" + key))
	return "o:" + hex.EncodeToString(sum[:16])
}

// whSettings is PUT /destinations/{id}.
func whSettings(t testing.TB, a *app.App, dest, body string) (int, map[string]any) {
	t.Helper()
	status, _, b := whDo(t, http.MethodPut, apptest.URL(a)+"/relay/v1/destinations/"+dest, whOperator, "application/json", []byte(body))
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return status, v
}

// Custom headers set before the first delivery reach the receiver; the signature
// and seq headers cannot be set; header values are not shown back.
func TestCustomHeaders(t *testing.T) {
	rc := whListen(t, nil)
	a := whStart(t, func(c *config.Config) { c.Delivery.SigningSecret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0" })
	dest := operatorDest(rc.URL("/h"), "")
	for _, bad := range []string{`{"headers":{"webhook-signature":"v1,forged"}}`, `{"headers":{"Notifyrelay-Seq":"1"}}`,
		`{"headers":{"Content-Type":"text/plain"}}`, `{"headers":{"X-Bad":"a\r\nb"}}`, `{"headers":{"bad name":"x"}}`,
		`{"rateLimit":{"rate":-1,"burst":1}}`, `{"other":1}`} {
		if status, _ := whSettings(t, a, dest, bad); status != http.StatusBadRequest {
			t.Errorf("PUT %s: %d, want 400", bad, status)
		}
	}
	status, view := whSettings(t, a, dest, `{"headers":{"Authorization":"Bearer receiver-secret","x-tenant":"t1"}}`)
	if status != http.StatusOK || fmt.Sprint(view["headers"]) != "[Authorization X-Tenant]" {
		t.Fatalf("PUT headers: %d %v", status, view)
	}
	whWaitState(t, a, whPost(t, a, rc.URL("/h"), "", `{"n":1}`), "delivered", 10*time.Second)
	h := rc.requests()[0].Header
	if h.Get("Authorization") != "Bearer receiver-secret" || h.Get("X-Tenant") != "t1" ||
		h.Get("webhook-signature") == "" || h.Get("notifyrelay-seq") != "1" {
		t.Fatalf("headers %v", h)
	}
	if status, _ := whSettings(t, a, "o:nothex", `{}`); status != http.StatusNotFound {
		t.Errorf("PUT on a malformed id: %d, want 404", status)
	}
}

// arrivals returns when the receiver got each 2xx answered request at path.
func arrivals(rc *whReceiver, path string) []time.Time {
	var out []time.Time
	for _, r := range rc.requests() {
		if r.Path == path && r.Status/100 == 2 {
			out = append(out, r.At)
		}
	}
	return out
}

// A destination paced at 20/s with bursts of 1 (the configured default) takes at
// least 10/20 s for 11 notifications, in order, none dropped; a destination set
// to its own unlimited rate is not paced. Only lower bounds are checked: a slow
// machine makes delivery slower, never faster.
func TestRateLimitPaces(t *testing.T) {
	rc := whListen(t, nil)
	a := whStart(t, func(c *config.Config) { c.Delivery.RateLimit = config.RateLimit{Rate: 20, Burst: 1} })
	if status, view := whSettings(t, a, operatorDest(rc.URL("/free"), ""), `{"rateLimit":{"rate":0,"burst":1}}`); status != http.StatusOK || view["rateLimit"] != nil {
		t.Fatalf("PUT unlimited: %d %v", status, view)
	}
	var items []whItem
	for i := range 11 {
		for _, path := range []string{"/paced", "/free"} {
			items = append(items, whItem{NotifyURL: rc.URL(path), ContentType: "application/json", Body: fmt.Sprintf(`{"n":%d}`, i)})
		}
	}
	whBatch(t, a, items)
	whWait(t, 30*time.Second, "22 deliveries", func() bool { return len(rc.delivered("/paced"))+len(rc.delivered("/free")) == 22 })
	for _, path := range []string{"/paced", "/free"} {
		for i, body := range rc.delivered(path) {
			if body != fmt.Sprintf(`{"n":%d}`, i) {
				t.Fatalf("%s: delivery %d is %s", path, i, body)
			}
		}
	}
	at := arrivals(rc, "/paced")
	if took := at[10].Sub(at[0]); took < 450*time.Millisecond {
		t.Fatalf("11 notifications at 20/s arrived within %v, want at least 500ms (less a tick)", took)
	}
	t.Logf("paced: 11 in %v; unlimited: 11 in %v", at[10].Sub(at[0]), arrivals(rc, "/free")[10].Sub(arrivals(rc, "/free")[0]))
}

// 429s halve the pace: after three of them, five notifications at a nominal 40/s
// take at least as long as at a quarter of that.
func TestRateLimit429LowersPace(t *testing.T) {
	var n atomic.Int32
	rc := whListen(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if n.Add(1) <= 3 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	a := whStart(t, nil)
	if status, _ := whSettings(t, a, operatorDest(rc.URL("/busy"), ""), `{"rateLimit":{"rate":40,"burst":1}}`); status != http.StatusOK {
		t.Fatal(status)
	}
	var items []whItem
	for i := range 5 {
		items = append(items, whItem{NotifyURL: rc.URL("/busy"), ContentType: "application/json", Body: strconv.Itoa(i)})
	}
	whBatch(t, a, items)
	whWait(t, 30*time.Second, "5 deliveries", func() bool { return len(rc.delivered("/busy")) == 5 })
	at := arrivals(rc, "/busy")
	// At 40/s, 4 gaps take 100ms; halved three times (5/s, rising by 1/64 of 40/s
	// per delivery) they take more than 4 × 1/10 s.
	if took := at[4].Sub(at[0]); took < 400*time.Millisecond {
		t.Fatalf("5 notifications after three 429s arrived within %v, want the pace lowered", took)
	}
}

// A destination waiting for its rate limit's next slot is listed as pacing, with
// the time of that slot.
func TestRateLimitedDestinationListedAsPacing(t *testing.T) {
	rc := whListen(t, nil)
	a := whStart(t, func(c *config.Config) { c.Delivery.RateLimit = config.RateLimit{Rate: 0.2, Burst: 1} })
	item := whItem{NotifyURL: rc.URL("/p"), ContentType: "application/json", Body: `{}`}
	whBatch(t, a, []whItem{item, item, item})
	whWait(t, 10*time.Second, "the first delivery", func() bool { return len(rc.delivered("/p")) == 1 })
	var state string
	var next *time.Time
	whWait(t, 10*time.Second, "the destination listed as pacing", func() bool {
		_, _, b := whDo(t, http.MethodGet, apptest.URL(a)+"/relay/v1/destinations", whOperator, "", nil)
		var out struct {
			Destinations []struct {
				State         string
				NextAttemptAt *time.Time
			}
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.Destinations) != 1 {
			t.Fatalf("destinations %s: %v (one with two notifications queued)", b, err)
		}
		state, next = out.Destinations[0].State, out.Destinations[0].NextAttemptAt
		return state == "pacing"
	})
	if next == nil || next.Before(time.Now().Add(-time.Second)) || next.After(time.Now().Add(5*time.Second)) {
		t.Fatalf("pacing until %v, want within the next 5 s (0.2/s)", next)
	}
}
