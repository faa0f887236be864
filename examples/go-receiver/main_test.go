package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// syncBuffer is the receiver's stdout, read by the test while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The example prints the callbackURL and then the notifications in order; run
// again on the same state file it reuses the channel and goes on after the last
// one it printed.
func TestExampleReceiver(t *testing.T) {
	base := apptest.URL(apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "alice-token", User: "alice"}}
	}))
	path := filepath.Join(t.TempDir(), "state.json")
	args := []string{"-url", base, "-token", "alice-token", "-state", path}

	out, stop := start(t, args)
	cb := waitLine(t, out, "callbackURL ")
	post(t, cb, 1, 3)
	waitLine(t, out, `3 n {"n":3}`)
	stop()
	post(t, cb, 4, 5)
	out, stop = start(t, args)
	if again := waitLine(t, out, "callbackURL "); again != cb {
		t.Fatalf("a new channel after the restart: %s", again)
	}
	waitLine(t, out, `5 n {"n":5}`)
	stop()
	if got := out.String(); strings.Contains(got, `{"n":3}`) || !strings.Contains(got, `4 n {"n":4}`+"\n"+`5 n {"n":5}`) {
		t.Fatalf("second run printed:\n%s", got)
	}
}

func start(t *testing.T, args []string) (*syncBuffer, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	out, done := &syncBuffer{}, make(chan error, 1)
	go func() { done <- run(ctx, args, out) }()
	return out, func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
	}
}

// waitLine waits for a line starting with prefix and returns the rest.
func waitLine(t *testing.T, out *syncBuffer, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(out.String(), "\n") {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no line %q in:\n%s", prefix, out.String())
	return ""
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
