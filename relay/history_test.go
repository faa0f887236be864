package relay_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// attemptView is one element of a history.
type attemptView struct {
	Attempt   int
	At        time.Time
	Status    int
	LatencyMs float64
	Error     string
	Response  string
}

func whHistory(t *testing.T, u string) []attemptView {
	t.Helper()
	status, _, b := whDo(t, http.MethodGet, u, whOperator, "", nil)
	var v struct{ History []attemptView }
	if status != http.StatusOK || json.Unmarshal(b, &v) != nil {
		t.Fatalf("GET %s: %d %s", u, status, b)
	}
	return v.History
}

// Every failed attempt of a delivery is kept with its status, latency and the
// start of the receiver's answer: the dead letter shows them, and after a replay
// the delivery's status shows them all, numbered across the replay.
func TestAttemptHistoryAcrossReplay(t *testing.T) {
	a := whStart(t, nil)
	answers := []struct {
		status int
		body   string
	}{{503, "busy, try later"}, {500, strings.Repeat("x", 2000)}, {400, "bad notification"}, {502, "gateway"}, {204, ""}}
	var mu sync.Mutex
	n := 0
	rc := whListen(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		mu.Lock()
		ans := answers[min(n, len(answers)-1)]
		n++
		mu.Unlock()
		w.WriteHeader(ans.status)
		_, _ = w.Write([]byte(ans.body))
	})
	id := whPost(t, a, rc.URL("/h"), "", `{"n":1}`)
	whWaitState(t, a, id, "dead", 10*time.Second)
	hist := whHistory(t, apptest.URL(a)+"/relay/v1/deadletters/"+id)
	if len(hist) != 3 || hist[0].Attempt != 1 || hist[2].Attempt != 3 ||
		hist[0].Status != 503 || hist[1].Status != 500 || hist[2].Status != 400 {
		t.Fatalf("dead letter history %+v, want 503, 500, 400 numbered 1-3", hist)
	}
	if hist[0].Response != "busy, try later" || len(hist[1].Response) != 512 || hist[0].LatencyMs <= 0 ||
		hist[0].At.After(hist[1].At) {
		t.Fatalf("attempt details %+v", hist[:2])
	}
	if status, _, b := whDo(t, http.MethodPost, apptest.URL(a)+"/relay/v1/deadletters/"+id+":replay", whOperator, "", nil); status != 202 {
		t.Fatalf("replay: %d %s", status, b)
	}
	whWaitState(t, a, id, "delivered", 10*time.Second)
	hist = whHistory(t, apptest.URL(a)+"/relay/v1/deliveries/"+id)
	if len(hist) != 4 || hist[3].Attempt != 4 || hist[3].Status != 502 || hist[3].Response != "gateway" {
		t.Fatalf("history after the replay %+v, want 4 failures, the last a 502", hist)
	}
}

// An attempt with no HTTP answer is kept with the reason, and no status.
func TestAttemptHistoryWithoutAnswer(t *testing.T) {
	a := whStart(t, func(c *config.Config) { c.Delivery.MaxAttempts = 2 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/gone"
	ln.Close() // nothing listens there now: connection refused
	id := whPost(t, a, closed, "", `{"n":1}`)
	whWaitState(t, a, id, "dead", 10*time.Second)
	hist := whHistory(t, apptest.URL(a)+"/relay/v1/deliveries/"+id)
	if len(hist) != 2 || hist[1].Attempt != 2 || hist[1].Status != 0 || hist[1].Error == "" || hist[1].Response != "" {
		t.Fatalf("history %+v, want two attempts without an answer", hist)
	}
}
