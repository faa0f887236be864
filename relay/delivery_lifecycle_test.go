package relay_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// A stop that runs out of time gives the in-flight attempt back: after a restart
// on the same data dir the notification is delivered.
func TestDeliveryStopGivesBackInFlightAttempt(t *testing.T) {
	dir := t.TempDir()
	var hang atomic.Bool
	hang.Store(true)
	inFlight := make(chan struct{}, 1)
	rc := whListen(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if hang.Load() {
			select {
			case inFlight <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	a := whStart(t, func(c *config.Config) {
		c.DataDir = dir
		c.ShutdownTimeout = config.Duration(300 * time.Millisecond)
		c.Delivery.Timeout = config.Duration(time.Minute)
	})
	id := whPost(t, a, rc.URL("/slow"), "", `{"x":1}`)
	select {
	case <-inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt never reached the receiver")
	}
	err := a.Stop() // returns although the receiver never answers
	t.Logf("stop with an attempt in flight: %v", err)
	hang.Store(false)
	b := whStart(t, func(c *config.Config) { c.DataDir = dir })
	whWaitState(t, b, id, "delivered", 10*time.Second)
}

var whSessionID = regexp.MustCompile(`/group/([^/"]+)"`)

// A chat subscription whose webhook answers 410 Gone is ended: the notification is
// dead-lettered, the subscription disappears, and what else was queued for it is
// dropped rather than sent.
func TestDeliveryGoneEndsChatSubscription(t *testing.T) {
	a := whStart(t, func(c *config.Config) { c.Auth.Tokens = nil })
	rc := whListen(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(http.StatusGone) })
	chat := apptest.URL(a) + "/chat/v1/"
	alice, bob := url.QueryEscape("tel:+19585550101"), url.QueryEscape("tel:+19585550102")
	post := func(path, body string) (int, http.Header, string) {
		status, h, b := whDo(t, "POST", chat+path, "", "application/json", []byte(body))
		return status, h, string(b)
	}
	status, h, body := post(bob+"/subscriptions", `{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+rc.URL("/bob")+`"}}}`)
	if status != 201 {
		t.Fatalf("subscribe: %d %s", status, body)
	}
	subURL := h.Get("Location")
	status, _, body = post(alice+"/group", `{"groupChatSessionInformation":{"participant":[{"address":"tel:+19585550102"}]}}`)
	m := whSessionID.FindStringSubmatch(body)
	if status != 201 || m == nil {
		t.Fatalf("group: %d %s", status, body)
	}
	for _, subject := range []string{"one", "two", "three"} {
		if status, _, body := post(alice+"/group/"+m[1]+"/messages", `{"chatSessionData":{"subject":"`+subject+`"}}`); status != 201 {
			t.Fatalf("change: %d %s", status, body)
		}
	}
	whWait(t, 10*time.Second, "the subscription to end", func() bool {
		status, _, _ := whDo(t, "GET", subURL, "", "", nil)
		return status == 404
	})
	whWait(t, 10*time.Second, "its queue to be dropped", func() bool { return len(whDestinations(t, a)) == 0 })
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("the gone webhook got %d requests, want 1", n)
	}
	_, _, b := whDo(t, "GET", apptest.URL(a)+"/relay/v1/deadletters", "", "", nil)
	var r struct {
		Deadletters []struct{ Kind, LastError string }
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.Deadletters) != 1 || r.Deadletters[0].Kind != "subscription" ||
		!strings.Contains(r.Deadletters[0].LastError, "HTTP 410") {
		t.Fatalf("dead letters: %s", b)
	}
}
