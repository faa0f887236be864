package clientjs_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
	"notifyrelay/internal/browsertest"
)

// A page served from another origin uses the module against notifyrelay when
// that origin is in channels.allowed_origins (CORS on the channel API, Origin on
// the WebSocket); from an origin not listed, the browser refuses the page the
// answer and start() fails.
func TestBrowserClientFromAnotherOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	b := browsertest.Start(t, 2*time.Minute)
	var relay string // notifyrelay's origin, known once it runs
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>app</title>
<script type="module">
import { NotifyRelay } from "%[1]s/client/notifyrelay.js";
window.NotifyRelay = NotifyRelay;
window.base = "%[1]s";
</script>`, relay)
	}))
	defer pages.Close()
	a := apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "alice-token", User: "alice"}}
		c.Channels.AllowedOrigins = []string{pages.URL}
	})
	relay = apptest.URL(a)
	b.Do(t, "open the page on its own origin", chromedp.Navigate(pages.URL+"/app.html"))
	b.WaitFor(t, "the module, loaded across origins", "window.NotifyRelay", 20*time.Second)
	browsertest.Eval[bool](t, b, `(() => {
		window.got = [];
		window.nr = new NotifyRelay({ baseURL: window.base, token: "alice-token", storage: null });
		nr.addEventListener("notification", (e) => got.push(e.detail.notification));
		nr.start().then((ch) => { window.ch = ch; }, (e) => { window.failed = String(e); });
		return true;
	})()`)
	b.WaitFor(t, "the channel, created across origins", "window.ch || window.failed", 20*time.Second)
	if failed := browsertest.Eval[string](t, b, `window.failed || ""`); failed != "" {
		t.Fatalf("start() from an allowed origin failed: %s", failed)
	}
	cb := browsertest.Eval[string](t, b, "window.ch.callbackURL")
	resp, err := http.Post(cb, "application/json", strings.NewReader(`{"n":1}`))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("post: %v %v", err, resp)
	}
	resp.Body.Close()
	b.WaitFor(t, "the notification, over the WebSocket", `window.got.length === 1`, 20*time.Second)

	other := apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "alice-token", User: "alice"}}
	})
	// From this page's origin, which other does not list: the browser keeps the
	// answer from the page (the fetch rejects), though the server may have run it.
	create := `fetch("` + apptest.URL(other) + `/notificationchannel/v1/alice/channels", {method: "POST",
		headers: {"Authorization": "Bearer alice-token", "Content-Type": "application/json"},
		body: JSON.stringify({notificationChannel: {channelType: "WebSockets"}})}).then((r) => "read " + r.status, () => "refused")`
	got, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](create, chromedp.EvalAwaitPromise))
	if err != nil || got != "refused" {
		t.Fatalf("from an origin not allowed: %q %v", got, err)
	}
}
