package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"notifyrelay/app/apptest"
	"notifyrelay/client"
	"notifyrelay/oma"
)

// The real binary SIGKILLed twice while notifications flow: the client reconnects
// by itself and, after removing repeats (a producer's retry of a POST whose 204
// the kill swallowed is a new notification), gets every notification once, in
// order. No checkpoint is written, so each kill loses every acknowledgement and
// the server sends everything again: in the modes with seqs (acknowledged
// WebSocket, acknowledged long poll) the library itself drops what it handled
// before (by seq), so seqs never go back and no gap is reported.
func TestReceiveAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, m := range []struct {
		name string
		mode client.Mode
		typ  string
	}{{"ack", client.Acknowledged, oma.ChannelWebSockets}, {"oma", client.OMA, oma.ChannelWebSockets},
		{"poll", client.LongPoll, oma.ChannelLongPolling}, {"omapoll", client.OMALongPoll, oma.ChannelLongPolling}} {
		t.Run(m.name, func(t *testing.T) { crashRun(t, m.mode, m.typ) })
	}
}

func crashRun(t *testing.T, mode client.Mode, typ string) {
	dir, proxy := t.TempDir(), apptest.NewProxy(t)
	start := func() *apptest.Proc {
		p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir, Args: []string{"--public-url", proxy.URL},
			Env: []string{"NOTIFYRELAY_QUEUE_CHECKPOINT_INTERVAL=1h"}}) // every ack is lost at a kill: all comes again
		proxy.To(p.Addr)
		return p
	}
	p := start()
	c := client.New(client.Options{BaseURL: proxy.URL})
	ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{Type: typ, User: "alice", MaxNotifications: 7})
	if err != nil {
		t.Fatal(err)
	}
	r := &received{}
	receive(t, c, ch, client.ReceiveOptions{Mode: mode, Handler: r.handler, OnGap: r.onGap, OnState: r.onState,
		Backoff: client.Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}})
	const perLife = 60
	n := 0
	for life := range 3 {
		for range perLife {
			n++
			postUntilTaken(t, ch.CallbackURL, n)
		}
		if life < 2 {
			waitFor(t, "half of this life's notifications", func() bool { return r.distinct() >= n-perLife/2 })
			p.Kill()
			p = start()
		}
	}
	waitFor(t, "every notification", func() bool { return r.distinct() == n })
	checkOnceInOrder(t, r, mode, n)
}

// postUntilTaken retries a POST the kill interrupted until the server takes it.
func postUntilTaken(t *testing.T, cb string, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for !post(cb, n) {
		if time.Now().After(deadline) {
			t.Fatalf("post %d: not taken within 30 s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkOnceInOrder(t *testing.T, r *received, mode client.Mode, n int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	next := 1
	for _, v := range r.ns {
		switch {
		case v == next:
			next++
		case v >= next:
			t.Fatalf("%d came before %d: %v", v, next, r.ns)
		}
	}
	if next != n+1 {
		t.Fatalf("got up to %d of %d", next-1, n)
	}
	if mode == client.Acknowledged || mode == client.LongPoll {
		if r.seqs[0] == 0 {
			t.Fatalf("no seqs in mode %v", mode)
		}
		for i := 1; i < len(r.seqs); i++ {
			if r.seqs[i] <= r.seqs[i-1] {
				t.Fatalf("seq %d after %d", r.seqs[i], r.seqs[i-1])
			}
		}
		if len(r.gaps) != 0 {
			t.Fatalf("gaps %v", r.gaps)
		}
	}
	reconnects := strings.Count(statesString(r.states), "disconnected")
	t.Logf("%d notifications, %d handled (repeats %d), %d disconnects", n, len(r.ns), len(r.ns)-n, reconnects)
}

func statesString(s []client.State) string {
	var b strings.Builder
	for _, st := range s {
		b.WriteString(st.String() + " ")
	}
	return b.String()
}
