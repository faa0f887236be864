package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
	"notifyrelay/internal/await"
	"notifyrelay/internal/browsertest"
)

const opToken = "op-console-token"

// receiver is a webhook receiver: it refuses (400, so the notification is
// dead-lettered at once) until accept is set, and records what it accepted.
type receiver struct {
	srv    *httptest.Server
	accept atomic.Bool
	mu     sync.Mutex
	got    []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if !r.accept.Load() {
			w.WriteHeader(400)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, string(body))
		r.mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received(body string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.got {
		if g == body {
			return true
		}
	}
	return false
}

// operator calls the operator API and returns the status and body.
func operator(t *testing.T, method, u, body string) (int, string) {
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+opToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsoleInChromium opens the console in a real headless Chromium: the page
// loads with no errors, a dead letter shows up and its replay reaches the
// receiver, a destination is paused from the page, channels are listed, and the
// live numbers move under load.
func TestConsoleInChromium(t *testing.T) {
	b := browsertest.Start(t, 90*time.Second)
	rcv := newReceiver(t)
	a := apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: opToken, Operator: true}, {Token: "alice-token", User: "alice"}}
		c.Delivery.AllowPrivateTargets = true
	})
	base := apptest.URL(a)
	deliveries := base + "/relay/v1/deliveries?notifyURL=" + url.QueryEscape(rcv.srv.URL+"/hook")
	const letter = `{"order":"dead-then-replayed"}`
	if st, body := operator(t, "POST", deliveries, letter); st != 202 {
		t.Fatalf("post: %d %s", st, body)
	}

	b.Do(t, "open the console", chromedp.Navigate(base+"/console/#token="+opToken))
	b.WaitFor(t, "live numbers", `document.getElementById("num-accepted").textContent !== "–"`, 20*time.Second)
	shoot(t, b, "live")

	b.Do(t, "dead letters tab", chromedp.Click(chromedp.CSS(`button[data-tab="deadletters"]`)))
	b.WaitFor(t, "the dead letter listed", `document.querySelector("#deadletters tbody button.dl-inspect")`, 20*time.Second)
	b.Do(t, "inspect", chromedp.Click(chromedp.CSS("#deadletters tbody button.dl-inspect")))
	b.WaitFor(t, "its body shown", `document.getElementById("dl-detail-body").textContent === `+jsString(letter), 10*time.Second)
	b.WaitFor(t, "its failed attempt shown", `(() => { const c = document.querySelectorAll("#dl-history tbody tr td");
		return c.length === 5 && c[0].textContent === "1" && c[2].textContent === "400"; })()`, 10*time.Second)
	shoot(t, b, "deadletters")
	rcv.accept.Store(true)
	b.Do(t, "replay", chromedp.Click(chromedp.CSS("#deadletters tbody button.dl-replay")))
	waitUntil(t, "the receiver gets the replayed notification", func() bool { return rcv.received(letter) })

	pauseFromPage(t, b, base)
	channelsListed(t, b, base)
	liveUnderLoad(t, b, deliveries)

	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %v", errs)
	}
}

// pauseFromPage gives a destination work (a receiver that answers 503) and
// pauses it with the page's button.
func pauseFromPage(t *testing.T, b *browsertest.Browser, base string) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(slow.Close)
	if st, body := operator(t, "POST", base+"/relay/v1/deliveries?notifyURL="+url.QueryEscape(slow.URL+"/busy"), `{}`); st != 202 {
		t.Fatalf("post: %d %s", st, body)
	}
	b.Do(t, "destinations tab", chromedp.Click(chromedp.CSS(`button[data-tab="destinations"]`)))
	b.WaitFor(t, "the busy destination listed with a pause button", `document.querySelector("#destinations tbody button.dest-pause")`, 20*time.Second)
	b.Do(t, "pause", chromedp.Click(chromedp.CSS("#destinations tbody button.dest-pause")))
	waitUntil(t, "the destination paused", func() bool {
		_, body := operator(t, "GET", base+"/relay/v1/destinations", "")
		return strings.Contains(body, `"paused":true`)
	})
	b.WaitFor(t, "the page offers resume", `document.querySelector("#destinations tbody button.dest-resume")`, 10*time.Second)
	shoot(t, b, "destinations")
}

func channelsListed(t *testing.T, b *browsertest.Browser, base string) {
	req, _ := http.NewRequest("POST", base+"/notificationchannel/v1/alice/channels",
		strings.NewReader(`{"notificationChannel":{"channelType":"LongPolling","clientCorrelator":"console"}}`))
	req.Header.Set("Authorization", "Bearer alice-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create channel: %v %v", err, resp)
	}
	resp.Body.Close()
	b.Do(t, "channels tab", chromedp.Click(chromedp.CSS(`button[data-tab="channels"]`)))
	b.WaitFor(t, "alice's channel listed", `[...document.querySelectorAll("#channels tbody td")].some(td => td.textContent === "alice")`, 10*time.Second)
}

// liveUnderLoad posts deliveries (4 posters) until the live view shows them
// accepted and delivered per second.
func liveUnderLoad(t *testing.T, b *browsertest.Browser, deliveries string) {
	b.Do(t, "live tab", chromedp.Click(chromedp.CSS(`button[data-tab="live"]`)))
	stop := make(chan struct{})
	var posters sync.WaitGroup
	for p := range 4 {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				operator(t, "POST", deliveries, fmt.Sprintf(`{"poster":%d,"n":%d}`, p, i))
			}
		}()
	}
	defer func() { close(stop); posters.Wait() }()
	b.WaitFor(t, "accepted/s and delivered/s above 0",
		`parseFloat(document.getElementById("num-accepted").textContent) > 0 && parseFloat(document.getElementById("num-delivered").textContent) > 0`,
		30*time.Second)
	b.WaitFor(t, "a latency shown", `/[0-9] (ms|s)/.test(document.getElementById("num-latency").textContent)`, 10*time.Second)
	if os.Getenv("NOTIFYRELAY_SCREENSHOTS") != "" {
		time.Sleep(15 * time.Second) // a picture with some history in the charts
	}
	shoot(t, b, "live-load")
}

// shoot saves a screenshot to docs/ when NOTIFYRELAY_SCREENSHOTS is set (the
// pictures in docs/console.md come from here).
func shoot(t *testing.T, b *browsertest.Browser, name string) {
	if os.Getenv("NOTIFYRELAY_SCREENSHOTS") == "" {
		return
	}
	b.Screenshot(t, "../docs/console-"+name+".png")
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	await.Until(t, 20*time.Second, what, ok)
}

func jsString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}
