// Package browsertest runs pages in a real headless Chromium for tests, driven by
// chromedp: it finds the browser (Debian's chromium, installed by .ci/run), starts
// it with a deadline, and collects what the page logs as errors.
package browsertest

import (
	"context"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Binary is the Chromium to run: $CHROMIUM, else the first of the usual names on
// PATH; "" when there is none.
func Binary() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is one headless Chromium with one tab, for one test.
type Browser struct {
	Ctx    context.Context // the tab's context, for chromedp.Do and chromedp.Run
	mu     sync.Mutex
	errors []string
	done   chan struct{} // the console reader has ended
}

// Start launches Chromium for t (skipping the test when there is none) and stops it
// when the test ends or after timeout.
func Start(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("no chromium binary found (apt-get install chromium, or set CHROMIUM): browser test skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin),
		chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(t.TempDir()))
	ctx, cancelTime := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	b := &Browser{Ctx: tab, done: make(chan struct{})}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTime()
		<-b.done
	})
	if err := chromedp.Do(tab); err != nil { // starts the browser
		close(b.done)
		t.Fatalf("start %s: %v", bin, err)
	}
	msgs := chromedp.Console(tab)
	go b.collect(msgs)
	return b
}

// collect records console errors and uncaught exceptions until the tab ends.
func (b *Browser) collect(msgs iter.Seq2[chromedp.ConsoleMessage, error]) {
	defer close(b.done)
	for m, err := range msgs {
		if err != nil {
			return
		}
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		b.mu.Lock()
		b.errors = append(b.errors, string(m.Type)+": "+m.Text)
		b.mu.Unlock()
	}
}

// Errors returns what the page logged as errors so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// Do runs chromedp actions in the tab, failing the test on error.
func (b *Browser) Do(t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		t.Fatalf("%s: %v (page errors: %v)", what, err, b.Errors())
	}
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](t testing.TB, b *Browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v (page errors: %v)", expr, err, b.Errors())
	}
	return v
}

// WaitFor polls the JavaScript expression until it is true, failing the test
// with what after timeout.
func (b *Browser) WaitFor(t testing.TB, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !Eval[bool](t, b, "!!("+expr+")") {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s (page errors: %v)", what, timeout, b.Errors())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Screenshot saves a PNG of the whole page to path.
func (b *Browser) Screenshot(t testing.TB, path string) {
	t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(fmt.Errorf("write %s: %w", path, err))
	}
}
