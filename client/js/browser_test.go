package clientjs_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"notifyrelay/app/apptest"
	"notifyrelay/internal/browsertest"
)

// The test page: the library from the server, every notification kept in
// sessionStorage (so the test sees them across reloads).
const testPage = `<!doctype html><meta charset="utf-8"><title>notifyrelay.js test</title>
<script type="module">
import { NotifyRelay } from "/client/notifyrelay.js";
const got = JSON.parse(sessionStorage.getItem("got") || "[]");
window.got = got; window.gaps = []; window.states = [];
const nr = new NotifyRelay({ token: "alice-token", clientCorrelator: "page", backoffMin: 50, backoffMax: 500 });
nr.addEventListener("notification", (e) => {
  got.push({ seq: e.detail.seq, n: e.detail.json().n, root: e.detail.root });
  sessionStorage.setItem("got", JSON.stringify(got));
});
nr.addEventListener("gap", (e) => window.gaps.push(e.detail));
nr.addEventListener("state", (e) => window.states.push(e.detail.state));
window.channel = await nr.start();
</script>`

type arrival struct {
	Seq  uint64
	N    int
	Root string
}

// The module in a real headless Chromium against the real binary: notifications
// arrive in order; after a SIGKILL of the server and after a reload of the page
// it resumes without losing any and without handing any over twice (the last
// acknowledged seq is in localStorage).
func TestBrowserClientAcrossRestartAndReload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary and a browser")
	}
	b := browsertest.Start(t, 3*time.Minute)
	dir, f := t.TempDir(), apptest.NewFront(t, map[string]string{"/page.html": testPage})
	cfg := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(cfg, []byte("auth:\n  tokens:\n    - {token: alice-token, user: alice}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *apptest.Proc {
		p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir, Args: []string{"--config", cfg, "--public-url", f.URL},
			Env: []string{"NOTIFYRELAY_QUEUE_CHECKPOINT_INTERVAL=1h"}}) // acks are lost at each kill
		f.To(p.Addr)
		return p
	}
	p := start()
	b.Do(t, "open the page", chromedp.Navigate(f.URL+"/page.html"))
	b.WaitFor(t, "the channel", "window.channel && window.channel.callbackURL", 20*time.Second)
	cb := browsertest.Eval[string](t, b, "window.channel.callbackURL")

	send(t, cb, 1, 20)
	waitGot(t, b, 20)
	p.Kill() // no checkpoint was written: every acknowledgement is lost, 1…20 come again
	p = start()
	send(t, cb, 21, 40)
	waitGot(t, b, 40)
	send(t, cb, 41, 50)
	b.Do(t, "reload", chromedp.Reload())
	b.WaitFor(t, "the channel after the reload", "window.channel", 20*time.Second)
	p.Kill() // and again: the reloaded page knows what it handled only from localStorage
	p = start()
	send(t, cb, 51, 60)
	waitGot(t, b, 60)

	got := browsertest.Eval[[]arrival](t, b, "window.got")
	checkOnceInOrder(t, got, 60)
	if gaps := browsertest.Eval[[]any](t, b, "window.gaps"); len(gaps) != 0 {
		t.Fatalf("gaps: %v", gaps)
	}
	for _, e := range b.Errors() {
		if strings.HasPrefix(e, string(chromedp.ConsoleException)) {
			t.Errorf("page: %s", e)
		}
	}
}

// send posts {"n":from}…{"n":to} to the callbackURL, each until the server takes it.
func send(t *testing.T, cb string, from, to int) {
	for n := from; n <= to; n++ {
		deadline := time.Now().Add(30 * time.Second)
		for !post(cb, n) {
			if time.Now().After(deadline) {
				t.Fatalf("post %d: not taken within 30 s", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func post(cb string, n int) bool {
	resp, err := http.Post(cb, "application/json", strings.NewReader(`{"n":`+strconv.Itoa(n)+`}`))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusNoContent
}

// waitGot waits until the page has n different notifications.
func waitGot(t *testing.T, b *browsertest.Browser, n int) {
	t.Helper()
	b.WaitFor(t, strconv.Itoa(n)+" notifications", "window.got && new Set(window.got.map(g => g.n)).size >= "+strconv.Itoa(n), 30*time.Second)
}

// checkOnceInOrder: seqs strictly grow (nothing handed over twice, even across
// the reload); the n's, with a producer's retried POST dropped, are 1…n in order.
func checkOnceInOrder(t *testing.T, got []arrival, n int) {
	t.Helper()
	js, _ := json.Marshal(got)
	next := 1
	for i, g := range got {
		if i > 0 && g.Seq <= got[i-1].Seq {
			t.Fatalf("seq %d after %d: %s", g.Seq, got[i-1].Seq, js)
		}
		if g.Root != "n" {
			t.Fatalf("root %q", g.Root)
		}
		switch {
		case g.N == next:
			next++
		case g.N > next:
			t.Fatalf("%d came before %d: %s", g.N, next, js)
		}
	}
	if next != n+1 {
		t.Fatalf("got up to %d of %d: %s", next-1, n, js)
	}
}
