package relay_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"notifyrelay/app/apptest"
)

// idemPost is POST /deliveries with an Idempotency-Key on the server at base.
func idemPost(t testing.TB, base, notifyURL, key, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/relay/v1/deliveries?notifyURL="+url.QueryEscape(notifyURL), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+whOperator)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r.ID, resp.Header.Get("Location")
}

// The same Idempotency-Key gives the first answer and queues nothing again, also
// when 20 requests carry it at once; the same key with another body is 422; a
// key over 255 characters is 400; a batch key is separate from a single one.
func TestIdempotencyKey(t *testing.T) {
	a := whStart(t, nil)
	rc := whListen(t, nil)
	base, target := apptest.URL(a), rc.URL("/idem")
	status, first, loc := idemPost(t, base, target, "k-1", `{"n":1}`)
	if status != http.StatusAccepted || first == "" {
		t.Fatalf("first POST: %d %q", status, first)
	}
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Go(func() {
			st, id, again := idemPost(t, base, target, "k-1", `{"n":1}`)
			ids[i] = id
			if st != http.StatusAccepted || again != loc {
				t.Errorf("repeat: %d Location %q, want 202 %q", st, again, loc)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != first {
			t.Fatalf("repeat answered id %s, want %s", id, first)
		}
	}
	if status, _, _ := idemPost(t, base, target, "k-1", `{"n":2}`); status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body: %d, want 422", status)
	}
	if status, _, _ := idemPost(t, base, target, strings.Repeat("k", 256), `{"n":3}`); status != http.StatusBadRequest {
		t.Errorf("malformed key: %d, want 400", status)
	}
	status, other, _ := idemPost(t, base, target, "k-2", `{"n":1}`)
	if status != http.StatusAccepted || other == first {
		t.Fatalf("another key: %d %s", status, other)
	}
	whWaitState(t, a, other, "delivered", 10*time.Second)
	if got := rc.delivered("/idem"); len(got) != 2 {
		t.Fatalf("receiver got %v, want the two distinct keys' notifications once each", got)
	}
}

// A key answered before a SIGKILL is still answered after the restart, with the
// same id, and the notification reaches the receiver once (one webhook-id).
func TestIdempotencyKeyAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	rc := whListen(t, nil)
	opts := apptest.ProcOptions{DataDir: t.TempDir(), Env: []string{"NOTIFYRELAY_DELIVERY_ALLOW_PRIVATE_TARGETS=true"}}
	p := apptest.StartProcess(t, opts)
	status, id, _ := idemPost(t, p.URL, rc.URL("/r"), "order-42", `{"order":42}`)
	if status != http.StatusAccepted {
		t.Fatalf("POST: %d", status)
	}
	p.Kill()
	p = apptest.StartProcess(t, opts)
	status, again, _ := idemPost(t, p.URL, rc.URL("/r"), "order-42", `{"order":42}`)
	if status != http.StatusAccepted || again != id {
		t.Fatalf("after the restart: %d id %s, want 202 %s", status, again, id)
	}
	marker := whBatchAt(t, p.URL, []whItem{{NotifyURL: rc.URL("/r"), ContentType: "application/json", Body: `{"marker":1}`}})[0]
	whWait(t, 30*time.Second, "the marker behind it", func() bool {
		_, _, b := whDo(t, http.MethodGet, p.URL+"/relay/v1/deliveries/"+marker, whOperator, "", nil)
		var d whDelivery
		return json.Unmarshal(b, &d) == nil && d.State == "delivered"
	})
	got := rc.delivered("/r")
	if len(got) != 2 || got[0] != `{"order":42}` || got[1] != `{"marker":1}` {
		t.Fatalf("receiver got %v (distinct webhook-ids), want the order once, then the marker", got)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}
