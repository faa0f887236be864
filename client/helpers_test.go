package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"notifyrelay/client"
	"notifyrelay/internal/await"
)

// received collects what a handler got, safe for concurrent reading.
type received struct {
	mu     sync.Mutex
	seqs   []uint64
	ns     []int
	gaps   []client.Gap
	states []client.State
}

func (r *received) handler(_ context.Context, n client.Notification) error {
	var doc struct{ N int }
	if err := json.Unmarshal(n.Body, &doc); err != nil {
		return err
	}
	r.mu.Lock()
	r.seqs = append(r.seqs, n.Seq)
	r.ns = append(r.ns, doc.N)
	r.mu.Unlock()
	return nil
}

func (r *received) onGap(g client.Gap) { r.mu.Lock(); r.gaps = append(r.gaps, g); r.mu.Unlock() }

func (r *received) onState(s client.StateChange) {
	r.mu.Lock()
	r.states = append(r.states, s.State)
	r.mu.Unlock()
}

// distinct is how many different n arrived.
func (r *received) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int]bool{}
	for _, n := range r.ns {
		seen[n] = true
	}
	return len(seen)
}

// waitFor polls until cond holds or 20 s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	await.Until(t, 20*time.Second, what, cond)
}

// post sends {"n":n} to a callbackURL; it reports whether the server took it (204).
func post(cb string, n int) bool {
	resp, err := http.Post(cb, "application/json", strings.NewReader(`{"n":`+strconv.Itoa(n)+`}`))
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusNoContent
}

func mustPost(t *testing.T, cb string, from, to int) {
	t.Helper()
	for n := from; n <= to; n++ {
		if !post(cb, n) {
			t.Fatalf("post %d refused", n)
		}
	}
}

// receive runs Receive until the test ends; the returned channel gets its result.
func receive(t *testing.T, c *client.Client, ch client.Channel, o client.ReceiveOptions) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Receive(ctx, ch, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Receive did not return after its context ended")
		}
	})
	return done
}
