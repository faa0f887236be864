package clientjs_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
	"notifyrelay/internal/browsertest"
)

// A page that only loads the module, for tests that drive it from script.
const labPage = `<!doctype html><meta charset="utf-8"><title>lab</title>
<script type="module">
import { NotifyRelay } from "/client/notifyrelay.js";
window.NotifyRelay = NotifyRelay;
</script>`

// A waitUntil promise that rejects leaves the notification unacknowledged: it
// comes again, before anything after it. A deleted channel stops the client with
// error.gone; a refused token rejects start() with its status.
func TestBrowserClientRefusalGoneAndToken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	b := browsertest.Start(t, 2*time.Minute)
	f := apptest.NewFront(t, map[string]string{"/lab.html": labPage})
	a := apptest.Start(t, func(c *config.Config) {
		c.PublicURL = f.URL
		c.Auth.Tokens = []config.Token{{Token: "alice-token", User: "alice"}}
	})
	f.To(a.Addr())
	b.Do(t, "open", chromedp.Navigate(f.URL+"/lab.html"))
	b.WaitFor(t, "the module", "window.NotifyRelay", 20*time.Second)
	browsertest.Eval[bool](t, b, `(() => {
		window.log = [];
		window.nr = new NotifyRelay({ token: "alice-token", storage: null, backoffMin: 20, backoffMax: 200 });
		let refuse = true;
		nr.addEventListener("notification", (e) => {
			if (e.detail.seq === 2 && refuse) {
				refuse = false;
				e.detail.waitUntil(new Promise((_, no) => setTimeout(() => no(new Error("not now")), 300))); // 3 comes meanwhile
				return;
			}
			log.push(e.detail.seq);
		});
		nr.addEventListener("state", (e) => {
			if (e.detail.state === "stopped") window.stopped = { gone: !!e.detail.error?.gone };
		});
		nr.start().then((ch) => { window.ch = ch; });
		return true;
	})()`)
	b.WaitFor(t, "the channel", "window.ch", 20*time.Second)
	ch := browsertest.Eval[map[string]any](t, b, "window.ch")
	post := func(n string) {
		resp, err := http.Post(ch["callbackURL"].(string), "application/json", strings.NewReader(`{"n":`+n+`}`))
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("post: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	post("1")
	post("2")
	post("3")
	b.WaitFor(t, "1, 2 (again), 3", `window.log.join() === "1,2,3"`, 20*time.Second)

	req, _ := http.NewRequest("DELETE", ch["resourceURL"].(string), nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("delete: %v %v", err, resp)
	}
	resp.Body.Close()
	b.WaitFor(t, "stopped, gone", "window.stopped && window.stopped.gone", 20*time.Second)

	status, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](
		`new NotifyRelay({ token: "nope", storage: null }).start().then(() => "started", (e) => String(e.status))`, chromedp.EvalAwaitPromise))
	if err != nil || status != "401" {
		t.Fatalf("bad token: %q %v", status, err)
	}
}
