package relay_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// whReplayRange is POST /deadletters:replay.
func whReplayRange(t testing.TB, a *app.App, body string) (int, int, bool) {
	t.Helper()
	status, _, b := whDo(t, http.MethodPost, apptest.URL(a)+"/relay/v1/deadletters:replay", whOperator, "application/json", []byte(body))
	var r struct {
		Replayed int
		More     bool
	}
	_ = json.Unmarshal(b, &r)
	return status, r.Replayed, r.More
}

// Dead letters are replayed by destination (with a limit), by time range and by
// id range, each call answering how many; each destination gets them back in the
// order they were first accepted.
func TestReplayDeadLettersByRange(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	rc := whListen(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if broken.Load() {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	a := whStart(t, nil)
	dead := func(path, body string) (id, dest string) {
		id, dest = whPostDest(t, a, rc.URL(path), body)
		whWaitState(t, a, id, "dead", 10*time.Second)
		return id, dest
	}
	var destA string
	for i := range 5 {
		_, destA = dead("/a", fmt.Sprintf(`{"a":%d}`, i))
	}
	dead("/b", `{"b":1}`)
	mid := time.Now()
	dead("/b", `{"b":2}`)
	lone, _ := dead("/c", `{"c":1}`)
	broken.Store(false)

	for _, bad := range []string{`{}`, `{"limit":5}`, `{"destination":"` + destA + `","limit":-1}`, `{"what":1}`} {
		if status, _, _ := whReplayRange(t, a, bad); status != http.StatusBadRequest {
			t.Errorf("replay %s: %d, want 400", bad, status)
		}
	}
	if status, n, more := whReplayRange(t, a, `{"destination":"`+destA+`","limit":3}`); status != http.StatusAccepted || n != 3 || !more {
		t.Fatalf("first 3 of /a: %d %d more=%v", status, n, more)
	}
	if _, n, more := whReplayRange(t, a, `{"destination":"`+destA+`"}`); n != 2 || more {
		t.Fatalf("the rest of /a: %d more=%v", n, more)
	}
	whWait(t, 10*time.Second, "/a replayed", func() bool { return len(rc.delivered("/a")) == 5 })
	until, _ := json.Marshal(mid)
	if _, n, _ := whReplayRange(t, a, `{"notifyURL":"`+rc.URL("/b")+`","until":`+string(until)+`}`); n != 1 {
		t.Fatalf("/b until the middle: %d, want 1", n)
	}
	whWait(t, 10*time.Second, "b1", func() bool { return len(rc.delivered("/b")) == 1 })
	if _, n, _ := whReplayRange(t, a, `{"since":`+string(until)+`,"notifyURL":"`+rc.URL("/b")+`"}`); n != 1 {
		t.Fatalf("/b since the middle: %d, want 1", n)
	}
	if _, n, _ := whReplayRange(t, a, `{"fromId":"`+lone+`","toId":"`+lone+`"}`); n != 1 {
		t.Fatalf("id range of one: %d", n)
	}
	whWait(t, 10*time.Second, "the rest", func() bool { return len(rc.delivered("/b")) == 2 && len(rc.delivered("/c")) == 1 })
	for i, body := range rc.delivered("/a") {
		if body != fmt.Sprintf(`{"a":%d}`, i) {
			t.Fatalf("/a got %v, want accepted order", rc.delivered("/a"))
		}
	}
	if got := rc.delivered("/b"); got[0] != `{"b":1}` || got[1] != `{"b":2}` {
		t.Fatalf("/b got %v", got)
	}
	if _, n, _ := whReplayRange(t, a, `{"destination":"`+destA+`"}`); n != 0 {
		t.Fatalf("nothing left to replay, replayed %d", n)
	}
}

// With delivery.retain_delivered, delivered notifications are delivered again
// from a seq (same webhook-ids, new seqs, pending again then delivered); without
// it there is nothing to re-deliver.
func TestRedeliverRetained(t *testing.T) {
	rc := whListen(t, nil)
	a := whStart(t, func(c *config.Config) { c.Delivery.RetainDelivered = config.Duration(time.Hour) })
	var ids []string
	var dest string
	for i := 1; i <= 3; i++ {
		var id string
		id, dest = whPostDest(t, a, rc.URL("/r"), fmt.Sprintf(`{"n":%d}`, i))
		ids = append(ids, id)
	}
	whWaitState(t, a, ids[2], "delivered", 10*time.Second)
	status, _, b := whDo(t, http.MethodPost, apptest.URL(a)+"/relay/v1/destinations/"+dest+"/redeliver", whOperator, "application/json", []byte(`{"fromSeq":2}`))
	var r struct {
		Redelivered int
		More        bool
	}
	if status != http.StatusAccepted || json.Unmarshal(b, &r) != nil || r.Redelivered != 2 || r.More {
		t.Fatalf("redeliver: %d %s", status, b)
	}
	whWait(t, 10*time.Second, "the re-deliveries", func() bool { return len(rc.requests()) == 5 })
	d := whWaitState(t, a, ids[2], "delivered", 10*time.Second)
	if d.Attempts != 2 {
		t.Errorf("re-delivered delivery %+v, want 2 attempts", d)
	}
	reqs := rc.requests()
	for i, want := range []struct{ id, seq, prev, body string }{{ids[1], "4", "3", `{"n":2}`}, {ids[2], "5", "4", `{"n":3}`}} {
		h := reqs[3+i].Header
		if reqs[3+i].ID != want.id || h.Get("notifyrelay-seq") != want.seq || h.Get("notifyrelay-prev-seq") != want.prev || reqs[3+i].Body != want.body {
			t.Errorf("re-delivery %d: id %s seq %s prev %s body %s, want %+v", i, reqs[3+i].ID, h.Get("notifyrelay-seq"), h.Get("notifyrelay-prev-seq"), reqs[3+i].Body, want)
		}
	}

	off := whStart(t, nil)
	id, offDest := whPostDest(t, off, rc.URL("/off"), `{"n":1}`)
	whWaitState(t, off, id, "delivered", 10*time.Second)
	status, _, b = whDo(t, http.MethodPost, apptest.URL(off)+"/relay/v1/destinations/"+offDest+"/redeliver", whOperator, "", nil)
	if status != http.StatusAccepted || string(b) != `{"more":false,"redelivered":0}` {
		t.Fatalf("redeliver with retention off: %d %s", status, b)
	}
}

// A retained delivery is forgotten once delivery.retain_delivered has passed: the
// sweeper removes it and there is nothing left to re-deliver.
func TestRetainedDeliveriesExpire(t *testing.T) {
	rc := whListen(t, nil)
	a := whStart(t, func(c *config.Config) { c.Delivery.RetainDelivered = config.Duration(time.Second) })
	id, dest := whPostDest(t, a, rc.URL("/r"), `{"n":1}`)
	whWaitState(t, a, id, "delivered", 10*time.Second)
	redeliver := func() string {
		status, _, b := whDo(t, http.MethodPost, apptest.URL(a)+"/relay/v1/destinations/"+dest+"/redeliver", whOperator, "", nil)
		if status != http.StatusAccepted {
			t.Fatalf("redeliver: %d %s", status, b)
		}
		return string(b)
	}
	if got := redeliver(); got != `{"more":false,"redelivered":1}` {
		t.Fatalf("within retention: %s", got)
	}
	whWait(t, 10*time.Second, "the re-delivery", func() bool { return len(rc.requests()) == 2 })
	start := time.Now()
	whWait(t, 20*time.Second, "the sweeper to remove both retained deliveries", func() bool {
		return strings.Contains(metricsText(t, a), `notifyrelay_delivery_records_swept_total{what="retained"} 2`)
	})
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Fatalf("removed after %v, before retain_delivered (1 s) had passed", waited)
	}
	if got := redeliver(); got != `{"more":false,"redelivered":0}` {
		t.Fatalf("after retention: %s", got)
	}
}
