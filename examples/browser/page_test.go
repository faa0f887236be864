package browser

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
	"notifyrelay/internal/browsertest"
)

// index.html in headless Chromium: it shows the callbackURL, then the
// notifications in order; after a reload it shows only the new ones.
func TestExamplePage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	b := browsertest.Start(t, 2*time.Minute)
	page, err := os.ReadFile("index.html")
	if err != nil {
		t.Fatal(err)
	}
	f := apptest.NewFront(t, map[string]string{"/index.html": string(page)})
	a := apptest.Start(t, func(c *config.Config) {
		c.PublicURL = f.URL
		c.Auth.Tokens = []config.Token{{Token: "alice-token", User: "alice"}}
	})
	f.To(a.Addr())

	b.Do(t, "open", chromedp.Navigate(f.URL+"/index.html?token=alice-token"))
	b.WaitFor(t, "the callbackURL", `document.getElementById("callback").textContent.startsWith("http")`, 20*time.Second)
	cb := browsertest.Eval[string](t, b, `document.getElementById("callback").textContent`)
	post(t, cb, 1, 3)
	want := []string{`1 n {"n":1}`, `2 n {"n":2}`, `3 n {"n":3}`}
	waitList(t, b, want)
	b.Do(t, "reload", chromedp.Reload())
	b.WaitFor(t, "connected", `document.getElementById("state").textContent == "connected"`, 20*time.Second)
	post(t, cb, 4, 4)
	waitList(t, b, []string{`4 n {"n":4}`})
}

func waitList(t *testing.T, b *browsertest.Browser, want []string) {
	t.Helper()
	expr := `Array.from(document.querySelectorAll("#list li"), li => li.textContent).join("\n") == ` + strconv.Quote(strings.Join(want, "\n"))
	b.WaitFor(t, "the list "+strings.Join(want, ", "), expr, 20*time.Second)
}

func post(t *testing.T, cb string, from, to int) {
	for n := from; n <= to; n++ {
		resp, err := http.Post(cb, "application/json", strings.NewReader(`{"n":`+strconv.Itoa(n)+`}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("post %d: %d", n, resp.StatusCode)
		}
	}
}
